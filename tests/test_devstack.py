"""`make stack` / `make stack-down`: the stack runs in the foreground, says where each part
listens, and stops in order when `--down` is run from another terminal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from waiting import wait_until


def test_stack_down_stops_a_running_stack_through_its_pid_file(tmp_path: Path) -> None:
    """The banner names every service (and Grafana's absence where it is not installed);
    `--down` stops the stack: it exits 0, every service stopped, the pid file gone."""
    work = tmp_path / "stack"
    ports = [
        arg
        for option in ("callfloor", "prometheus", "alertmanager", "grafana", "redis", "mqtt")
        for arg in (f"--{option}-port", "0")
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "callfloor.devstack", "--workdir", str(work), *ports],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = [proc.stdout.readline() for _ in range(8)]
        text = "".join(banner)
        for name in ("callfloor", "prometheus", "alertmanager", "grafana", "redis", "mosquitto"):
            assert f"  {name} " in text, text
        pid_file = work / "devstack.pid"
        assert pid_file.read_text().strip() == str(proc.pid)
        down = subprocess.run(
            [sys.executable, "-m", "callfloor.devstack", "--workdir", str(work), "--down"],
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert down.returncode == 0, down.stderr
        assert f"stopped (pid {proc.pid})" in down.stderr
        wait_until(lambda: proc.poll() is not None, timeout=10)
        assert proc.returncode == 0
        assert not pid_file.exists()
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)


def test_stack_down_without_a_stack_says_so(tmp_path: Path) -> None:
    """`--down` where no stack runs exits 0 and says there is none."""
    done = subprocess.run(
        [sys.executable, "-m", "callfloor.devstack", "--workdir", str(tmp_path), "--down"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0 and "no stack running" in done.stderr


def test_stack_down_never_signals_a_process_that_is_not_the_stack(tmp_path: Path) -> None:
    """A stale pid file naming another process (the stack was killed, the pid reused)
    is removed without signalling that process."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "devstack.pid").write_text(f"{other.pid}\n")
        done = subprocess.run(
            [sys.executable, "-m", "callfloor.devstack", "--workdir", str(tmp_path), "--down"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0 and "already stopped" in done.stderr
        assert other.poll() is None
        assert not (tmp_path / "devstack.pid").exists()
    finally:
        other.kill()
        other.wait()
