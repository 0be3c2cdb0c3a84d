"""The ``redis://`` store: a stream per site, checkpoints and leases, shared by processes.

Keys (``{p}`` is ``[store] key_prefix``, default ``callfloor``)::

    {p}:events:{site}         stream: one entry per ingest round's events of the site,
                              field ``r`` = MessagePack Record(at, events) (as file://)
    {p}:sites                 set: the sites known (configured ones, and every site
                              appended by anyone)
    {p}:checkpoint:{part}     string: the partition's newest checkpoint; the stream
                              positions it covers are inside it
    {p}:checkpoint-previous:{part}
                              string: the one before it (the fallback when the newest
                              is damaged); the streams are kept back to its positions
    {p}:checkpoint-damaged:{part}, {p}:checkpoint-previous-damaged:{part}
                              string: a checkpoint recovery found damaged, set aside
    {p}:lease:{part}          string: the member owning the partition, with PX
    {p}:members               sorted set: member -> expiry (server ms), the heartbeats
    {p}:trimmed               hash: site -> the last position trimmed off its stream
    {p}:round:{token}         string, short-lived: an append landed (retries are exact)

Every process appends what it receives (:meth:`RedisStore.append`, one MULTI per
round: the durability point, with ``appendfsync always``); the owner of a partition
follows its streams (:meth:`RedisStore.read`) and checkpoints it (:meth:`RedisStore.save`,
a Lua script that writes only while the lease is ours, keeps the checkpoint it replaces
as the previous one and trims the streams behind that one). A position is a stream
entry id; a partition's positions map each of its sites to the id of the last entry it
covers. A replay refuses a stream that does not go on from the checkpoint's position:
trimmed past it, deleted, shorter than it, or with entries after it deleted.

The client never retries a command by itself: a retry of an append whose answer was
lost would log the round twice. The writer retries; the round's token makes the retry
find the first attempt when it did land.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from time import monotonic
from typing import Any, Final, TypeVar, cast
from urllib.parse import urlsplit

import msgspec
from redis import exceptions as rex
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from callfloor.config import StoreConfig
from callfloor.events import Event
from callfloor.ingest.source import Batch
from callfloor.store.base import (
    ALL,
    RECORD_DECODER,
    RECORD_ENCODER,
    LeaseLost,
    Logged,
    PartitionMap,
    Record,
    StoreError,
    StoreHealth,
)

log = logging.getLogger("callfloor")

_T = TypeVar("_T")

PAGE: Final = 1000  # entries per XRANGE / XREAD page
SITES_REFRESH_S: Final = 1.0  # how stale the known sites may be when following streams
ROUND_TOKEN_TTL_MS: Final = 15 * 60 * 1000  # how long a retry can still find its round
# How long one Redis operation may take (a followed read: this beyond its block time).
# The client itself has no socket timeout: redis-py then waits for a write with
# asyncio.wait_for, which on Python 3.11 can swallow a cancellation that lands as the
# write completes, and a stopping service would wait forever for that task. The store
# times its operations itself (a child task and asyncio.wait, which cannot).
OP_TIMEOUT_S: Final = 10.0
CONNECT_TIMEOUT_S: Final = 5.0
# The key families of a partition's kept checkpoints, by slot (newest first). Not a
# suffix after the partition: a partition is named after any site ("a:previous" too).
_CHECKPOINT_KEYS: Final = ("checkpoint", "checkpoint-previous")


# KEYS: lease, checkpoint, previous checkpoint, trimmed, streams...
# ARGV: member, blob, then per stream: site, position, the first id kept (or '').
# Only the lease holder's checkpoint lands; the checkpoint it replaces becomes the
# previous one (an empty slot, set aside as damaged, keeps the previous one as it is),
# and the streams are trimmed behind the previous one's positions in the same step (so
# the log never loses what a kept checkpoint does not cover). The trimmed hash
# remembers how far each stream was trimmed (XTRIM leaves no trace a reader could
# check: a replay from before that point would silently miss entries).
_SAVE: Final = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {0, redis.call('GET', KEYS[1]) or ''}
end
local function later(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am > bm or (am == bm and as > bs)
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('RENAME', KEYS[2], KEYS[3])
end
redis.call('SET', KEYS[2], ARGV[2])
local trimmed = 0
for i = 5, #KEYS do
  local base = 2 + 3 * (i - 5)
  local site, position, minid = ARGV[base + 1], ARGV[base + 2], ARGV[base + 3]
  if minid ~= '' then
    trimmed = trimmed + redis.call('XTRIM', KEYS[i], 'MINID', minid)
    local was = redis.call('HGET', KEYS[4], site)
    if not was or later(position, was) then
      redis.call('HSET', KEYS[4], site, position)
    end
  end
end
return {1, trimmed}
"""

# KEYS: lease, checkpoint, where it goes.  ARGV: member.  Only the lease holder moves it.
_SET_ASIDE: Final = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {0, redis.call('GET', KEYS[1]) or ''}
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('RENAME', KEYS[2], KEYS[3])
end
return {1, 0}
"""

# KEYS: leases...  ARGV: member, px.  The partitions whose lease is not ours (any more).
_RENEW: Final = """
local lost = {}
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
  else
    lost[#lost + 1] = i
  end
end
return lost
"""

_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: members.  ARGV: member, ttl ms.  Expiries in the server's clock: members on
# hosts whose clocks disagree still agree on who is alive.
_HEARTBEAT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
"""


@dataclass(frozen=True, slots=True)
class _FailedRound:
    """A round whose append failed, for its retry: the token of an attempt that got no
    answer (None: the answer came) and the sites already in their streams."""

    batches: Sequence[Batch]
    token: str | None
    landed: Mapping[str, str]


def redact(url: str) -> str:
    """``url`` without its password (error messages, logs and ``/readyz`` never show it).

    Both places a Redis URL can carry one are masked: the user part
    (``redis://:pw@host``) and the query (``unix:///run/redis.sock?password=pw``).
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        host = netloc.rpartition("@")[2]  # as written: IPv6 brackets and port kept
        netloc = (f"{parts.username}:***@" if parts.username else ":***@") + host
    query = parts.query
    if query:
        query = "&".join(
            f"{name}=***" if name.lower() == "password" else f"{name}{sep}{value}"
            for name, sep, value in (item.partition("=") for item in query.split("&"))
        )
    # Built by hand: urlunsplit would drop the empty host of unix:///path.sock.
    text = f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else netloc + parts.path
    return text + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")


def _id(position: str) -> tuple[int, int]:
    ms, _, seq = position.partition("-")
    return int(ms), int(seq or 0)


def _after(position: str) -> str:
    """The smallest entry id after ``position`` (XTRIM MINID keeps it and later ones)."""
    ms, seq = _id(position)
    return f"{ms}-{seq + 1}"


def _order(logged: Logged) -> tuple[int, float, int]:
    """How entries of several streams interleave: by the millisecond Redis added them,
    then by the clock they were admitted at (entry sequence numbers are per stream, so
    they do not order two streams' entries of one millisecond), then by sequence.

    Merging only ever compares the next entry of each stream: every stream's own order
    is kept whatever this key says.
    """
    ms, seq = _id(logged.position)
    return ms, logged.at, seq


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _consume(task: asyncio.Future[Any]) -> None:
    """Retrieve the outcome of an operation given up on (no 'never retrieved' warning)."""
    if not task.cancelled():
        task.exception()


def new_member() -> str:
    """A member id unique to this process start: host, pid and a random tag."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class RedisStore:
    """A :class:`~callfloor.store.base.SharedStore` on Redis (see the module docstring).

    Counters (plain ints, exported by the service): ``appends``, ``appended_events``,
    ``appended_bytes``, ``append_retries_found`` (a retried round that had landed),
    ``saves``, ``saves_refused`` (lease lost), ``trimmed_entries``, ``read_entries``,
    ``bad_entries`` (undecodable entries skipped), ``errors_by_op`` (per operation)
    and ``reconnects`` (Redis answered again after failing).
    """

    applies_locally = False

    def __init__(
        self,
        config: StoreConfig,
        *,
        sites: Iterable[str] = (),
        member: str | None = None,
    ) -> None:
        self.config = config
        self.url = config.url
        self.prefix = config.key_prefix
        self.partition_map = PartitionMap(config)
        self._configured = sorted(set(sites))
        self._member = member if member is not None else new_member()
        self._redis: Redis | None = None
        self._known: set[str] = set()
        self._known_at = float("-inf")
        # The round whose append failed (the writer retries it with the same list)
        # and its token: a retry first looks whether the failed attempt landed.
        self._failed: _FailedRound | None = None
        self.up = False
        self.last_error: str | None = None
        self.appends = 0
        self.appended_events = 0
        self.appended_bytes = 0
        self.append_retries_found = 0
        self.saves = 0
        self.saves_refused = 0
        self.trimmed_entries = 0
        self.read_entries = 0
        self.bad_entries = 0
        self.reconnects = 0
        self.errors_by_op: dict[str, int] = {}

    # ------------------------------------------------------------------ keys

    def stream_key(self, site: str) -> str:
        """The stream of ``site``'s events."""
        return f"{self.prefix}:events:{site}"

    @property
    def sites_key(self) -> str:
        """The set of known sites."""
        return f"{self.prefix}:sites"

    def checkpoint_key(self, partition: str, slot: int = 0) -> str:
        """The partition's newest checkpoint (``slot`` 1: the one before it)."""
        return f"{self.prefix}:{_CHECKPOINT_KEYS[slot]}:{partition}"

    def damaged_key(self, partition: str, slot: int) -> str:
        """Where a damaged checkpoint of ``slot`` is set aside."""
        return f"{self.prefix}:{_CHECKPOINT_KEYS[slot]}-damaged:{partition}"

    def lease_key(self, partition: str) -> str:
        """The partition's lease (its owner's member id)."""
        return f"{self.prefix}:lease:{partition}"

    @property
    def members_key(self) -> str:
        """The live members and their expiries."""
        return f"{self.prefix}:members"

    @property
    def trimmed_key(self) -> str:
        """How far each site's stream was trimmed (the last position removed)."""
        return f"{self.prefix}:trimmed"

    def _round_key(self, token: str) -> str:
        return f"{self.prefix}:round:{token}"

    @property
    def member(self) -> str:
        """This process's member id (``serve`` gives host:port, the same after a restart)."""
        return self._member

    # ------------------------------------------------------------------ plumbing

    @property
    def redis(self) -> Redis:
        """The client (after :meth:`open`)."""
        if self._redis is None:
            raise StoreError("the redis store is not open")
        return self._redis

    async def _call(self, op: str, work: Awaitable[_T], timeout: float = OP_TIMEOUT_S) -> _T:
        """Run one Redis operation within ``timeout``: failures are counted and become
        :class:`StoreError`; cancelling the caller cancels the operation."""
        task = asyncio.ensure_future(work)
        try:
            done, _ = await asyncio.wait((task,), timeout=timeout)
        except asyncio.CancelledError:
            task.cancel()
            task.add_done_callback(_consume)
            raise
        try:
            if not done:
                task.cancel()  # redis-py closes the connection of a cancelled command
                task.add_done_callback(_consume)
                raise rex.TimeoutError(f"no answer within {timeout:g} s")
            result = task.result()
        except rex.RedisError as exc:
            self.errors_by_op[op] = self.errors_by_op.get(op, 0) + 1
            if isinstance(exc, rex.ConnectionError | rex.TimeoutError):
                self.up = False
            self.last_error = f"{op}: {exc}"
            raise StoreError(f"{redact(self.url)}: {op} failed: {exc}") from exc
        except OSError as exc:  # a socket error redis-py did not wrap
            self.errors_by_op[op] = self.errors_by_op.get(op, 0) + 1
            self.up = False
            self.last_error = f"{op}: {exc}"
            raise StoreError(f"{redact(self.url)}: {op} failed: {exc}") from exc
        if not self.up:
            if self.last_error is not None:
                self.reconnects += 1
                log.info("store_reconnected url=%s", redact(self.url))
            self.up = True
            self.last_error = None
        return result

    # ------------------------------------------------------------------ open and close

    async def open(self) -> None:
        """Connect, check the server, register the configured sites."""
        try:
            client = Redis.from_url(
                self.url,
                socket_connect_timeout=CONNECT_TIMEOUT_S,
                retry=Retry(NoBackoff(), 0),
            )
        except ValueError as exc:
            raise StoreError(f"{redact(self.url)}: not a usable redis URL: {exc}") from None
        self._redis = client
        try:
            info = await self._call("open", client.info("server"))
        except StoreError as exc:
            await client.aclose()
            self._redis = None
            raise StoreError(
                f"cannot reach Redis at {redact(self.url)}: {exc.__cause__} (is redis-server "
                "running, and do the URL's host, port and password match it?)"
            ) from None
        version = str(info.get("redis_version", "0"))
        major, minor = (int(x) for x in [*version.split("."), "0"][:2])
        if (major, minor) < (6, 2):
            await client.aclose()
            self._redis = None
            raise StoreError(
                f"Redis {version} at {redact(self.url)} is too old: callfloor needs 6.2 or later "
                "(XTRIM MINID, exclusive XRANGE)"
            )
        await self._warn_if_not_durable(client)
        self._save = client.register_script(_SAVE)
        self._set_aside = client.register_script(_SET_ASIDE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._heartbeat = client.register_script(_HEARTBEAT)
        if self._configured:
            await self._call("open", client.sadd(self.sites_key, *self._configured))
        await self._refresh_sites()
        self.up = True

    async def _warn_if_not_durable(self, client: Redis) -> None:
        """Log once when Redis may lose acknowledged rounds (appendfsync not always)."""
        try:
            found = await self._call("open", client.config_get("appendonly"))
            found.update(await self._call("open", client.config_get("appendfsync")))
        except StoreError:
            self.errors_by_op.pop("open", None)
            self.last_error = None
            return  # CONFIG may be renamed or denied: nothing to say
        values = {_text(k): _text(v) for k, v in found.items()}
        if values.get("appendonly") != "yes" or values.get("appendfsync") != "always":
            log.warning(
                "store_not_durable url=%s appendonly=%s appendfsync=%s "
                "(acknowledged events may be lost if Redis crashes: see deploy/redis.conf)",
                redact(self.url),
                values.get("appendonly"),
                values.get("appendfsync"),
            )

    async def close(self) -> None:
        """Close the connection pool."""
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    # ------------------------------------------------------------------ sites

    async def _refresh_sites(self) -> set[str]:
        members = cast("Awaitable[set[bytes]]", self.redis.smembers(self.sites_key))
        found = await self._call("sites", members)
        self._known = {_text(site) for site in found}
        self._known_at = monotonic()
        return self._known

    def _sites_of(self, partition: str, known: Iterable[str]) -> list[str]:
        sites = self.partition_map.sites(partition)
        if sites is None:
            return sorted(known)
        return sorted(sites)

    async def partitions(self) -> set[str]:
        """Every partition with a site known to the store (``all``: always itself)."""
        known = await self._refresh_sites()
        if self.partition_map.mode is None:
            return {ALL}
        return {self.partition_map.of(site) for site in known}

    # ------------------------------------------------------------------ append

    async def append(
        self,
        batches: Sequence[Batch],
        at: float,
        *,
        clock_of: Callable[[str], float] | None = None,
    ) -> Mapping[str, str]:
        """XADD the round's events to their sites' streams, in one MULTI.

        Returns the new entry id of each site's stream ({} when a retried round is found
        to have landed already, or the round holds nothing).
        """
        by_site: dict[str, list[Event]] = {}
        rejected: dict[str, int] = {}
        rejected_ids: list[str] = []
        for batch in batches:
            for event in batch.events:
                by_site.setdefault(event.site, []).append(event)
            for reason, n in batch.rejected.items():
                rejected[reason] = rejected.get(reason, 0) + n
            rejected_ids += [key for key, _ in batch.rejected_ids]
        if not by_site:
            if not rejected:
                return {}
            # Invalid items have no site: a round of nothing else is kept in the stream
            # of the first configured site ("default", the site of events naming none).
            by_site[self._configured[0] if self._configured else "default"] = []
        # The invalid items' counts ride with the round's first site (its owner counts
        # them once; the floor's counters are the sum over the partitions).
        carrier = min(by_site)
        client = self.redis
        landed: dict[str, str] = {}  # sites of this round already in their streams
        failed = self._failed
        if failed is not None and failed.batches is batches:
            landed = dict(failed.landed)
            # The last attempt got no answer (a token): did its MULTI land?
            if failed.token is not None and await self._call(
                "append", client.exists(self._round_key(failed.token))
            ):
                self._failed = None
                self.append_retries_found += 1
                log.info("store_append_found_landed token=%s", failed.token)
                return {}
        token = secrets.token_hex(8)
        pipe = client.pipeline(transaction=True)
        sites = [site for site in by_site if site not in landed]
        size = 0
        for site in sites:
            clock = at if clock_of is None else clock_of(site)
            record = (
                Record(clock, by_site[site], rejected, rejected_ids)
                if site == carrier
                else Record(clock, by_site[site])
            )
            payload = RECORD_ENCODER.encode(record)
            size += len(payload)
            pipe.xadd(self.stream_key(site), {"r": payload})
        new = [site for site in by_site if site not in self._known]
        if new:
            pipe.sadd(self.sites_key, *new)
        pipe.set(self._round_key(token), b"1", px=ROUND_TOKEN_TTL_MS)
        try:
            results = await self._call("append", pipe.execute(raise_on_error=False))
        except StoreError:
            # No answer: the MULTI may have landed whole or not at all (the token says).
            self._failed = _FailedRound(batches, token, landed)
            raise
        # EXEC answered, but a command inside may have failed (a stream key holding
        # another type, written by someone else): Redis ran the others. Remember what
        # landed so the retry appends only the rest, never a site twice.
        problems: list[str] = []
        for i, site in enumerate(sites):
            if isinstance(results[i], BaseException):
                problems.append(f"{self.stream_key(site)}: {results[i]}")
            else:
                landed[site] = _text(results[i])
        problems.extend(str(r) for r in results[len(sites) :] if isinstance(r, BaseException))
        if problems:
            self._failed = _FailedRound(batches, None, landed)
            self.errors_by_op["append"] = self.errors_by_op.get("append", 0) + 1
            self.last_error = f"append: {'; '.join(problems)}"
            raise StoreError(f"{redact(self.url)}: append failed: {'; '.join(problems)}")
        self._failed = None
        self._known.update(new)
        self.appends += 1
        self.appended_events += sum(len(by_site[site]) for site in sites)
        self.appended_bytes += size
        return {site: landed[site] for site in by_site}

    # ------------------------------------------------------------------ checkpoints

    async def load(self, partition: str, slot: int = 0) -> bytes | None:
        """One of the partition's kept checkpoints (0: the newest, 1: the one before)."""
        found: bytes | None = await self._call(
            "load", self.redis.get(self.checkpoint_key(partition, slot))
        )
        return found

    async def save(
        self,
        partition: str,
        blob: bytes,
        positions: Mapping[str, str],
        *,
        previous: Mapping[str, str],
    ) -> None:
        """Keep the checkpoint (the one it replaces as the previous one) and trim its
        streams behind ``previous``, only while the lease is ours.

        Raises :class:`LeaseLost` (nothing written) when another member (or none) holds
        the partition's lease.
        """
        sites = sorted(site for site, position in previous.items() if position)
        keys = [
            self.lease_key(partition),
            self.checkpoint_key(partition),
            self.checkpoint_key(partition, 1),
            self.trimmed_key,
        ]
        keys += [self.stream_key(site) for site in sites]
        args: list[bytes | str] = [self._member, blob]
        for site in sites:
            position = previous[site]
            args += [site, position, _after(position)]
        done, detail = await self._call("save", self._save(keys=keys, args=args))
        if not done:
            self.saves_refused += 1
            raise self._lease_lost(partition, "checkpoint", detail)
        self.saves += 1
        self.trimmed_entries += int(detail)

    async def set_aside(self, partition: str, slot: int) -> None:
        """Rename the checkpoint of ``slot`` to its ``-damaged`` key, while the lease is ours."""
        keys = [
            self.lease_key(partition),
            self.checkpoint_key(partition, slot),
            self.damaged_key(partition, slot),
        ]
        done, detail = await self._call(
            "set_aside", self._set_aside(keys=keys, args=[self._member])
        )
        if not done:
            raise self._lease_lost(partition, "setting a damaged checkpoint aside", detail)

    def _lease_lost(self, partition: str, what: str, holder: bytes | str) -> LeaseLost:
        return LeaseLost(
            f"{what} of partition {partition!r} refused: its lease is held by "
            f"{_text(holder) or 'nobody'}, not this process ({self._member})"
        )

    # ------------------------------------------------------------------ reading the log

    def _decode(self, stream: str, entry_id: str, fields: Mapping[bytes, bytes]) -> Record:
        """An entry's round; an undecodable one is counted, logged and read as empty.

        Its position still counts, so the entries after it are followed as usual.
        """
        try:
            return RECORD_DECODER.decode(fields[b"r"])
        except (KeyError, msgspec.DecodeError) as exc:
            self.bad_entries += 1
            log.error(
                "store_bad_entry stream=%s id=%s problem=%r (skipped: not written by callfloor)",
                self.stream_key(stream),
                entry_id,
                exc,
            )
            return Record(float("-inf"), [])

    async def _check_streams(self, positions: Mapping[str, str], sites: list[str]) -> None:
        """Refuse to replay a stream that does not go on from the partition's position.

        - Trimmed beyond it (the trimmed hash): a checkpoint the partition does not have
          covered the trimmed entries (the partitions were changed in the
          configuration, a checkpoint key was deleted, or every kept checkpoint is
          damaged).
        - Gone while the position names it (XTRIM keeps an emptied stream: it was
          deleted, evicted, or Redis was restored from before it existed).
        - Ending before it (Redis restored from an older backup than the checkpoint).
        - With an entry after it deleted (Redis 7's max-deleted-entry-id; XDEL).

        Replaying would silently miss entries. (An XTRIM by hand past the position
        leaves no trace Redis reports: not detected.)
        """
        if not sites:
            return
        found = await self._call(
            "replay", cast("Awaitable[list[Any]]", self.redis.hmget(self.trimmed_key, sites))
        )
        for site, trimmed in zip(sites, found, strict=True):
            if trimmed is None:
                continue
            start = positions.get(site, "")
            if not start or _id(_text(trimmed)) > _id(start):
                raise StoreError(
                    f"stream {self.stream_key(site)} was trimmed up to {_text(trimmed)} "
                    f"behind a checkpoint this partition does not have (it starts from "
                    f"{start or 'nothing'}): were [store] partitions or key_prefix changed, "
                    "a checkpoint key deleted, or is every kept checkpoint damaged? Restore "
                    "that checkpoint (or Redis from a backup), or delete the site's stream "
                    "and its field in the trimmed hash to start it from nothing"
                )
        covered = [site for site in sites if positions.get(site)]
        if not covered:
            return
        pipe = self.redis.pipeline(transaction=False)
        for site in covered:
            pipe.xinfo_stream(self.stream_key(site))
        infos = await self._call("replay", pipe.execute(raise_on_error=False))
        backup = (
            "restore Redis (its append-only file) from a backup taken with the checkpoint, "
            "or delete the partition's checkpoint keys and the site's stream to start it empty"
        )
        for site, info in zip(covered, infos, strict=True):
            start, key = positions[site], self.stream_key(site)
            if isinstance(info, rex.ResponseError) and "no such key" in str(info).lower():
                raise StoreError(
                    f"stream {key} does not exist, but the partition's checkpoint covers "
                    f"it up to {start} (deleted or evicted since?): the entries after it "
                    f"are gone; {backup}"
                )
            if isinstance(info, BaseException):
                raise StoreError(f"{redact(self.url)}: replay failed: {key}: {info}")
            last = info.get("last-generated-id")
            if last is not None and _id(_text(last)) < _id(start):
                raise StoreError(
                    f"stream {key} ends at {_text(last)}, before the checkpoint's position "
                    f"{start}: the stream is older than the checkpoint; {backup}"
                )
            deleted = info.get("max-deleted-entry-id")
            if deleted is not None and _id(_text(deleted)) > _id(start):
                raise StoreError(
                    f"stream {key} had entry {_text(deleted)} deleted, after the "
                    f"checkpoint's position {start}: acknowledged rounds are missing; {backup}"
                )

    def _logged(
        self, partition: str, site: str, since: str, entries: Iterable[tuple[Any, Any]]
    ) -> list[Logged]:
        """Stream entries as Logged items, each saying where its read started."""
        out = []
        for entry_id_raw, fields in entries:
            entry_id = _text(entry_id_raw)
            record = self._decode(site, entry_id, fields)
            out.append(
                Logged(
                    partition,
                    site,
                    entry_id,
                    list(record.events),
                    record.at,
                    since,
                    dict(record.rejected),
                    list(record.rejected_ids),
                )
            )
            since = entry_id
        return out

    async def replay(self, partition: str, positions: Mapping[str, str]) -> AsyncIterator[Logged]:
        """The partition's entries after ``positions``, streams merged (see :func:`_order`)."""
        known = await self._refresh_sites()
        sites = self._sites_of(partition, known)
        await self._check_streams(positions, sites)
        since = {site: positions.get(site, "") for site in sites}
        pages: dict[str, list[Logged]] = {}
        heap: list[tuple[tuple[int, float, int], str]] = []

        async def fill(site: str) -> None:
            start = since[site]
            low = f"({start}" if start else "-"
            page = await self._call(
                "replay", self.redis.xrange(self.stream_key(site), min=low, count=PAGE)
            )
            items = self._logged(partition, site, start, page)
            if items:
                since[site] = items[-1].position
                pages[site] = items[::-1]  # popped from the end: oldest first
                heapq.heappush(heap, (_order(items[0]), site))

        for site in sites:
            await fill(site)
        while heap:
            _, site = heapq.heappop(heap)
            page = pages[site]
            yield page.pop()
            if page:
                heapq.heappush(heap, (_order(page[-1]), site))
            else:
                await fill(site)

    async def read(self, cursors: Mapping[str, Mapping[str, str]], block_s: float) -> list[Logged]:
        """New entries of the partitions' streams after their positions (one XREAD).

        A stream a partition's positions do not name is read from its start. Waits up
        to ``block_s`` when there is nothing new; streams merged (see :func:`_order`).
        """
        if monotonic() - self._known_at >= SITES_REFRESH_S:
            await self._refresh_sites()
        wanted: dict[str, tuple[str, str, str]] = {}  # key -> (partition, site, since)
        for partition, positions in cursors.items():
            for site in self._sites_of(partition, self._known):
                wanted[self.stream_key(site)] = (partition, site, positions.get(site, ""))
        if not wanted:
            # Nothing to follow yet: wait for the next look at the known sites at most.
            fresh_in = SITES_REFRESH_S - (monotonic() - self._known_at)
            await asyncio.sleep(max(0.0, min(block_s, fresh_in)))
            return []
        streams: dict[Any, Any] = {key: (since or "0-0") for key, (_, _, since) in wanted.items()}
        block = max(1, int(block_s * 1000)) if block_s > 0 else None
        found = await self._call(
            "read", self.redis.xread(streams, count=PAGE, block=block), OP_TIMEOUT_S + block_s
        )
        per_stream = [
            self._logged(*wanted[_text(key_raw)], entries) for key_raw, entries in found or ()
        ]
        out = list(heapq.merge(*per_stream, key=_order))
        self.read_entries += len(out)
        return out

    # ------------------------------------------------------------------ members and leases

    async def heartbeat(self, ttl_s: float) -> list[str]:
        """Say this member is alive for ``ttl_s``; the live members, sorted."""
        found = await self._call(
            "heartbeat",
            self._heartbeat(keys=[self.members_key], args=[self._member, int(ttl_s * 1000)]),
        )
        return sorted(_text(member) for member in found)

    async def leave(self) -> None:
        """Say this member is gone (at shutdown: the others rebalance at once)."""
        await self._call("leave", self.redis.zrem(self.members_key, self._member))

    async def acquire(self, partition: str, ttl_s: float) -> bool:
        """Take the partition's lease if nobody holds it (True: ours now, or already)."""
        key = self.lease_key(partition)
        px = int(ttl_s * 1000)
        if await self._call("acquire", self.redis.set(key, self._member, nx=True, px=px)):
            return True
        holder = await self._call("acquire", self.redis.get(key))
        if holder is not None and _text(holder) == self._member:
            await self.renew([partition], ttl_s)
            return True
        return False

    async def holder(self, partition: str) -> str | None:
        """The member holding the partition's lease now (None: nobody)."""
        found = await self._call("holder", self.redis.get(self.lease_key(partition)))
        return None if found is None else _text(found)

    async def renew(self, partitions: Sequence[str], ttl_s: float) -> set[str]:
        """Extend our leases; the partitions whose lease is not ours any more."""
        if not partitions:
            return set()
        keys = [self.lease_key(partition) for partition in partitions]
        lost = await self._call(
            "renew", self._renew(keys=keys, args=[self._member, int(ttl_s * 1000)])
        )
        return {partitions[int(i) - 1] for i in lost}

    async def release(self, partition: str) -> None:
        """Give the lease up if it is ours."""
        await self._call(
            "release", self._release(keys=[self.lease_key(partition)], args=[self._member])
        )

    def health(self) -> StoreHealth:
        """Up or down (the last call failed on the connection), the last error and the
        counters the service exports."""
        return StoreHealth(
            up=self.up,
            last_error=self.last_error,
            errors_by_op=dict(self.errors_by_op),
            reconnects=self.reconnects,
            bad_entries=self.bad_entries,
            append_retries_found=self.append_retries_found,
        )
