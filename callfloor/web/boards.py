"""Board streams: the wallboard and supervisor views pushed as values over Server-Sent Events.

``GET /api/v1/wallboard/stream?site=NAME`` and ``GET /api/v1/supervisor/stream?site=NAME``
send one site's typed view (:class:`~callfloor.processors.views.WallboardView`,
:class:`~callfloor.processors.views.SupervisorView`) as JSON, whole, every time it
changed: a browser never refetches anything.

The :class:`BoardHub` (one task per application, ``boards``) watches the floor's clock
and version every :data:`POLL_S`. When either moved (a tick, or held events released as
the watermark passed them) it builds the views of the channels that have subscribers
(a channel is one board, one site and, for the supervisor, one
:class:`~callfloor.processors.views.NamePolicy`), from the typed reads, encodes each
once, and hands the same bytes to every subscriber of the channel: one encode, N
writes. Nothing happens per event. Builds are spaced by at least 1/0.15 times what the
last one took (and at least :data:`MIN_GAP_S`), so building never takes more than
15 % of a core however large the floor, and pushes follow a released event within about
0.1 s on a floor whose views build in 10 ms.

Each push carries ``id: <epoch>-<seq>``. A stream opens with the channel's current
view (the snapshot), unless the client's ``Last-Event-ID`` says it has that one already
(a reconnection within one push). A subscriber holds only the latest push: a client too
slow for every push skips to the newest (counted), and one that takes nothing for
``stream_timeout_s`` is cut off (counted). A ``: keep-alive`` comment comes every 15 s
of quiet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Callable, Collection
from typing import Final

import msgspec
from aiohttp import web

from callfloor.processors.read import FloorReader
from callfloor.processors.views import NamePolicy, SupervisorView, WallboardView
from callfloor.web.auth import name_policy
from callfloor.web.changes import reset_connection
from callfloor.web.errors import json_error
from callfloor.web.floor import Floor, floor_of

__all__ = ["BOARDS", "BoardHub", "add_routes"]

log = logging.getLogger("callfloor.web")

POLL_S: Final = 0.05
MIN_GAP_S: Final = 0.1
MAX_GAP_S: Final = 1.0
BUILD_SHARE: Final = 0.15  # of one core, at most, for building and encoding the views
KEEPALIVE_S: Final = 15.0
RETRY_MS: Final = 2000  # how soon a browser reconnects after the stream broke

WALLBOARD: Final = "wallboard"
SUPERVISOR: Final = "supervisor"
ACK_ROUTE: Final = "alert_ack"  # the alert acknowledgement route's name, once it exists

Key = tuple[str, str, NamePolicy | None]  # board, site, name policy (supervisor only)


class Listener:
    """One subscriber: the newest push not yet sent, and a signal that there is one."""

    __slots__ = ("closed", "frame", "ready", "sent_seq", "skipped")

    def __init__(self) -> None:
        self.frame: tuple[int, bytes] | None = None
        self.sent_seq = -1
        self.skipped = 0
        self.closed = False
        self.ready = asyncio.Event()

    def offer(self, seq: int, frame: bytes) -> None:
        """Make ``frame`` the next to send, replacing one not sent yet (counted)."""
        if self.frame is not None:
            self.skipped += 1
        self.frame = (seq, frame)
        self.ready.set()

    def close(self) -> None:
        """End the subscription (the service stops)."""
        self.closed = True
        self.ready.set()

    async def next(self, timeout: float) -> tuple[int, bytes] | None:
        """The next frame to send, or None after ``timeout`` with nothing new."""
        if self.frame is None and not self.closed:
            self.ready.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self.ready.wait()
        frame, self.frame = self.frame, None
        return frame


class Channel:
    """One board of one site (and name policy): its subscribers and its last push."""

    __slots__ = ("body", "frame", "listeners", "seq")

    def __init__(self) -> None:
        self.listeners: set[Listener] = set()
        self.seq = 0
        self.body = b""
        self.frame = b""


class BoardStats:
    """What the hub did, for benchmarks and the log: builds, pushes, bytes, skips."""

    __slots__ = ("build_seconds", "builds", "cut_off", "push_bytes", "pushes", "skipped")

    def __init__(self) -> None:
        self.builds = 0
        self.build_seconds = 0.0
        self.pushes: dict[str, int] = {WALLBOARD: 0, SUPERVISOR: 0}
        self.push_bytes: dict[str, int] = {WALLBOARD: 0, SUPERVISOR: 0}
        self.skipped = 0
        self.cut_off = 0


class BoardHub:
    """Builds, encodes and fans out the board views (see the module docstring)."""

    def __init__(self, floor: Floor, clock: Callable[[], float] = time.perf_counter) -> None:
        self.floor = floor
        self.clock = clock
        self.channels: dict[Key, Channel] = {}
        self.epoch = secrets.token_hex(4)
        self.stats = BoardStats()
        self.acknowledge = False  # set by the application: an acknowledgement route exists
        self._seen: tuple[float, int, int] | None = None
        self._last_build = -math.inf
        self._gap = MIN_GAP_S
        self._wake = asyncio.Event()
        self._closed = False

    # ---------------------------------------------------------------- subscribers

    def subscribe(self, board: str, site: str, names: NamePolicy | None) -> Listener:
        """A new subscriber of one channel; offered the channel's current view at once."""
        key = (board, site, names)
        channel = self.channels.get(key)
        if channel is None:
            channel = self.channels[key] = Channel()
            self._seen = None  # a new channel: build it at the next poll
            self._wake.set()
        listener = Listener()
        if self._closed:
            listener.close()
        channel.listeners.add(listener)
        if channel.frame:
            listener.offer(channel.seq, channel.frame)
        return listener

    def unsubscribe(self, board: str, site: str, names: NamePolicy | None, sub: Listener) -> None:
        """Stop delivering to ``sub``; a channel nobody reads is forgotten."""
        key = (board, site, names)
        channel = self.channels.get(key)
        if channel is None:
            return
        channel.listeners.discard(sub)
        self.stats.skipped += sub.skipped
        sub.skipped = 0
        if not channel.listeners:
            del self.channels[key]

    def clients(self, board: str | None = None) -> int:
        """Subscribers now (of one board, or all)."""
        return sum(
            len(c.listeners) for k, c in self.channels.items() if board is None or k[0] == board
        )

    def close(self) -> None:
        """End every stream (the service stops)."""
        self._closed = True
        for channel in self.channels.values():
            for listener in channel.listeners:
                listener.close()
        self._wake.set()

    def event_id(self, seq: int) -> str:
        """The SSE id of push ``seq`` of this process."""
        return f"{self.epoch}-{seq}"

    # ---------------------------------------------------------------- building

    def _due(self) -> bool:
        if not self.channels:
            return False
        view = self.floor.view
        seen = (view.as_of, view.version, len(view.stale()))
        if seen == self._seen:
            return False
        return self.clock() - self._last_build >= self._gap

    def build(self) -> None:
        """Build, encode and offer every channel's view now."""
        view = self.floor.view
        started = self.clock()
        self._seen = (view.as_of, view.version, len(view.stale()))
        if not math.isfinite(view.as_of):
            return
        sites = view.site_names()
        head = b'{"sites":' + msgspec.json.encode(sites)
        head += b',"acknowledge":' + (b"true" if self.acknowledge else b"false")
        wanted: dict[tuple[str, NamePolicy | None], set[str]] = {}
        for board, site, names in self.channels:
            wanted.setdefault((board, names), set()).add(site)
        for (board, names), of in wanted.items():
            views = _build(view, board, of, names)
            for site in of:
                channel = self.channels[(board, site, names)]
                found = views.get(site)
                body = msgspec.json.encode(found) if found is not None else b"null"
                if body == channel.body and channel.frame:
                    continue
                channel.seq += 1
                channel.body = body
                data = head + b',"view":' + body + b"}"
                channel.frame = (
                    f"id: {self.event_id(channel.seq)}\nevent: {board}\ndata: ".encode()
                    + data
                    + b"\n\n"
                )
                for listener in channel.listeners:
                    listener.offer(channel.seq, channel.frame)
                self.stats.pushes[board] += len(channel.listeners)
                self.stats.push_bytes[board] += len(channel.frame) * len(channel.listeners)
        took = self.clock() - started
        self._last_build = started
        self.stats.builds += 1
        self.stats.build_seconds += took
        self._gap = min(MAX_GAP_S, max(MIN_GAP_S, took / BUILD_SHARE))

    async def run(self) -> None:
        """Poll the floor and build when due, until cancelled or closed."""
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_S):
                    await self._wake.wait()
            self._wake.clear()
            try:
                if self._due():
                    self.build()
            except Exception:  # a bug in a view must not end every board
                log.exception("board_build_error")
                self._last_build = self.clock()


def _build(
    view: FloorReader, board: str, sites: Collection[str], names: NamePolicy | None
) -> dict[str, WallboardView] | dict[str, SupervisorView]:
    if board == WALLBOARD:
        return view.wallboards(sites)
    return view.supervisor(sites, names=names or NamePolicy.HIDE)


BOARDS: web.AppKey[BoardHub] = web.AppKey("boards", BoardHub)


async def _stream(request: web.Request, board: str) -> web.StreamResponse:
    floor = floor_of(request)
    hub = request.app[BOARDS]
    site = request.query.get("site", "").strip()
    if len(site) > 200:
        return json_error(400, "site is longer than any site name can be")
    if not site:
        names = floor.view.site_names() if math.isfinite(floor.view.as_of) else []
        site = names[0] if names else ""
    headers = {
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache, no-store",
        "X-Accel-Buffering": "no",  # nginx: pass each push on at once
    }
    if request.method == "HEAD":
        return web.Response(headers=headers)
    policy = name_policy(request) if board == SUPERVISOR else None
    sub = hub.subscribe(board, site, policy)
    response = web.StreamResponse(headers=headers)
    timeout = floor.stream_timeout_s
    last_id = request.headers.get("Last-Event-ID")

    async def send(data: bytes) -> None:
        async with asyncio.timeout(timeout):
            await response.write(data)

    try:
        await response.prepare(request)
        await send(f"retry: {RETRY_MS}\n: connected\n\n".encode())
        while not sub.closed:
            frame = await sub.next(KEEPALIVE_S)
            if frame is None:
                if not sub.closed:
                    await send(b": keep-alive\n\n")
                continue
            seq, data = frame
            if last_id is not None and last_id == hub.event_id(seq):
                last_id = None  # the client has this one: a reconnection within one push
                continue
            last_id = None
            await send(data)
    except ConnectionResetError:
        pass
    except TimeoutError:
        hub.stats.cut_off += 1
        reset_connection(request)
    finally:
        hub.unsubscribe(board, site, policy, sub)
    return response


async def wallboard_stream(request: web.Request) -> web.StreamResponse:
    """One site's wallboard view, pushed whenever it changed (Server-Sent Events)."""
    return await _stream(request, WALLBOARD)


async def supervisor_stream(request: web.Request) -> web.StreamResponse:
    """One site's supervisor view, pushed whenever it changed (Server-Sent Events)."""
    return await _stream(request, SUPERVISOR)


async def _hub(app: web.Application) -> AsyncIterator[None]:
    """The hub's task for the application's life (aiohttp's cleanup context)."""
    hub = app[BOARDS]
    hub.acknowledge = any(route.name == ACK_ROUTE for route in app.router.routes())
    task = asyncio.create_task(hub.run(), name="boards")
    yield
    hub.close()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _closing(app: web.Application) -> None:
    """Open streams end as the server stops, not after its grace period."""
    app[BOARDS].close()


def add_routes(app: web.Application, floor: Floor) -> None:
    """Register the board streams and the hub's task."""
    app[BOARDS] = BoardHub(floor)
    app.router.add_get("/api/v1/wallboard/stream", wallboard_stream, name="wallboard_stream")
    app.router.add_get("/api/v1/supervisor/stream", supervisor_stream, name="supervisor_stream")
    app.cleanup_ctx.append(_hub)
    app.on_shutdown.append(_closing)
