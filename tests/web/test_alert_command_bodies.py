"""Poisoned and slow bodies to the operator command routes of a real `callfloor serve`."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving import ServeProcess

OPERATOR = "operator-token-0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    path: Path = tmp_path_factory.mktemp("commands") / "callfloor.toml"
    path.write_text(
        f"""
[sites.s]
timezone = "UTC"
[queues.q]
site = "s"
[http]
operator_tokens = {{ ada = "{OPERATOR}" }}
""",
        encoding="utf-8",
    )
    running = ServeProcess(path)
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def _raw_post(port: int, path: str, parts: list[bytes], pause: float = 0.3) -> tuple[int, bytes]:
    """POST a body sent in ``parts`` with a pause between them; status and body."""
    body = b"".join(parts)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {OPERATOR}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + parts[0])
        for part in parts[1:]:
            time.sleep(pause)
            sock.sendall(part)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def test_a_command_body_split_over_segments_is_read_whole(server: ServeProcess) -> None:
    """A silence whose body arrives in two TCP segments is created, not refused as
    truncated JSON."""
    body = json.dumps({"duration": "1h", "comment": "split"}).encode()
    status, answer = _raw_post(server.port, "/api/v1/silences", [body[:10], body[10:]])
    assert status == 201, answer
    assert json.loads(answer)["comment"] == "split"


def test_a_deeply_nested_command_body_is_a_400(server: ServeProcess) -> None:
    """A body nested thousands deep is answered 400, not 500 (the decoder's recursion)."""
    body = b"[" * 2000 + b"]" * 2000
    status, answer = _raw_post(server.port, "/api/v1/alerts/0123456789abcdef/ack", [body])
    assert status == 400, answer
    assert b"nested too deeply" in answer
