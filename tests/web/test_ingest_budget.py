"""[limits] max_inflight_body: the bytes of bodies being read or decoded at once are bounded;
a body beyond it gets 503 with Retry-After and is not read."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from helpers import T0, config, ev
from live import ndjson, running

from callfloor.service import FloorService

KB = 1024
LATE = T0 - 30
LIMITS = {"limits": {"max_body": "1MB", "max_inflight_body": "1MB"}}


def _body(size: int, call_id: str) -> bytes:
    """One valid event padded with spaces to ``size`` bytes."""
    line = ndjson(ev("call_queued", LATE, call_id=call_id, queue="q"))
    return line[:-1] + b" " * (size - len(line)) + b"\n"


async def _hold(base: str, head: bytes, part: bytes) -> tuple[Any, Any]:
    """Open a connection, send a request head and part of its body; the reader and writer."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(head + part)
    await writer.drain()
    return reader, writer


async def _in_flight(service: FloorService, size: int) -> None:
    """Wait until the server counts ``size`` bytes in flight."""
    for _ in range(200):
        if service.stats.http_body_bytes_in_flight == size:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"in flight: {service.stats.http_body_bytes_in_flight}, not {size}")


async def _post(http: aiohttp.ClientSession, base: str, body: bytes) -> tuple[int, Any, Any]:
    headers = {"Content-Type": "application/x-ndjson"}
    async with http.post(f"{base}/api/v1/events", data=body, headers=headers) as resp:
        return resp.status, await resp.json(), resp.headers


async def test_a_body_beyond_the_bound_gets_503_until_room_is_made() -> None:
    """While one 1 MB body is being read, a second one is a 503 (Retry-After,
    limit max_inflight_body, counted) that its client reads in full; once the first
    is taken, the second is too, and nothing stays counted in flight."""
    first = _body(1024 * KB, "c1")
    head = (
        b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-ndjson\r\nContent-Length: %d\r\n\r\n" % len(first)
    )
    async with running(config(LIMITS)) as (service, base), aiohttp.ClientSession() as http:
        reader, writer = await _hold(base, head, first[:1000])
        await _in_flight(service, 1024 * KB)
        refused, reply, headers = await _post(http, base, _body(1024 * KB, "c2"))
        writer.write(first[1000:])
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.close()
        taken, _, _ = await _post(http, base, _body(1024 * KB, "c2"))
        stats = service.stats
    assert refused == 503
    assert headers["Retry-After"] == "1"
    assert reply["limit"] == "max_inflight_body"
    assert "[limits] max_inflight_body" in reply["error"]
    assert answer.startswith(b"HTTP/1.1 202")
    assert taken == 202
    assert stats.http_bodies_refused_total == 1
    assert stats.http_errors_total == {"503": 1}
    assert stats.http_body_bytes_in_flight == 0


async def test_a_chunked_body_is_counted_as_it_arrives() -> None:
    """A chunked body (no Content-Length) is counted as it grows: past what is left of
    the bound it is refused mid-body with a 503."""
    held = _body(512 * KB, "c1")
    head = (
        b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-ndjson\r\nContent-Length: %d\r\n\r\n" % len(held)
    )
    chunked_head = (
        b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b" " * (64 * KB)
    async with running(config(LIMITS)) as (service, base):
        _, holder = await _hold(base, head, held[:100])
        await _in_flight(service, 512 * KB)
        reader, writer = await _hold(base, chunked_head, b"")
        for _ in range(10):  # 640 KB: more than the 512 KB left
            writer.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.close()
        holder.close()
        await _in_flight(service, 0)
        refused = service.stats.http_bodies_refused_total
    assert answer.startswith(b"HTTP/1.1 503")
    assert refused == 1


async def test_refused_and_broken_bodies_give_their_share_back() -> None:
    """Bodies over max_body, unreadable or refused for access leave nothing counted."""
    cfg = config({"limits": {"max_body": "64KB", "max_inflight_body": "64KB"}})
    async with running(cfg) as (service, base), aiohttp.ClientSession() as http:
        too_large, _, _ = await _post(http, base, b" " * (65 * KB))
        empty, _, _ = await _post(http, base, b"  \n")
        ok, _, _ = await _post(http, base, _body(64 * KB, "c1"))
        stats = service.stats
    assert (too_large, empty, ok) == (413, 400, 202)
    assert stats.http_body_bytes_in_flight == 0
    assert stats.http_bodies_refused_total == 0
