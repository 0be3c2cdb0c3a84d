"""``/api/v1/changes``: the change bus as Server-Sent Events, the bus's first subscriber.

One ``changes`` event per tick in which something changed (the JSON of a
``ChangeSet``); a comment line every ``KEEPALIVE_S`` otherwise, so proxies keep the
stream open and a client that left is noticed. A client too slow to keep up is
dropped by the bus: it gets a final ``dropped`` event and should re-read the
snapshot before it subscribes again. A client leaving is normal, not an error.
"""

from __future__ import annotations

import asyncio
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


async def changes(request: web.Request) -> web.StreamResponse:
    """Stream change sets until the service stops, the client leaves or lags too far."""
    floor = floor_of(request)
    sub = floor.bus.subscribe("sse")
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    loop = asyncio.get_running_loop()
    try:
        await response.prepare(request)
        await response.write(b": connected\n\n")
        quiet_since = loop.time()
        while (item := await sub.get()) is not None:
            if item:
                await response.write(_encode(item))
                quiet_since = loop.time()
            elif loop.time() - quiet_since >= KEEPALIVE_S:
                await response.write(b": keep-alive\n\n")
                quiet_since = loop.time()
        if sub.dropped:
            await response.write(
                b'event: dropped\ndata: {"reason":"too slow: change sets were lost; '
                b're-read /api/v1/snapshot, then subscribe again"}\n\n'
            )
    except ConnectionResetError:  # the client left: normal for a stream
        pass
    finally:
        floor.bus.unsubscribe(sub)
    return response
