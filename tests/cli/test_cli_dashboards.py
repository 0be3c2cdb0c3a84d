"""`callfloor dashboards`: writes the boards, checks them, needs no secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CALLFLOOR_TOKEN"}
    return subprocess.run(
        [sys.executable, "-m", "callfloor", "dashboards", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_writes_the_committed_boards_from_the_deploy_config_without_its_secrets(
    tmp_path: Path,
) -> None:
    """With deploy/callfloor.toml (whose write token is env:CALLFLOOR_TOKEN, unset here)
    it writes the four boards, byte for byte the committed ones, and lists them."""
    done = _run("--out", str(tmp_path), "--config", str(ROOT / "deploy" / "callfloor.toml"))
    assert done.returncode == 0, done.stderr
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == [
        "callfloor-agents.json",
        "callfloor-alerts.json",
        "callfloor-floor.json",
        "callfloor-operations.json",
    ]
    assert sorted(Path(line).name for line in done.stdout.split()) == written
    for name in written:
        committed = ROOT / "deploy" / "grafana" / "dashboards" / name
        assert (tmp_path / name).read_bytes() == committed.read_bytes(), name


def test_check_fails_on_a_stale_board_and_says_how_to_regenerate(tmp_path: Path) -> None:
    """--check exits 0 on fresh boards, 1 (naming the file and the command) on a changed one."""
    assert _run("--out", str(tmp_path)).returncode == 0
    assert _run("--out", str(tmp_path), "--check").returncode == 0
    board = tmp_path / "callfloor-floor.json"
    board.write_text(board.read_text(encoding="utf-8").replace("Call floor", "Floor"))
    done = _run("--out", str(tmp_path), "--check")
    assert done.returncode == 1
    assert "callfloor-floor.json: out of date" in done.stderr
    assert "callfloor dashboards --out" in done.stderr


def test_a_bad_config_is_a_configuration_error(tmp_path: Path) -> None:
    """A queue with an invalid sl_target stops it with exit 2, naming file and key."""
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[queues.sales]\nsl_target = 2\n", encoding="utf-8")
    done = _run("--out", str(tmp_path / "out"), "--config", str(cfg))
    assert done.returncode == 2
    assert "bad.toml" in done.stderr and "queues.sales.sl_target" in done.stderr
