"""The optional mypyc build of the core: it compiles, and replays byte-identically."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(args: list[str], cwd: Path, pythonpath: Path) -> bytes:
    done = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={"PYTHONPATH": str(pythonpath), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        check=True,
        timeout=300,
    )
    return done.stdout


def test_compiled_core_replays_byte_identically(tmp_path: Path) -> None:
    """A mypyc-compiled copy of the core prints the same replay document as pure Python."""
    tree = tmp_path / "tree"
    shutil.copytree(
        ROOT / "callfloor",
        tree / "callfloor",
        ignore=shutil.ignore_patterns("*.so", "__pycache__"),
    )
    _run([str(ROOT / "scripts" / "build_native.py"), str(tree)], tree, tree)
    assert list((tree / "callfloor" / "processors").glob("engine.*.so"))

    trace, cfg = tmp_path / "day.ndjson", tmp_path / "day.toml"
    _run(
        [
            "-m",
            "callfloor",
            "simulate",
            "--seed",
            "3",
            "--agents",
            "40",
            "--queues",
            "5",
            "--duration",
            "3h",
            "--output",
            str(trace),
            "--write-config",
            str(cfg),
        ],
        ROOT,
        ROOT,
    )
    replay = ["-m", "callfloor", "replay", str(trace), "--config", str(cfg), "--output", "json"]
    where = "import callfloor.processors.engine as e; print(e.__file__)"
    assert _run(["-c", where], tree, tree).strip().endswith(b".so")
    assert _run(replay, tree, tree) == _run(replay, ROOT, ROOT)

    # The compiled queue_log mapper: the same trace as Asterisk would log its calls.
    log = tmp_path / "queue_log"
    with open(trace, "rb") as fh:
        log.write_text("".join(_queue_log_line(json.loads(line)) for line in fh))
    feed = ["-m", "callfloor", "replay", str(log), "--format", "queue_log", "--config", str(cfg)]
    where = "import callfloor.feeds.asterisk as a; print(a.__file__)"
    assert _run(["-c", where], tree, tree).strip().endswith(b".so")
    assert b'"offered":' in _run(feed, ROOT, ROOT)
    assert _run(feed, tree, tree) == _run(feed, ROOT, ROOT)


def _queue_log_line(event: dict[str, object]) -> str:
    """A canonical call event as a queue_log line (enough of one for the comparison)."""
    verbs = {
        "call_queued": "ENTERQUEUE",
        "call_answered": "CONNECT",
        "call_ended": "COMPLETECALLER",
        "call_abandoned": "ABANDON",
        "call_dequeued": "EXITWITHTIMEOUT",
        "call_missed": "RINGNOANSWER",
    }
    verb = verbs.get(str(event["type"]))
    if verb is None:
        return ""
    agent = f"SIP/{event['agent']}" if event.get("agent") else "NONE"
    queue = event.get("queue") or "NONE"
    return f"{int(float(str(event['ts'])))}|{event['call_id']}|{queue}|{agent}|{verb}|\n"
