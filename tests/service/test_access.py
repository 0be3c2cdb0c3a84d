"""`callfloor serve` as a process: the start-up access rules (refusal, the log line, tokens)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from serving import free_port, request

TOKEN = "s3cret-token"


def _serve(tmp_path: Path, config: str, *args: str) -> list[str]:
    cfg = tmp_path / "callfloor.toml"
    cfg.write_text(config)
    return [sys.executable, "-m", "callfloor", "serve", "--config", str(cfg), *args]


@contextmanager
def _running(command: list[str], port: int, env: dict[str, str]) -> Iterator[list[str]]:
    """The command running until it answers /healthz; yields the list its output fills
    once it has been stopped (SIGTERM)."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    output: list[str] = []
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if request(f"http://127.0.0.1:{port}/healthz", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, proc.communicate()[0].decode()
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.05)
        yield output
    finally:
        proc.terminate()
        out = proc.communicate(timeout=15)[0].decode()
        output.extend(out.splitlines())


def test_a_bind_beyond_loopback_without_write_tokens_refuses_to_start(tmp_path: Path) -> None:
    """`serve --host 0.0.0.0` without write tokens exits 2 with one line naming the key."""
    port = free_port()
    done = subprocess.run(
        _serve(tmp_path, "", "--host", "0.0.0.0", "--port", str(port)),
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert done.stdout == b""
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        "callfloor: refusing to listen on 0.0.0.0 without [http] write_tokens"
    )


def test_the_configured_host_is_checked_like_the_flag(tmp_path: Path) -> None:
    """A wide `[http] host` in the file (no --host) is refused the same way."""
    done = subprocess.run(
        _serve(tmp_path, '[http]\nhost = "::"\n', "--port", str(free_port())),
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert b"[http] write_tokens" in done.stderr


def test_a_loopback_flag_overrides_a_wide_configured_host(tmp_path: Path) -> None:
    """`--host 127.0.0.1` with `host = "0.0.0.0"` in the file starts: the flag is the bind."""
    port = free_port()
    command = _serve(
        tmp_path, '[http]\nhost = "0.0.0.0"\n', "--host", "127.0.0.1", "--port", str(port)
    )
    with _running(command, port, dict(os.environ)) as output:
        pass
    assert any("serving on http://127.0.0.1:" in line for line in output)


def test_loopback_serve_without_write_tokens_logs_one_line_saying_so(tmp_path: Path) -> None:
    """On loopback without write tokens the log says once that writes are loopback only."""
    port = free_port()
    with _running(_serve(tmp_path, "", "--port", str(port)), port, dict(os.environ)) as output:
        status, _, _ = request(f"http://127.0.0.1:{port}/api/v1/events", b"")
        assert status == 400  # taken from loopback: an empty body, not a refusal
    said = [line for line in output if "writes are open to loopback only" in line]
    assert len(said) == 1
    assert "access writes=loopback_only" in said[0]


def test_a_wide_bind_with_a_write_token_from_the_environment_starts(tmp_path: Path) -> None:
    """With write_tokens = ["env:..."] a 0.0.0.0 bind starts, and posts need that token."""
    port = free_port()
    env = {**os.environ, "CALLFLOOR_TEST_TOKEN": TOKEN}
    config = '[http]\nwrite_tokens = ["env:CALLFLOOR_TEST_TOKEN"]\n'
    command = _serve(tmp_path, config, "--host", "0.0.0.0", "--port", str(port))
    url = f"http://127.0.0.1:{port}/api/v1/events"
    event = json.dumps(
        {"type": "call_queued", "ts": time.time() - 5, "call_id": "c1", "queue": "q"}
    ).encode()
    with _running(command, port, env) as output:
        without = _post(url, event, None)
        with_token = _post(url, event, TOKEN)
    assert (without, with_token) == (401, 202)
    assert not any("writes are open to loopback only" in line for line in output)
    assert any("agent_names=hidden_beyond_loopback" in line for line in output)


def _post(url: str, body: bytes, token: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code
