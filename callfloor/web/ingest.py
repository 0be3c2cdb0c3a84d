"""``POST /api/v1/events``: decode a body, hand it to the HTTP source, answer from the receipt.

Only ``application/json`` (one event or an array) and ``application/x-ndjson``
bodies are taken: anything else is a 415, so a web page cannot post events
cross-site with a form or a ``text/plain`` body. A body over ``[limits]
max_body`` is a 413 before it is read in full; one with more events than ``[limits]
max_request_events`` is a 413 once decoded, and none of its events is taken. Large
bodies are decoded in a worker thread, one at a time, so other requests are served
meanwhile. The answer (202, or 400 when no event was taken) lists at most 100
rejections and 100 duplicates and counts all of them; it is sent once the batch is durable.

The bytes of the bodies being read or decoded at once, over all requests, are bounded
by ``[limits] max_inflight_body`` (:class:`BodyBudget`): a body is counted from its
``Content-Length`` before it is read (a chunked or compressed one as it arrives), and
released once decoded. A body that does not fit gets 503 with ``Retry-After`` and is not
read (aiohttp discards what the client still sends, so the client reads the answer).
"""

from __future__ import annotations

import asyncio
from asyncio import FIRST_COMPLETED
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from callfloor.events import Event
from callfloor.ingest.decode import LISTED_REJECTIONS, Decoded, decode_request
from callfloor.ingest.http import ServiceStopping
from callfloor.ingest.source import Receipt
from callfloor.web.errors import json_error, json_response
from callfloor.web.floor import WebStats, floor_of

CONTENT_TYPES: Final = ("application/json", "application/x-ndjson")
OFF_LOOP_BYTES: Final = 256 * 1024  # larger bodies are decoded in a worker thread
DECODE_LANE: web.AppKey[asyncio.Semaphore] = web.AppKey("decode_lane", asyncio.Semaphore)
GROW_STEP: Final = 1 << 20  # a body without Content-Length is counted a megabyte ahead


class BodyBudget:
    """Bytes of request bodies in flight (being read or decoded), against a limit.

    Every change is written to ``stats.http_body_bytes_in_flight`` (the gauge); refusals
    are counted in ``stats.http_bodies_refused_total``.
    """

    __slots__ = ("limit", "stats", "used")

    def __init__(self, limit: int, stats: WebStats) -> None:
        self.limit = limit
        self.stats = stats
        self.used = 0

    def take(self, size: int) -> bool:
        """Count ``size`` more bytes in flight if they fit; whether they did."""
        if self.used + size > self.limit:
            return False
        self.used += size
        self.stats.http_body_bytes_in_flight = self.used
        return True

    def give_back(self, size: int) -> None:
        """Stop counting ``size`` bytes (a body decoded, or a request that ended)."""
        self.used -= size
        self.stats.http_body_bytes_in_flight = self.used

    def refused(self) -> None:
        """Count a body refused because it did not fit."""
        self.stats.http_bodies_refused_total += 1


BODY_BUDGET: web.AppKey[BodyBudget] = web.AppKey("body_budget", BodyBudget)


class _Share:
    """One request's share of the :class:`BodyBudget`, grown as its body arrives."""

    __slots__ = ("budget", "max_size", "size")

    def __init__(self, budget: BodyBudget, max_size: int) -> None:
        self.budget = budget
        self.max_size = max_size
        self.size = 0

    def reserve(self, size: int) -> bool:
        """Start with ``size`` bytes (the Content-Length); whether the budget had room."""
        if not self.budget.take(size):
            return False
        self.size = size
        return True

    def cover(self, size: int) -> bool:
        """Make the share at least ``size`` bytes (a step ahead if there is room); whether
        the budget had room."""
        if size <= self.size:
            return True
        ahead = min(max(size, self.size + GROW_STEP), max(size, self.max_size))
        if self.budget.take(ahead - self.size):
            self.size = ahead
            return True
        if ahead > size and self.budget.take(size - self.size):  # no room to look ahead
            self.size = size
            return True
        return False

    def release(self) -> None:
        self.budget.give_back(self.size)
        self.size = 0


_UNSUPPORTED = (
    "unsupported Content-Type {got}: send application/json (one event or a JSON array) "
    "or application/x-ndjson (one event per line), e.g. "
    "curl -H 'Content-Type: application/x-ndjson' --data-binary @events.ndjson URL"
)


class _TooLarge(Exception):
    pass


class _Unreadable(Exception):
    """The body could not be read: broken framing or encoding, or the client left."""


class _NoRoom(Exception):
    """The body does not fit in [limits] max_inflight_body now."""


async def _read(request: web.Request, limit: int, share: _Share) -> bytes:
    length = request.content_length
    if length is not None and length > limit:
        raise _TooLarge
    if not share.reserve(length or 0):
        raise _NoRoom
    body = bytearray()
    try:
        async for chunk in request.content.iter_chunked(1 << 16):
            body += chunk
            if len(body) > limit:
                raise _TooLarge
            if not share.cover(len(body)):
                # Chunked, or inflating beyond its Content-Length (Content-Encoding).
                raise _NoRoom
    except web.RequestPayloadError as exc:
        # A broken chunked framing or Content-Encoding is the sender's fault: a 400
        # naming it, not a 500 with a traceback for every malformed request.
        detail = " ".join(str(exc).split()).removeprefix("400, message: ")
        # Nothing more can be read: say so, or aiohttp would read on after the answer
        # (its lingering close) and log the same error again as unhandled.
        request.content.feed_eof()
        raise _Unreadable(f"the body could not be read: {detail}") from None
    except ConnectionResetError:
        # The client left mid-body: nobody will read the answer, and it is no bug.
        raise _Unreadable("the connection closed before the whole body arrived") from None
    return bytes(body)


async def _decode(request: web.Request, body: bytes, not_after: float) -> Decoded:
    if len(body) < OFF_LOOP_BYTES:
        return decode_request(body, not_after=not_after)
    # One large body at a time in a thread: the loop keeps answering other requests,
    # and concurrent floods queue here instead of taking every core.
    async with request.app[DECODE_LANE]:
        return await asyncio.to_thread(decode_request, body, not_after=not_after)


def _answer(decoded: Decoded, receipt: Receipt) -> tuple[int, dict[str, Any]]:
    positions = decoded.positions
    events: list[Event] = decoded.events
    listed: list[dict[str, Any]] = [
        {"index": r.index, "reason": r.reason, "field": r.field, "message": r.message}
        for r in decoded.rejections
    ]
    listed.extend(
        {
            "index": positions[pos],
            "reason": refusal.reason,
            "field": refusal.field or None,
            "message": refusal.message,
        }
        for pos, refusal in receipt.refused[:LISTED_REJECTIONS]
    )
    listed.sort(key=lambda r: int(r["index"]))
    duplicates = [
        {"index": positions[pos], "id": events[pos].id}
        for pos in receipt.duplicates[:LISTED_REJECTIONS]
    ]
    accepted = len(events) - len(receipt.refused) - len(receipt.duplicates)
    reply = {
        "accepted": accepted,
        "rejected": listed[:LISTED_REJECTIONS],
        "rejected_total": decoded.rejected_total + len(receipt.refused),
        "duplicates": duplicates,
        "duplicates_total": len(receipt.duplicates),
    }
    return (202 if accepted or receipt.duplicates else 400), reply


async def ingest(request: web.Request) -> web.Response:
    """Accept events: one object, a JSON array or NDJSON (see the module docstring)."""
    return await _ingest(request, CONTENT_TYPES, _UNSUPPORTED, _decode)


Decode = Callable[[web.Request, bytes, float], Awaitable[Decoded]]


def feed_ingest(
    decode: Callable[[bytes, float], Decoded],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The route of a feed posted over HTTP (``callfloor.ingest.posted``): NDJSON
    records mapped by ``decode`` (its mapper, on the loop: a mapper keeps state), then
    answered like ``POST /api/v1/events``."""

    async def run(_request: web.Request, body: bytes, not_after: float) -> Decoded:
        return decode(body, not_after)

    async def handler(request: web.Request) -> web.Response:
        return await _ingest(request, FEED_CONTENT_TYPES, _FEED_UNSUPPORTED, run)

    return handler


FEED_CONTENT_TYPES: Final = ("application/x-ndjson", "application/json")
_FEED_UNSUPPORTED = (
    "unsupported Content-Type {got}: send the feed's records as application/x-ndjson "
    "(one record per line)"
)


async def _ingest(
    request: web.Request, types: tuple[str, ...], unsupported: str, decode: Decode
) -> web.Response:
    floor = floor_of(request)
    if request.content_type not in types:
        # aiohttp reports a missing header as application/octet-stream: name what was sent.
        sent = "Content-Type" in request.headers
        got = repr(request.content_type) if sent else "(no Content-Type header)"
        return json_error(415, unsupported.format(got=got))
    limits = floor.config.limits
    share = _Share(request.app[BODY_BUDGET], limits.max_body_bytes)
    try:
        taken = await _take(request, share, decode)
    finally:
        share.release()  # the body is decoded (or refused): its bytes are gone
    if isinstance(taken, web.Response):
        return taken
    return await _offer(request, taken)


async def _take(request: web.Request, share: _Share, decode: Decode) -> Decoded | web.Response:
    """Read and decode the body within its share of the budget; or the refusal."""
    floor = floor_of(request)
    limits = floor.config.limits
    # The body is read next to the service's stop: a stopping server reads no more of
    # it, so a request still uploading is answered (503, send again) at once instead of
    # holding the shutdown for its grace period and then losing the connection.
    reading = asyncio.ensure_future(_read(request, limits.max_body_bytes, share))
    try:
        async with asyncio.timeout(floor.body_timeout_s):
            await asyncio.wait((reading, floor.http.stopped()), return_when=FIRST_COMPLETED)
        if not reading.done():
            stopping = _stopping()
            stopping.force_close()
            return stopping
        body = reading.result()
    except _TooLarge:
        refused = json_error(
            413,
            f"body larger than {limits.max_body_bytes} bytes ([limits] max_body); "
            "split it into several requests",
            limit="max_body",
            max_bytes=limits.max_body_bytes,
        )
        refused.force_close()  # the rest of the body is not read: the connection ends
        return refused
    except TimeoutError:
        late = json_error(408, f"the body did not arrive within {floor.body_timeout_s:g} s")
        late.force_close()
        return late
    except _Unreadable as exc:
        unreadable = json_error(400, str(exc))
        unreadable.force_close()  # the framing is lost: the connection cannot be reused
        return unreadable
    except _NoRoom:
        share.budget.refused()
        # Not force-closed: aiohttp reads and discards what the client still sends (for
        # up to 10 s), so the client gets to read this answer instead of a reset.
        return json_error(
            503,
            f"too many request bodies in flight: [limits] max_inflight_body = "
            f"{limits.max_inflight_body_bytes} bytes are being read or decoded; nothing "
            "was taken, send the body again",
            {"Retry-After": "1"},
            limit="max_inflight_body",
        )
    finally:
        reading.cancel()  # a no-op once it is done
    return await decode(request, body, floor.not_after())


async def _offer(request: web.Request, decoded: Decoded) -> web.Response:
    """Hand the decoded events to the HTTP source; the answer from its receipt."""
    floor = floor_of(request)
    limits = floor.config.limits
    if not decoded.events and not decoded.rejected_total:
        return json_error(400, "empty body: send a JSON event, a JSON array or NDJSON")
    events = len(decoded.events)
    if events > limits.max_request_events:
        # The limit bounds the batch one request hands to the writer (applied in one
        # round). Invalid items never reach it: [limits] max_body bounds them, and they
        # are listed and counted as rejections like in any other body.
        return json_error(
            413,
            f"{events} events in one body, more than [limits] max_request_events = "
            f"{limits.max_request_events}; split it into several requests",
            limit="max_request_events",
            max_events=limits.max_request_events,
        )
    capacity = limits.max_pending_events
    if len(decoded.events) > capacity:
        return json_error(
            413,
            f"{len(decoded.events)} events in one body, more than the {capacity} the service "
            "holds ([limits] max_pending_events); split it",
            limit="max_pending_events",
        )
    problem = floor.store_problem()
    if problem is not None:
        # Nothing can be acknowledged until the store is back: say so now, rather than
        # hold the request until the ack timeout. (Bodies already taken stay queued.)
        return json_error(
            503,
            f"the store cannot keep events now ({problem}); nothing was taken, send again",
            {"Retry-After": "2"},
            store="failing",
        )
    try:
        acked = floor.http.offer(decoded.events, decoded.rejected_by_reason)
    except ServiceStopping:
        return _stopping()
    if acked is None:
        return json_error(
            503,
            f"ingest backlog full ([limits] max_pending_events = {capacity}); retry later",
            {"Retry-After": "1"},
            limit="max_pending_events",
        )
    try:
        async with asyncio.timeout(floor.ack_timeout_s):
            receipt = await acked
    except ServiceStopping:
        return _stopping()
    except TimeoutError:
        return json_error(
            503, "the events were not acknowledged in time; send them again", {"Retry-After": "1"}
        )
    status, reply = _answer(decoded, receipt)
    return json_response(reply, status)


def _stopping() -> web.Response:
    return json_error(
        503, "the service is stopping; send the body again after restart", {"Retry-After": "5"}
    )
