"""Review: the edges of the HTTP API against a real server (bodies that cannot be read,
clients that leave or stop reading, HEAD on the change stream)."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct
import zlib

import aiohttp
import pytest
from helpers import T0, config, ev
from live import ndjson, post, running

from callfloor.service import FloorService

NDJSON = "application/x-ndjson"


async def _open(base: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = base.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def _answer(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str]]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode().split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    body = await asyncio.wait_for(reader.readexactly(int(fields["Content-Length"])), 5)
    return lines[0].encode(), json.loads(body)


async def test_a_body_with_a_corrupt_content_encoding_is_a_json_400(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A gzip body that does not inflate is the sender's fault: a JSON 400 naming the
    encoding, not a 500 logged with a traceback."""
    with caplog.at_level(logging.ERROR):
        async with running() as (service, base), aiohttp.ClientSession() as http:
            async with http.post(
                f"{base}/api/v1/events",
                data=b"this is not gzip",
                headers={"Content-Type": NDJSON, "Content-Encoding": "gzip"},
            ) as resp:
                status, reply = resp.status, await resp.json()
            await asyncio.sleep(0.05)  # aiohttp's lingering close would log after the answer
    assert status == 400
    assert "content-encoding" in reply["error"].lower()
    assert "500" not in service.stats.http_errors_total
    assert _errors(caplog) == []


async def test_a_gzip_body_that_inflates_is_taken() -> None:
    """The same route takes a well-formed gzip body (the fix refuses only broken ones)."""
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    body = ndjson(ev("call_queued", T0 - 30, call_id="c1", queue="q"))
    packed = packer.compress(body) + packer.flush()
    async with running() as (_, base), aiohttp.ClientSession() as http:
        status, reply = await post(
            http, base, packed, {"Content-Type": NDJSON, "Content-Encoding": "gzip"}
        )
    assert (status, reply["accepted"]) == (202, 1)


_EVENT = ndjson(ev("call_queued", T0 - 30, call_id="c1", queue="q"))
MALFORMED = {
    "broken-chunk-size": b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"%x\r\n" % len(_EVENT)
    + _EVENT
    + b"\r\nnot-a-size\r\n",
    "request-line-over-8-kb": b"GET /api/v1/queues/" + b"x" * 10_000 + b" HTTP/1.1\r\n\r\n",
    "raw-byte-in-path": b"GET /api/v1/queues/\xff HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
}


@pytest.mark.parametrize("request_bytes", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_http_gets_a_json_400_and_no_error_log(
    caplog: pytest.LogCaptureFixture, request_bytes: bytes
) -> None:
    """Malformed HTTP is the sender's fault: a counted JSON 400 naming the problem, and no
    ERROR log line a client can repeat at will."""
    with caplog.at_level(logging.ERROR):
        async with running() as (service, base):
            reader, writer = await _open(base)
            writer.write(request_bytes)
            status, reply = await _answer(reader)
            writer.close()
            await asyncio.sleep(0.05)
    # aiohttp answers a request it could not parse as HTTP/1.0 (its version is unknown).
    assert status.split()[1] == b"400"
    assert reply["error"]
    assert service.stats.http_errors_total.get("400") == 1
    assert _errors(caplog) == []


async def test_a_client_leaving_mid_body_is_no_internal_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A client that disconnects before its body arrived is not a bug: no 500 counted, no
    traceback logged, and the service goes on taking events."""
    with caplog.at_level(logging.ERROR):
        async with running() as (service, base), aiohttp.ClientSession() as http:
            _, writer = await _open(base)
            writer.write(
                b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b'Content-Type: application/x-ndjson\r\nContent-Length: 1000\r\n\r\n{"type"'
            )
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.close()
            await asyncio.sleep(0.1)
            status, _ = await post(
                http, base, ndjson(ev("call_queued", T0 - 30, call_id="c1", queue="q"))
            )
    assert status == 202
    assert "500" not in service.stats.http_errors_total
    assert _errors(caplog) == []


async def test_a_post_without_content_type_is_told_none_was_sent() -> None:
    """The 415 for a body sent with no Content-Type says so, instead of naming a type the
    client never sent (aiohttp's application/octet-stream default)."""
    async with running() as (_, base):
        reader, writer = await _open(base)
        writer.write(
            b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}"
        )
        status, reply = await _answer(reader)
        writer.close()
    assert status.startswith(b"HTTP/1.1 415")
    assert "no Content-Type" in reply["error"]
    assert "octet-stream" not in reply["error"]


async def test_head_on_the_change_stream_answers_without_subscribing() -> None:
    """HEAD /api/v1/changes answers its headers at once and leaves no subscription behind
    (a stream for HEAD has its writes discarded and never notices the client left)."""
    async with running() as (service, base):
        for _ in range(3):
            reader, writer = await _open(base)
            writer.write(
                b"HEAD /api/v1/changes HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            )
            head = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            assert head.startswith(b"HTTP/1.1 200")
            assert b"text/event-stream" in head
        await service.next_tick()
        assert len(service.bus) == 0


def _tcp_state(sock: socket.socket) -> int:
    """The kernel's TCP state of ``sock`` (1 established, 7 closed), read without reading data."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    return int(struct.unpack("B", info[:1])[0])


async def _flood_changes(service: FloorService, base: str, rounds: int) -> None:
    """Large change sets: 2,000 agents with 1,000-character names change state every
    round, so every tick's change set lists them all (2 MB)."""
    names = [f"agent-{i:04d}-" + "x" * 980 for i in range(2000)]
    async with aiohttp.ClientSession() as http:
        for r in range(rounds):
            state = "available" if r % 2 else "not_ready"
            body = ndjson(*(ev("agent_state", T0 - 50 + r, agent=a, state=state) for a in names))
            status, reply = await post(http, base, body)
            assert status == 202, reply
            await service.next_tick()


async def test_a_change_stream_client_that_stops_reading_is_cut_off() -> None:
    """A change-stream client whose socket stays full is disconnected after the stream
    timeout (counted as a dropped subscriber) instead of holding its connection forever."""
    cfg = config({"limits": {"max_name_length": 1000}})
    async with running(cfg, stream_timeout_s=0.3) as (service, base):
        host, port = base.removeprefix("http://").split(":")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((host, int(port)))
        sock.sendall(b"GET /api/v1/changes HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        try:
            await _flood_changes(service, base, rounds=8)  # 16 MB the client never reads
            for _ in range(100):
                if _tcp_state(sock) != 1:
                    break
                await asyncio.sleep(0.05)
            assert _tcp_state(sock) != 1, "the server still holds the stalled stream open"
            assert service.stats.changes_dropped_total.get("sse") == 1
            assert len(service.bus) == 0
        finally:
            sock.close()
