"""``/api/v1/changes``: the change bus as Server-Sent Events, the bus's first subscriber.

One ``changes`` event per tick in which something changed (the JSON of a
``ChangeSet``); a comment line every ``KEEPALIVE_S`` otherwise, so proxies keep the
stream open and a client that left is noticed. A client too slow to keep up is
dropped by the bus: it gets a final ``dropped`` event and should re-read the
snapshot before it subscribes again. A client that takes no data at all for
``stream_timeout_s`` (its socket stays full) is cut off, counted as dropped. A client
leaving is normal, not an error. ``HEAD`` answers the headers and streams nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Final

import msgspec
from aiohttp import web

from callfloor.processors.views import ChangeSet
from callfloor.web.floor import floor_of

KEEPALIVE_S: Final = 15.0

# The change set last encoded: every stream sends the same bytes for one tick.
_last: tuple[ChangeSet | None, bytes] = (None, b"")


def _encode(changes: ChangeSet) -> bytes:
    global _last
    if _last[0] is not changes:
        _last = (changes, b"event: changes\ndata: " + msgspec.json.encode(changes) + b"\n\n")
    return _last[1]


def reset_connection(request: web.Request) -> None:
    """Cut the connection with a reset: what the client never read is thrown away now,
    not kept by the kernel for minutes behind a graceful close."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def changes(request: web.Request) -> web.StreamResponse:
    """Stream change sets until the service stops, the client leaves or lags too far."""
    floor = floor_of(request)
    headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    if request.method == "HEAD":
        # A HEAD answer has no body: a stream would be one nobody reads, whose writes
        # aiohttp discards, so it would never notice the client left and would hold
        # its subscription until the service stops.
        return web.Response(headers=headers)
    sub = floor.bus.subscribe("sse")
    response = web.StreamResponse(headers=headers)
    loop = asyncio.get_running_loop()
    timeout = floor.stream_timeout_s

    async def send(data: bytes) -> None:
        # A write waits while the client's socket is full: bounded, or a client that
        # stopped reading would hold this task and its connection forever.
        async with asyncio.timeout(timeout):
            await response.write(data)

    try:
        await response.prepare(request)
        await send(b": connected\n\n")
        quiet_since = loop.time()
        while (item := await sub.get()) is not None:
            if item:
                await send(_encode(item))
                quiet_since = loop.time()
            elif loop.time() - quiet_since >= KEEPALIVE_S:
                await send(b": keep-alive\n\n")
                quiet_since = loop.time()
        if sub.dropped:
            await send(
                b'event: dropped\ndata: {"reason":"too slow: change sets were lost; '
                b're-read /api/v1/snapshot, then subscribe again"}\n\n'
            )
    except ConnectionResetError:  # the client left: normal for a stream
        pass
    except TimeoutError:
        # The client takes no data: it is too slow by any measure. Counted as dropped;
        # the connection is cut, since half a message may be in its socket.
        floor.bus.drop(sub)
        reset_connection(request)
    finally:
        floor.bus.unsubscribe(sub)
    return response
