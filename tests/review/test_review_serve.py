"""Review: `callfloor serve` as a process (an address it cannot use, SIGTERM mid-POST)."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from serving import free_port, serve


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("nonexistent.invalid", "name or service not known"),
        ("192.0.2.1", "cannot assign requested address"),  # TEST-NET-1: never local
    ],
)
def test_an_address_that_cannot_be_used_names_the_host_not_the_port(
    host: str, reason: str, tmp_path: Path
) -> None:
    """A host that does not resolve, or is not this machine's, gets one line naming the
    OS's reason and --host (not "unknown error -2; pick another port")."""
    # A write token: without one, a bind beyond loopback is refused before any socket.
    config = tmp_path / "callfloor.toml"
    config.write_text('[http]\nwrite_tokens = ["t0ken-0123456789abcdef"]\n', encoding="utf-8")
    done = subprocess.run(
        [
            *(sys.executable, "-m", "callfloor", "serve", "--config", str(config)),
            *("--host", host, "--port", str(free_port())),
        ],
        capture_output=True,
        timeout=30,
    )
    out = (done.stdout + done.stderr).decode().strip().splitlines()
    assert done.returncode == 1, out
    assert len(out) == 1 and f"({reason}); check the address (--host)" in out[0], out


def _event_lines(n: int, start: float) -> bytes:
    return b"".join(
        json.dumps({"type": "call_queued", "ts": start, "call_id": f"c{i}", "queue": "q"}).encode()
        + b"\n"
        for i in range(n)
    )


def _queued(local: int, remote: int) -> int | None:
    """Bytes waiting in the kernel on the TCP connection from port ``local`` to port
    ``remote`` on 127.0.0.1 (sent and not acknowledged, plus received and not read by its
    process), from /proc/net/tcp; None if there is no such connection."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == local and int(fields[2].split(":")[1], 16) == remote:
            tx, rx = fields[4].split(":")
            return int(tx, 16) + int(rx, 16)
    return None


def _read_by_server(sock: socket.socket, server_port: int, timeout: float = 10.0) -> None:
    """Wait until the server process has read everything sent on ``sock`` so far: it has
    taken the connection and is inside the request."""
    here = sock.getsockname()[1]
    deadline = time.monotonic() + timeout
    while _queued(here, server_port) != 0 or _queued(server_port, here) != 0:
        assert time.monotonic() < deadline, "the server did not read the request"
        time.sleep(0.01)


def test_sigterm_during_a_post_answers_it_and_stops_cleanly(tmp_path: Path) -> None:
    """SIGTERM while a body is still arriving: the request gets a JSON answer at once (a 503
    asking to send it again: a stopping server reads no more of the body), the process
    exits 0 without waiting out the grace period, nothing is logged as an error."""
    with serve(tmp_path) as served:
        body = _event_lines(20_000, time.time() - 30)
        sock = socket.create_connection(("127.0.0.1", served.port))
        sock.sendall(
            b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-ndjson\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        sock.sendall(body[: len(body) // 2])
        _read_by_server(sock, served.port)  # the request is under way, its body half read
        served.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        time.sleep(0.3)
        with contextlib.suppress(OSError):  # the server may have stopped reading
            sock.sendall(body[len(body) // 2 :])
        sock.settimeout(10)
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
        sock.close()
        code = served.proc.wait(15)
        took = time.monotonic() - signalled
        log = served.output()
    assert code == 0, log
    # Below the 5 s grace period (shutdown_timeout) a request still uploading would hold.
    assert took < 4.5, f"stopping took {took:.1f} s"
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503"), log
    assert "stopping" in json.loads(payload)["error"]
    assert " ERROR " not in log, log
