"""The live queue_log source under fire: ``callfloor serve`` tails a queue_log being
written, is SIGKILLed in the middle of the file (twice) and started again, and ends in
the state ``callfloor replay --format queue_log`` gives for the whole file at the same
``as_of``: every line applied exactly once.

Real processes: ``callfloor serve`` with a ``file://`` store (checkpoints every second)
and a ``[[sources]]`` entry of kind ``queue_log``; the test writes the file in chunks
as Asterisk would, while the server runs and while it is down.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from qlwriter import queue_log
from serving import ServeProcess, free_port, get_json
from traces import DAY0, Trace, assert_same_document, shifted, simulate

CHUNKS = 40
CHUNK_GAP_S = 0.15


def _replay(config: Path, path: Path, at: float | None) -> dict[str, Any]:
    """``callfloor replay --format queue_log`` of the file, as JSON."""
    extra = ["--at", repr(at)] if at is not None else []
    done = subprocess.run(
        [
            *(sys.executable, "-m", "callfloor", "replay", str(path), "--format", "queue_log"),
            *("--config", str(config), "--output", "json", *extra),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def _alerts(doc: dict[str, Any]) -> list[str]:
    return sorted(json.dumps(a, sort_keys=True) for a in doc["alerts"])


def _write_slowly(path: Path, text: str, done: threading.Event) -> None:
    """The file written in CHUNKS pieces (cut mid-line too), CHUNK_GAP_S apart."""
    data = text.encode()
    step = len(data) // CHUNKS + 1
    for i in range(0, len(data), step):
        with path.open("ab") as f:
            f.write(data[i : i + step])
        time.sleep(CHUNK_GAP_S)
    done.set()


def _recent_log(*, seed: int, agents: int, queues: int, hours: float) -> tuple[Trace, str]:
    """A simulated one-site floor's morning as a queue_log whose last line is 5 s old
    (recent enough for a live service), and its trace (for the configuration)."""
    trace = simulate(
        seed=seed, agents=agents, queues=queues, sites=1, hours=hours, start=DAY0 + 9 * 3600.0
    )
    end = max(float(e["ts"]) for e in trace.events)
    return trace, queue_log(shifted(trace.events, round(time.time() - 5.0 - end)))


def test_sigkill_mid_file_and_restart_apply_every_line_exactly_once(tmp_path: Path) -> None:
    """Two SIGKILLs while the file grows: the final snapshot equals the file's replay."""
    trace, text = _recent_log(seed=5, agents=12, queues=2, hours=1.0)
    log_path = tmp_path / "queue_log"
    whole = tmp_path / "whole_queue_log"
    whole.write_text(text, encoding="utf-8")
    config = tmp_path / "callfloor.toml"
    config.write_text(
        trace.toml
        + f'\n[store]\nurl = "file://{tmp_path / "state"}"\ncheckpoint_every = "1s"\n'
        + f'\n[[sources]]\nkind = "queue_log"\npath = "{log_path}"\n'
        + 'poll_interval = "10ms"\n',
        encoding="utf-8",
    )
    expected_count = _replay(config, whole, None)["counters"]
    target = expected_count["events"] + expected_count["duplicates"] + expected_count["rejected"]

    port = free_port()
    server = ServeProcess(config, port)
    server.wait_ready(timeout=20.0)
    written = threading.Event()
    writer = threading.Thread(target=_write_slowly, args=(log_path, text, written))
    writer.start()
    try:
        for share in (0.35, 0.7):
            while not log_path.exists() or log_path.stat().st_size < share * len(text):
                time.sleep(0.01)
            assert not written.is_set()
            server.kill()
            time.sleep(0.3)  # the file grows while the server is down
            server = ServeProcess(config, port)
            server.wait_ready(timeout=20.0)
        writer.join(timeout=60)
        assert written.is_set()
        live = server.snapshot_after(target, timeout=30.0)
        # Late lines re-derive the alert timeline in slices after they are applied: give
        # it the time to catch up with the numbers.
        replayed = _replay(config, whole, float(live["as_of"]))
        deadline = time.monotonic() + 20.0
        while _alerts(live) != _alerts(replayed) and time.monotonic() < deadline:
            time.sleep(1.0)
            live = server.snapshot_after(target, timeout=30.0)
            replayed = _replay(config, whole, float(live["as_of"]))
    finally:
        server.stop()
    assert live["counters"]["duplicates"] == replayed["counters"]["duplicates"]
    assert_same_document(live, replayed, "the live snapshot after 2 SIGKILLs and the replay")


def _serve_config(tmp_path: Path, toml: str, log_path: Path, extra: str = "") -> Path:
    config = tmp_path / "callfloor.toml"
    config.write_text(
        toml
        + f'\n[store]\nurl = "file://{tmp_path / "state"}"\ncheckpoint_every = "1s"\n'
        + f'\n[[sources]]\nkind = "queue_log"\npath = "{log_path}"\n'
        + 'poll_interval = "10ms"\n'
        + extra,
        encoding="utf-8",
    )
    return config


def _target(config: Path, path: Path) -> int:
    counters = _replay(config, path, None)["counters"]
    return int(counters["events"] + counters["duplicates"] + counters["rejected"])


def test_a_copy_truncate_while_down_that_grew_back_past_the_offset_is_read_whole(
    tmp_path: Path,
) -> None:
    """SIGKILLed after the first part of the log; while down the file is copy-truncated
    (same inode) and the rest written to it, longer than the saved offset. The restart
    sees the fingerprint differ and reads the new content from 0: the final snapshot
    equals the replay of both parts as one file (nothing skipped, no line cut)."""
    trace, text = _recent_log(seed=7, agents=10, queues=2, hours=0.5)
    lines = text.splitlines(keepends=True)
    cut = len(lines) * 2 // 5
    first, rest = "".join(lines[:cut]), "".join(lines[cut:])
    assert len(rest) > len(first)
    log_path = tmp_path / "queue_log"
    whole = tmp_path / "whole_queue_log"
    whole.write_text(first + rest, encoding="utf-8")
    part = tmp_path / "first_queue_log"
    part.write_text(first, encoding="utf-8")
    config = _serve_config(tmp_path, trace.toml, log_path)

    log_path.write_text(first, encoding="utf-8")
    server = ServeProcess(config, free_port())
    try:
        server.wait_ready(timeout=20.0)
        server.snapshot_after(_target(config, part), timeout=30.0)
        time.sleep(2.5)  # a position after the first part acknowledged and checkpointed
        server.kill()
        inode = log_path.stat().st_ino
        with log_path.open("r+b") as f:  # logrotate's copytruncate, then Asterisk writes on
            f.truncate(0)
            f.write(rest.encode())
        assert log_path.stat().st_ino == inode
        server = ServeProcess(config, server.port)
        server.wait_ready(timeout=20.0)
        live = server.snapshot_after(_target(config, whole), timeout=30.0)
        replayed = _replay(config, whole, float(live["as_of"]))
        deadline = time.monotonic() + 20.0
        while _alerts(live) != _alerts(replayed) and time.monotonic() < deadline:
            time.sleep(1.0)
            live = server.snapshot_after(_target(config, whole), timeout=30.0)
            replayed = _replay(config, whole, float(live["as_of"]))
        printed = server.output()
        with urllib.request.urlopen(f"{server.base}/metrics", timeout=10) as reply:
            metrics = reply.read().decode()
    finally:
        server.stop()
    assert "tail_rewritten_while_down" in printed and str(log_path) in printed
    assert (
        'callfloor_source_rotations_total{kind="queue_log",reason="rewritten",'
        'source="queue_log"} 1.0' in metrics
    ), [m for m in metrics.splitlines() if "rotations" in m]
    assert live["counters"]["rejected"] == 0
    assert_same_document(live, replayed, "the live snapshot after a copy-truncate while down")


BAD_LINE = "notanepoch|c9|q1|NONE|ENTERQUEUE||5551234567|1\n"


def _document_after(server: ServeProcess, count: int, timeout: float = 30.0) -> dict[str, Any]:
    """The live snapshot once ``count`` records were applied, found duplicate or rejected."""
    deadline = time.monotonic() + timeout
    while True:
        doc: dict[str, Any] = get_json(f"{server.base}/api/v1/snapshot")
        c = doc["counters"]
        if c["events"] + c["duplicates"] + c["rejected"] >= count:
            return doc
        assert time.monotonic() < deadline, f"only {c} of {count}"
        time.sleep(0.2)


def test_an_unmappable_line_read_again_after_sigkill_is_counted_and_dead_lettered_once(
    tmp_path: Path,
) -> None:
    """A line that cannot be mapped, read and counted, then SIGKILL before any checkpoint
    holds a position past it: the restart reads it again (the events around it are
    resends), but its rejection is recognised too, so the floor counts it once and the
    dead-letter file has it once, as the replay of the file does."""
    trace, text = _recent_log(seed=3, agents=8, queues=2, hours=0.25)
    lines = text.splitlines(keepends=True)
    text = "".join(lines[: len(lines) // 2]) + BAD_LINE + "".join(lines[len(lines) // 2 :])
    log_path = tmp_path / "queue_log"
    letters = tmp_path / "dead.ndjson"
    # No checkpoint while it runs: the restart reads the whole file again.
    config = _serve_config(tmp_path, trace.toml, log_path, f'dead_letters = "{letters}"\n')
    config.write_text(
        config.read_text().replace('checkpoint_every = "1s"', 'checkpoint_every = "1h"')
    )
    log_path.write_text(text, encoding="utf-8")
    expected = _replay(config, log_path, None)["counters"]
    assert expected["rejected"] == 1
    target = expected["events"] + expected["duplicates"] + expected["rejected"]

    server = ServeProcess(config, free_port())
    try:
        server.wait_ready(timeout=20.0)
        first = _document_after(server, target)
        assert first["counters"]["rejected"] == 1
        time.sleep(0.5)  # the dead letter is written once the batch is acknowledged
        assert len(letters.read_text().splitlines()) == 1
        server.kill()
        server = ServeProcess(config, server.port)
        server.wait_ready(timeout=20.0)
        time.sleep(2.0)  # the whole file read again
        live = _document_after(server, target)
        replayed = _replay(config, log_path, float(live["as_of"]))
        with urllib.request.urlopen(f"{server.base}/metrics", timeout=10) as reply:
            metrics = reply.read().decode()
        printed = server.output()
    finally:
        server.stop()
    resent = f'callfloor_ingest_resent_events_total{{source="queue_log"}} {target - 1}.0'
    assert resent in metrics  # every event of the file read again, each a resend
    assert live["counters"]["rejected"] == 1, live["counters"]
    assert live["counters"]["events"] == replayed["counters"]["events"]
    assert len(letters.read_text().splitlines()) == 1, printed[-2000:]


def test_a_fifo_or_a_device_at_the_path_leaves_the_service_answering(tmp_path: Path) -> None:
    """The queue_log path names a FIFO, then a symlink to /dev/zero, then a real file:
    the service starts and keeps answering (opening a FIFO waited for a writer, reading
    /dev/zero never ended, both with the whole event loop), says so in its log, and
    reads the real file once it is there."""
    trace, text = _recent_log(seed=2, agents=4, queues=1, hours=0.1)
    log_path = tmp_path / "queue_log"
    whole = tmp_path / "whole_queue_log"
    whole.write_text(text, encoding="utf-8")
    config = _serve_config(tmp_path, trace.toml, log_path)
    os.mkfifo(log_path)
    server = ServeProcess(config, free_port())
    try:
        server.wait_ready(timeout=20.0)
        log_path.unlink()
        log_path.symlink_to("/dev/zero")
        time.sleep(0.5)
        for _ in range(3):
            with urllib.request.urlopen(f"{server.base}/healthz", timeout=5) as reply:
                assert reply.status == 200
            time.sleep(0.2)
        log_path.unlink()
        log_path.write_text(text, encoding="utf-8")
        live = server.snapshot_after(_target(config, whole), timeout=30.0)
        printed = server.output()
    finally:
        server.stop()
    assert "tail_not_a_file" in printed
    assert live["counters"]["rejected"] == 0
