"""Connections over raw sockets: header, idle and body timeouts."""

from __future__ import annotations

import asyncio
import json

from live import running


def _length(head: bytes) -> int:
    return int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])


async def _open(base: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = base.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def test_a_request_head_sent_too_slowly_is_cut_off() -> None:
    """A connection that never completes its request head is closed after the idle timeout."""
    async with running(idle_timeout_s=0.3) as (_, base):
        reader, writer = await _open(base)
        writer.write(
            b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        )  # no blank line: head unfinished
        started = asyncio.get_running_loop().time()
        rest = await asyncio.wait_for(reader.read(), 5)
        elapsed = asyncio.get_running_loop().time() - started
        writer.close()
    assert rest == b"" and elapsed < 3


async def test_an_idle_keep_alive_connection_is_closed() -> None:
    """After an answer, a kept-alive connection that sends nothing more is closed."""
    async with running(idle_timeout_s=0.3) as (_, base):
        reader, writer = await _open(base)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        await reader.readexactly(_length(head))
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()


async def test_a_body_that_does_not_arrive_in_time_is_a_json_408() -> None:
    """A POST whose body stalls gets a JSON 408 after the body timeout."""
    async with running(body_timeout_s=0.3) as (_, base):
        reader, writer = await _open(base)
        writer.write(
            b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b'Content-Type: application/x-ndjson\r\nContent-Length: 1000\r\n\r\n{"type"'
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        body = await asyncio.wait_for(reader.readexactly(_length(head)), 5)
        writer.close()
    assert head.startswith(b"HTTP/1.1 408") and b"Connection: close" in head
    assert "did not arrive" in json.loads(body)["error"]
