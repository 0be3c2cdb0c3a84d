"""`callfloor serve` and `demo` as processes: a taken port, SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from serving import free_port, serve


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_a_taken_port_ends_with_one_line_naming_it(command: str) -> None:
    """With the port taken, the command exits 1 after one line naming the address and --port,
    and prints no URL."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "callfloor",
                command,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            capture_output=True,
            timeout=30,
        )
    out = (done.stdout + done.stderr).decode()
    assert done.returncode == 1, out
    assert out.strip().splitlines() == [
        f"callfloor: cannot listen on 127.0.0.1:{port} (address already in use); "
        "pick another port with --port"
    ]


def test_sigterm_stops_like_ctrl_c(tmp_path: Path) -> None:
    """SIGTERM ends open change streams, logs and prints "stopped" and exits 0, promptly."""
    with serve(tmp_path) as served:
        lines: list[bytes] = []
        connected = threading.Event()

        def read_stream() -> None:
            with urllib.request.urlopen(served.base + "/api/v1/changes", timeout=10) as resp:
                for line in resp:  # until the server ends the stream
                    lines.append(line)
                    connected.set()

        reader = threading.Thread(target=read_stream, daemon=True)
        reader.start()
        assert connected.wait(10), "the change stream did not open"
        started = time.monotonic()
        served.proc.send_signal(signal.SIGTERM)
        served.proc.wait(timeout=10)
        out = served.output()
        reader.join(5)
        elapsed = time.monotonic() - started
    assert served.proc.returncode == 0, out
    assert not reader.is_alive() and lines[0] == b": connected\n"
    assert "INFO callfloor stopped" in out and out.rstrip().endswith("callfloor: stopped")
    assert elapsed < 5


def test_serve_prints_its_url_once_listening(tmp_path: Path) -> None:
    """The banner names the bound URL (printed after the port is bound)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "callfloor", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().decode()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    assert first == f"callfloor: serving on http://127.0.0.1:{port}/\n"
    assert proc.returncode == 0
