"""The AMI source: a small asyncio client of the Asterisk Manager Interface.

One TCP connection (``tcp://host:5038``): the banner, ``Login`` (``auth = "md5"``: the
``Challenge`` action and an MD5 key, the secret never sent; or ``"plain"``) with
``Events: on``, then the event stream, read with :class:`~callfloor.feeds.ami.AmiParser`
and mapped with :class:`~callfloor.feeds.ami.AmiMapper` (both pure). A quiet connection
is probed with ``Ping`` every ``ping_interval``; no answer within another interval ends
it. Any error ends the iterator: the supervisor reconnects with capped, jittered
backoff (:mod:`callfloor.ingest.supervisor`).

After each login the client asks ``QueueStatus`` and re-syncs what it knows:
``QueueMember`` answers become member statuses (membership, pause, device state),
``QueueEntry`` answers of callers it did not know are joins (at ``now - Wait``), and
callers it thought waiting that are no longer queued leave (settled as dequeued unless
an answer follows). The events AMI sent while the client was disconnected are lost by
AMI's nature: the gap is counted (``callfloor_source_gap_seconds_total``) and logged;
prefer the queue_log source where both exist (docs/sources.md).

AMI has no position to save: a restart begins from the re-sync. Event ids come from the
message and a number unique to the connection (its start time in microseconds plus the
byte offset), so two connections never give the same id.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self
from urllib.parse import urlsplit

from callfloor.config import SourceConfig
from callfloor.feeds.ami import LEAVE_GRACE_S, AmiMapper, AmiParser
from callfloor.feeds.base import FeedOptions, MapResult
from callfloor.ingest.counts import SourceCounts
from callfloor.ingest.feedsource import FeedBatcher
from callfloor.ingest.source import Batch

if TYPE_CHECKING:
    from callfloor.ingest.kinds import KeyReader, SourceContext

log = logging.getLogger("callfloor.ingest")

AUTHS: Final = ("md5", "plain")
PING_S: Final = 20.0
CONNECT_TIMEOUT_S: Final = 10.0
READ_BYTES: Final = 65_536
RESYNC_ID: Final = "callfloor-resync"


class AmiError(Exception):
    """The manager refused us (login) or stopped answering; the supervisor reconnects."""


@dataclass(frozen=True, slots=True)
class AmiOptions:
    """An AMI source's own settings."""

    host: str = "127.0.0.1"
    port: int = 5038
    auth: str = "md5"
    ping_s: float = PING_S


def parse_options(r: KeyReader, table: Mapping[str, object], key: str) -> dict[str, Any]:
    """The keys of an ``ami`` source (the registry's parser)."""
    url = r.string(table.get("url", "tcp://127.0.0.1:5038"), f"{key}.url")
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
        bad = True
    else:
        bad = False
    if bad or parts.scheme != "tcp" or not parts.hostname or parts.path not in ("", "/"):
        raise r.error(f"{key}.url", f"expected tcp://host:port, got {url!r}")
    for needed in ("username", "secret"):
        if needed not in table:
            raise r.error(f"{key}.{needed}", f"an ami source needs the manager's {needed}")
    ping = r.duration(table.get("ping_interval", PING_S), f"{key}.ping_interval")
    if not 0.05 <= ping <= 3600:
        raise r.error(f"{key}.ping_interval", f"must be between 50ms and 1h, got {ping:g} s")
    return {
        "url": url,
        "options": AmiOptions(
            host=parts.hostname or "127.0.0.1",
            port=port or 5038,
            auth=r.choice(table.get("auth", "md5"), f"{key}.auth", AUTHS),
            ping_s=ping,
        ),
    }


def make_ami_source(entry: SourceConfig, ctx: SourceContext) -> AmiSource:
    """The registry's factory."""
    service = ctx.service
    return AmiSource(
        entry,
        FeedOptions.from_config(ctx.config, site=entry.site),
        counts=service.stats.source_counts,
        clock=service.clock,
        not_after=service.not_after,
    )


def action(name: str, **fields: str) -> bytes:
    """An AMI action on the wire."""
    lines = [f"Action: {name}", *(f"{k}: {v}" for k, v in fields.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class AmiSource:
    """An AMI connection as a source (see the module docstring)."""

    def __init__(
        self,
        config: SourceConfig,
        feed: FeedOptions,
        *,
        counts: SourceCounts | None = None,
        clock: Callable[[], float] = time.time,
        not_after: Callable[[], float] | None = None,
        leave_grace_s: float = LEAVE_GRACE_S,
    ) -> None:
        self.config = config
        self.options = config.options if isinstance(config.options, AmiOptions) else AmiOptions()
        self.batcher = FeedBatcher(
            config.name, config.kind, counts, clock=clock, not_after=not_after
        )
        self.counts = self.batcher.counts
        self.key = (config.name, config.kind)
        self.clock = clock
        self.mapper = AmiMapper(feed, leave_grace_s=leave_grace_s)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._parser = AmiParser()
        self._early: list[tuple[dict[str, str], int]] = []  # events read while logging in
        self._connections = 0
        self._lost_at: float | None = None
        self._pings = 0

    @property
    def name(self) -> str:
        """The source name (metric label, key in ``/readyz``)."""
        return self.config.name

    # ------------------------------------------------------------------ connection

    async def __aenter__(self) -> Self:
        """Connect, log in, ask for the queues' state (the re-sync)."""
        opts = self.options
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(opts.host, opts.port)
        self._reader, self._writer = reader, writer
        # Ids are unique per connection: the position numbers start at its start time.
        self._parser = AmiParser(int(self.clock() * 1e6) << 16)
        self._early = []
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await self._login()
        except BaseException:
            await self._close()
            raise
        self._connections += 1
        if self._connections > 1:
            self.counts.add(self.counts.reconnects_total, self.key, 1)
        if self._lost_at is not None:
            gap = max(0.0, self.clock() - self._lost_at)
            self.counts.gap_seconds_total[self.key] = (
                self.counts.gap_seconds_total.get(self.key, 0.0) + gap
            )
            log.warning(
                "ami_gap source=%s seconds=%.1f (events of the gap are lost; re-syncing "
                "with QueueStatus)",
                self.name,
                gap,
            )
            self._lost_at = None
        writer.write(action("QueueStatus", ActionID=RESYNC_ID))
        await writer.drain()
        log.info("ami_connected source=%s host=%s port=%d", self.name, opts.host, opts.port)
        return self

    async def _response(self, action_id: str) -> dict[str, str]:
        """Read until the response to ``action_id`` (events meanwhile are kept)."""
        while True:
            for message, position in await self._messages():
                if message.get("ActionID") == action_id and "Response" in message:
                    return message
                if "Event" in message:
                    self._early.append((message, position))

    async def _messages(self) -> list[tuple[dict[str, str], int]]:
        """The messages the next read completes, each with its position."""
        assert self._reader is not None
        data = await self._reader.read(READ_BYTES)
        if not data:
            raise AmiError("the manager closed the connection")
        messages = self._parser.feed(data)
        return [(m, start[0]) for m, start in zip(messages, self._parser.starts, strict=True)]

    async def _login(self) -> None:
        writer = self._writer
        assert writer is not None
        user, secret = self.config.username or "", self.config.secret or ""
        if self.options.auth == "md5":
            writer.write(action("Challenge", AuthType="MD5", ActionID="callfloor-challenge"))
            answer = await self._response("callfloor-challenge")
            challenge = answer.get("Challenge")
            if answer.get("Response") != "Success" or not challenge:
                raise AmiError(f"Challenge refused: {answer.get('Message', answer)}")
            key = hashlib.md5((challenge + secret).encode(), usedforsecurity=False).hexdigest()
            login = action(
                "Login",
                AuthType="MD5",
                Username=user,
                Key=key,
                Events="on",
                ActionID="callfloor-login",
            )
        else:
            login = action(
                "Login", Username=user, Secret=secret, Events="on", ActionID="callfloor-login"
            )
        writer.write(login)
        answer = await self._response("callfloor-login")
        if answer.get("Response") != "Success":
            raise AmiError(f"Login refused: {answer.get('Message', 'no message')}")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the connection; the time it went is the start of a gap."""
        if self._writer is not None:
            self._lost_at = self.clock()
        await self._close()

    async def _close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    # ------------------------------------------------------------------ events

    def __aiter__(self) -> AsyncIterator[Batch]:
        return self._batches()

    async def _batches(self) -> AsyncIterator[Batch]:
        ping_s = self.options.ping_s
        waiting_pong: float | None = None
        resync: list[dict[str, str]] | None = []  # QueueStatus answers until its end
        pending = self._early
        self._early = []
        loop = asyncio.get_running_loop()
        while True:
            messages = pending
            pending = []
            if not messages:
                try:
                    async with asyncio.timeout(ping_s):
                        messages = await self._messages()
                except TimeoutError:
                    if waiting_pong is not None:
                        raise AmiError(f"no answer to Ping within {ping_s:g} s") from None
                    waiting_pong = loop.time()
                    await self._ping()
                    settled = self.mapper.finish(at=self.clock())
                    if settled.events:
                        yield self._batch(settled, 0)
                    continue
            waiting_pong = None  # anything read shows the connection lives
            now = self.clock()
            events: list[dict[str, str]] = []
            positions: list[int] = []
            for message, position in messages:
                if message.get("ActionID") == RESYNC_ID and resync is not None:
                    if message.get("Event") == "QueueStatusComplete":
                        synced = self._resynced(resync, now)
                        events += synced
                        # A number no message of the connection has: just past this one.
                        positions += [position + 1 + i for i in range(len(synced))]
                        resync = None
                    elif "Event" in message:
                        resync.append(message)
                    continue
                if "Event" in message and "Timestamp" not in message:
                    message["Timestamp"] = f"{now:.6f}"  # timestampevents = no
                events.append(message)
                positions.append(position)
            if not events:
                continue
            yield self._batch(self.mapper.feed(events, positions), len(events))

    async def _ping(self) -> None:
        writer = self._writer
        if writer is None:
            raise AmiError("not connected")
        self._pings += 1
        writer.write(action("Ping", ActionID=f"callfloor-ping-{self._pings}"))
        await writer.drain()

    def _resynced(self, answers: list[dict[str, str]], now: float) -> list[dict[str, str]]:
        """QueueStatus answers as the events that bring the mapper's state up to date."""
        out: list[dict[str, str]] = []
        stamp = f"{now:.6f}"
        queued: set[str] = set()
        calls = self.mapper.core.state.calls
        for m in answers:
            kind = m.get("Event")
            if kind == "QueueMember":
                out.append({**m, "Event": "QueueMemberStatus", "Timestamp": stamp})
            elif kind == "QueueEntry":
                uid = m.get("Uniqueid")
                if not uid:
                    continue
                queued.add(uid)
                memo = calls.get(uid)
                if memo is None or not memo.waiting:
                    try:
                        wait = max(0.0, float(m.get("Wait", "0")))
                    except ValueError:
                        wait = 0.0
                    out.append({**m, "Event": "QueueCallerJoin", "Timestamp": f"{now - wait:.6f}"})
        for uid, memo in calls.items():
            if memo.waiting and uid not in queued:
                out.append(
                    {
                        "Event": "QueueCallerLeave",
                        "Timestamp": stamp,
                        "Uniqueid": uid,
                        "Queue": memo.queue or "",
                    }
                )
        log.info(
            "ami_resynced source=%s members=%d entries=%d",
            self.name,
            sum(1 for m in answers if m.get("Event") == "QueueMember"),
            len(queued),
        )
        return out

    def _batch(self, result: MapResult, records: int) -> Batch:
        return self.batcher.batch(result, records)
