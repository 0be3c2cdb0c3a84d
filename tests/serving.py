"""Helpers for tests of ``callfloor serve`` / ``demo`` as real subprocesses."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request(
    url: str,
    body: bytes | None = None,
    content_type: str = "application/x-ndjson",
    timeout: float = 60,
) -> tuple[int, bytes, dict[str, str]]:
    """One HTTP request: status, body and headers (error answers too)."""
    headers = {"Content-Type": content_type} if body is not None else {}
    req = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


class Served:
    """A running ``callfloor serve`` subprocess."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int) -> None:
        self.proc = proc
        self.port = port
        self.base = f"http://127.0.0.1:{port}"

    def get_json(self, path: str) -> tuple[int, Any]:
        """GET a JSON route."""
        status, body, _ = request(self.base + path)
        return status, json.loads(body)

    def rss_bytes(self) -> int:
        """The process's resident set size (VmRSS), bytes."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")


@contextmanager
def serve(tmp_path: Path, config: str = "", timeout: float = 15) -> Iterator[Served]:
    """``callfloor serve`` on a free port with ``config`` (TOML), stopped with SIGTERM."""
    port = free_port()
    cfg = tmp_path / "callfloor.toml"
    cfg.write_text(config)
    proc = subprocess.Popen(
        [sys.executable, "-m", "callfloor", "serve", "--config", str(cfg), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    served = Served(proc, port)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if request(served.base + "/healthz", timeout=1)[0] == 200:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out = proc.communicate()[0].decode(errors="replace")
            raise AssertionError(f"serve did not start:\n{out}")
        time.sleep(0.05)
    try:
        yield served
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
