"""The live floor in Redis: hashes per queue, site and agent, and a channel of changes.

:class:`RedisFloor` is a task of the live service (with a ``redis://`` store). It
subscribes to the change bus (kind ``"redis"``) and, per change set, re-reads the
queues, sites and agents it names through the service's typed view and writes them in
one ``MULTI`` pipeline (several for a write beyond ``WRITE_ARGS`` arguments):

- ``{prefix}:floor:queue:{name}``, ``{prefix}:floor:site:{name}``,
  ``{prefix}:floor:agent:{name}``: hashes of flat fields
  (:mod:`~callfloor.sinks.floor_fields`): an agent's replaced whole, a queue's or a
  site's by the fields that changed since this process wrote it;
- ``{prefix}:floor:queues``, ``{prefix}:floor:sites``, ``{prefix}:floor:agents``: the
  names (sets);
- ``{prefix}:floor:as_of``: the instant of the last write;
- a ``PUBLISH`` on ``{prefix}:floor:changes`` naming what changed
  (:class:`~callfloor.sinks.floor_fields.ChangeMessage`).

Queue and site hashes are also rewritten every ``refresh_s`` (their live values, such
as the longest wait and the sliding windows, move with the clock alone); an agent's
hash when the agent changed. A name the floor no longer has is deleted.

**Never in the writer's way.** One coroutine drains the subscription at once into a
pending union of names, so the bus never finds this subscriber full because Redis is
slow; another writes what is pending, one write at a time, so several change sets
arriving during a write are coalesced into the next. Reads happen in slices with a
turn for the writer between them. Every Redis call has a timeout.

**Resync.** At start, after the bus dropped this subscriber, after a Redis error
(reconnecting with capped, jittered backoff) and when the partitions this process owns
change, the whole floor is written again (every name) and keys left by names the floor
no longer has are swept, each counted.

**Whose keys.** Several processes may share one Redis, each owning some sites' partitions
(``[store] partitions``). The owner of a site's partition owns that site's keys: a
process writes only names whose site it owns, and deletes a name it no longer has only
while it still owns its site (the name expired or was forgotten) and only if it wrote
the hash itself. A name whose site moved to another process (a hand-over) is left as it
is: readers see the old owner's last values (its ``as_of`` and ``owner``) until the new
owner writes the name, and the new owner's resync sweeps what its floor lacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import socket
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from time import perf_counter
from typing import TYPE_CHECKING, Final, Protocol

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from callfloor.processors.views import NamePolicy
from callfloor.sinks.floor_fields import (
    Fields,
    agent_fields,
    encode_message,
    queue_fields,
    site_fields,
)
from callfloor.store.base import ALL, PartitionMap
from callfloor.store.redis import redact

if TYPE_CHECKING:
    from callfloor.bus import ChangeBus, Subscription
    from callfloor.config import Config
    from callfloor.processors.read import FloorReader
    from callfloor.processors.views import ChangeSet, ViolationChange

log = logging.getLogger("callfloor")

KINDS: Final[tuple[str, ...]] = ("queue", "site", "agent")
SLICE_S: Final = 0.005  # the longest the floor reads before the writer gets a turn
# Arguments in one MULTI at most: redis-py packs a pipeline (and parses its answers)
# without a turn for anyone else, about 1 µs an argument; a larger update (a resync)
# goes in several MULTIs.
WRITE_ARGS: Final = 5000
MAX_VIOLATIONS: Final = 10_000  # violation changes one message lists at most
# Errors that mean Redis is unreachable, slow or refusing: reconnect and resync.
REDIS_ERRORS: Final = (RedisError, OSError, TimeoutError)

# Delete a floor hash and its name in the index, only if the hash was written by the
# given owner ('' any) for the given site ('' any): never a hash another process wrote
# after this one decided. A hash already gone only leaves its index entry to remove.
DELETE_SCRIPT: Final = """
local owner = redis.call('HGET', KEYS[1], 'owner')
local site = redis.call('HGET', KEYS[1], 'site')
if (ARGV[2] == '' or not owner or owner == ARGV[2])
    and (ARGV[3] == '' or not site or site == ARGV[3]) then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[1])
  return 1
end
return 0
"""


class LiveFloor(Protocol):
    """What the Redis floor needs of the live service (``FloorService``)."""

    @property
    def config(self) -> Config:
        """The configuration (``[store]`` url and key prefix, partitions)."""
        ...

    @property
    def bus(self) -> ChangeBus:
        """The change bus to subscribe to."""
        ...

    @property
    def view(self) -> FloorReader:
        """Typed reads at the processor clock."""
        ...


class FloorKeys:
    """The key layout under one prefix (see the module docstring)."""

    def __init__(self, prefix: str) -> None:
        self.base = f"{prefix}:floor"
        self.as_of = f"{self.base}:as_of"
        self.channel = f"{self.base}:changes"

    def hash(self, kind: str, name: str) -> str:
        """The hash of one queue, site or agent."""
        return f"{self.base}:{kind}:{name}"

    def index(self, kind: str) -> str:
        """The set of names of one kind."""
        return f"{self.base}:{kind}s"


def default_owner(service: object) -> str:
    """This process's name on its hashes: the store's member id if it has one."""
    member = getattr(getattr(service, "store", None), "member", None)
    if isinstance(member, str) and member:
        return member
    return f"{socket.gethostname()}:{os.getpid()}"


def default_owned(service: object) -> Callable[[], Collection[str]]:
    """The partitions this process owns now, from the service's writer.

    The writer of a shared store says ``owned``; one that has not got it yet holds its
    partitions in ``parts``; a service without either owns the whole floor.
    """

    def owned() -> Collection[str]:
        writer = getattr(service, "writer", None)
        found = getattr(writer, "owned", None)
        if found is None:
            found = getattr(writer, "parts", None)
        if found is None:
            return (ALL,)
        return frozenset(found)

    return owned


@dataclass(slots=True)
class _Pending:
    """Change sets not written yet, coalesced: the union of their names."""

    resync: bool = True
    reason: str = "start"
    sets: int = 0
    queues: set[str] = field(default_factory=set)
    sites: set[str] = field(default_factory=set)
    agents: set[str] = field(default_factory=set)
    violations: list[ViolationChange] = field(default_factory=list)

    def add(self, changes: ChangeSet) -> int:
        """Merge one change set; how many violation changes did not fit the message."""
        self.sets += 1
        if self.resync:
            return 0  # a resync re-reads everything: names would add nothing
        self.queues.update(changes.queues)
        self.sites.update(changes.sites)
        self.agents.update(changes.agents)
        room = MAX_VIOLATIONS - len(self.violations)
        taken = changes.violations[: max(room, 0)]
        self.violations.extend(taken)
        for v in changes.violations:
            self.agents.add(v.agent)
        return len(changes.violations) - len(taken)

    def need_resync(self, reason: str) -> None:
        """Everything is to be written again (what was pending is part of it)."""
        if not self.resync:
            self.resync = True
            self.reason = reason
        self.queues.clear()
        self.sites.clear()
        self.agents.clear()
        self.violations.clear()


@dataclass(slots=True)
class _Plan:
    """One write: hashes to replace, names to delete, the message."""

    as_of: float
    resync: bool
    hashes: list[tuple[str, str, Fields]] = field(default_factory=list)  # kind, name, fields
    # kind, name, owner the hash must have ('' any), site it must have ('' any)
    deletes: list[tuple[str, str, str, str]] = field(default_factory=list)
    named: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in KINDS})
    violations: list[ViolationChange] = field(default_factory=list)


class RedisFloor:
    """Keeps the live floor in Redis (see the module docstring).

    Counters (plain numbers, for ``/metrics``): ``writes`` (pipelines committed),
    ``hashes_written``, ``deleted``, ``messages``, ``change_sets`` (received),
    ``errors`` (failed Redis calls and failed writes), ``reconnects``, ``resyncs``,
    ``drops`` (the bus dropped this subscriber), ``violations_omitted`` (beyond a
    message's limit), ``flushes`` with ``flush_seconds_total`` and ``flush_seconds_max``
    (reads and writes of one update); ``up`` says whether the last Redis call succeeded.
    """

    def __init__(
        self,
        service: LiveFloor,
        *,
        url: str | None = None,
        owner: str | None = None,
        owned: Callable[[], Collection[str]] | None = None,
        refresh_s: float = 1.0,
        timeout_s: float = 5.0,
        backoff_s: tuple[float, float] = (0.1, 10.0),
        queue_size: int = 64,
    ) -> None:
        self.service = service
        store = service.config.store
        self.url = url if url is not None else store.url
        self.keys = FloorKeys(store.key_prefix)
        self.partitions = PartitionMap(store)
        self.owner = owner if owner is not None else default_owner(service)
        self._owned = owned if owned is not None else default_owned(service)
        # Queue and site values move with the clock alone: rewritten at least this often.
        self.refresh_s = refresh_s
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.queue_size = queue_size
        self.subscription: Subscription | None = None
        self.up = False
        self.last_error: str | None = None
        self.writes = 0
        self.hashes_written = 0
        self.deleted = 0
        self.messages = 0
        self.change_sets = 0
        self.errors = 0
        self.reconnects = 0
        self.resyncs = 0
        self.drops = 0
        self.violations_omitted = 0
        self.flushes = 0
        self.flush_seconds_total = 0.0
        self.flush_seconds_max = 0.0
        self._pending = _Pending()
        self._wake = asyncio.Event()
        self._closing = False
        self._client: aioredis.Redis | None = None
        # What this process wrote and has not deleted: kind -> name -> its fields, so an
        # update sends only the fields that changed.
        self._written: dict[str, dict[str, Fields]] = {k: {} for k in KINDS}
        self._owned_last: frozenset[str] | None = None
        self._refreshed_at = -math.inf
        self._logged_bug: str | None = None

    # ------------------------------------------------------------------ the task

    async def run(self) -> None:
        """Keep Redis up to date until the service closes the bus (or this is cancelled)."""
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._collect(), name="redis-floor:collect")
                tg.create_task(self._write_loop(), name="redis-floor:write")
        finally:
            await self._close_client()

    async def _collect(self) -> None:
        """Drain the subscription into the pending union as change sets arrive."""
        bus = self.service.bus
        while True:
            sub = bus.subscribe("redis", self.queue_size)
            self.subscription = sub
            async for changes in sub:
                self.change_sets += 1
                self.violations_omitted += self._pending.add(changes)
                self._wake.set()
            if not sub.dropped:
                break  # the bus closed: the service stops
            # Change sets were lost: the floor is read again. Subscribing again before
            # the resync reads it means nothing after that read is missed.
            self.drops += 1
            self._pending.need_resync("dropped")
            self._wake.set()
        self._closing = True
        self._wake.set()

    async def _write_loop(self) -> None:
        attempt = 0
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._client is None:
                if self._closing:
                    return
                try:
                    await self._connect()
                except REDIS_ERRORS as exc:
                    attempt += 1
                    self._failed(exc, "connect")
                    if await self._backoff(attempt):
                        return
                    self._wake.set()
                    continue
                if attempt:
                    self.reconnects += 1
                    log.info("redis_floor_up url=%s after_attempts=%d", redact(self.url), attempt)
                attempt = 0
            try:
                await self._flush()
            except REDIS_ERRORS as exc:
                attempt += 1
                self._failed(exc, "write")
                self._pending.need_resync("redis_error")
                await self._close_client()
                if await self._backoff(attempt):
                    return
                self._wake.set()
                continue
            except Exception as exc:  # a bug: logged once per kind, never the service's end
                attempt += 1
                self.errors += 1
                self._pending.need_resync("internal_error")
                if repr(exc) != self._logged_bug:
                    self._logged_bug = repr(exc)
                    log.exception("redis_floor_internal_error")
                if await self._backoff(attempt):
                    return
                self._wake.set()
                continue
            attempt = 0
            if self._closing:
                return

    async def _backoff(self, attempt: int) -> bool:
        """Wait before the next attempt (capped, jittered); True if the service stops."""
        base, cap = self.backoff_s
        delay = min(cap, base * 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.0)
        deadline = asyncio.get_running_loop().time() + delay
        while not self._closing:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return False
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._wake.wait()
        return True

    def _failed(self, exc: BaseException, op: str) -> None:
        self.errors += 1
        was_up = self.up
        self.up = False
        self.last_error = f"{op}: {exc!r}"
        if was_up or self.errors == 1:
            log.warning("redis_floor_down url=%s op=%s error=%r", redact(self.url), op, exc)

    async def _connect(self) -> None:
        # No retries inside redis-py: this loop retries, with its own backoff and counts.
        client = aioredis.Redis.from_url(
            self.url,
            socket_timeout=self.timeout_s,
            socket_connect_timeout=self.timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            async with asyncio.timeout(self.timeout_s):
                await client.ping()
        except BaseException:
            await self._close(client)
            raise
        self._client = client
        self.up = True

    async def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await self._close(client)

    async def _close(self, client: aioredis.Redis) -> None:
        # A hung server must not hold the close either.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await client.aclose()

    # ------------------------------------------------------------------ one write

    def _mine(self, owned: frozenset[str]) -> Callable[[str], bool]:
        """Whether a site is in a partition this process owns (the ``all`` partition, as
        the writer of an unpartitioned floor holds it, has every site; with partitions, a
        site named ``all`` is only itself)."""
        if ALL in owned and self.partitions.mode is None:
            return lambda site: True
        of = self.partitions.of
        return lambda site: of(site) in owned

    async def _flush(self) -> None:
        """Write what is pending (or everything, for a resync) in one pipeline."""
        loop = asyncio.get_running_loop()
        owned = frozenset(self._owned())
        if owned != self._owned_last:
            if self._owned_last is not None:
                self._pending.need_resync("ownership")
            self._owned_last = owned
        pending = self._pending
        refresh = loop.time() - self._refreshed_at >= self.refresh_s
        named = pending.queues or pending.sites or pending.agents or pending.violations
        if not (pending.resync or named or refresh):
            return
        if not owned:
            # A standby (or a process whose sites all went elsewhere): nothing is ours
            # to write; what it wrote belongs to the sites' new owners.
            for written in self._written.values():
                written.clear()
            self._pending = _Pending(resync=False)
            return
        view = self.service.view
        as_of = view.as_of
        if not math.isfinite(as_of):
            return  # no time yet: nothing to show
        started = perf_counter()
        self._pending = _Pending(resync=False)
        # A write that fails is followed by a resync (see _write_loop): what this one
        # named is part of it.
        if pending.resync:
            self.resyncs += 1
            log.info("redis_floor_resync reason=%s", pending.reason)
            plan = await self._plan(view, pending, owned, full=True)
            plan.deletes.extend(await self._sweep(view, owned))
        else:
            plan = await self._plan(view, pending, owned, full=False, refresh=refresh)
        await self._write(plan)
        self._refreshed_at = loop.time()
        elapsed = perf_counter() - started
        self.flushes += 1
        self.flush_seconds_total += elapsed
        self.flush_seconds_max = max(self.flush_seconds_max, elapsed)

    async def _plan(
        self,
        view: FloorReader,
        pending: _Pending,
        owned: frozenset[str],
        *,
        full: bool,
        refresh: bool = True,
    ) -> _Plan:
        """Read what is to be written, in slices with a turn for the writer between them."""
        mine = self._mine(owned)
        plan = _Plan(as_of=view.as_of, resync=full, violations=pending.violations)
        now = {
            "queue": set(view.queue_names()),
            "site": set(view.site_names()),
            "agent": set(view.agent_names()),
        }
        named = {"queue": pending.queues, "site": pending.sites, "agent": pending.agents}
        for kind in KINDS:
            written = self._written[kind]
            if full or (refresh and kind != "agent"):
                todo = now[kind]
            else:
                # What changed, and what appeared without a change set naming it (a
                # partition adopted, a state restored).
                todo = (named[kind] & now[kind]) | (now[kind] - written.keys())
            if not full:
                for name in written.keys() - now[kind]:
                    site = written.pop(name)["site"]
                    if mine(site):
                        # Expired or forgotten: ours to delete, if nobody wrote it since.
                        plan.deletes.append((kind, name, self.owner, site))
                        plan.named[kind].add(name)
                    # Else its site went to another process: the new owner writes it.
            else:
                written.clear()
            await self._read(view, kind, sorted(todo), plan, mine, named[kind], full)
        return plan

    async def _read(
        self,
        view: FloorReader,
        kind: str,
        names: list[str],
        plan: _Plan,
        mine: Callable[[str], bool],
        named: set[str],
        full: bool,
    ) -> None:
        written = self._written[kind]
        owner = self.owner
        as_of = view.as_of
        started = perf_counter()
        for name in names:
            if perf_counter() - started >= SLICE_S:
                # The writer's turn: a large floor is read in slices. Each slice reads at
                # the clock it finds; every hash carries its own as_of, and what changes
                # meanwhile comes in a later change set.
                await asyncio.sleep(0)
                started = perf_counter()
                as_of = view.as_of
            fields = self._fields(view, kind, name, as_of, owner)
            if fields is None or not mine(fields["site"]):
                continue
            plan.hashes.append((kind, name, fields))
            if full or name in named or name not in written:
                plan.named[kind].add(name)

    @staticmethod
    def _fields(view: FloorReader, kind: str, name: str, as_of: float, owner: str) -> Fields | None:
        if kind == "queue":
            queue = view.queue(name)
            if queue is None:
                return None
            return queue_fields(name, queue, view.queue_info(name), as_of, owner)
        if kind == "site":
            site = view.site(name)
            return None if site is None else site_fields(name, site, as_of, owner)
        detail = view.agent_detail(name, names=NamePolicy.SHOW)
        return None if detail is None else agent_fields(detail, as_of, owner)

    async def _sweep(
        self, view: FloorReader, owned: frozenset[str]
    ) -> list[tuple[str, str, str, str]]:
        """Hashes of names this floor lacks whose site it owns (left by an earlier
        process, or before a hand-over): to delete, whoever wrote them."""
        client = self._require_client()
        mine = self._mine(owned)
        have = {
            "queue": set(view.queue_names()),
            "site": set(view.site_names()),
            "agent": set(view.agent_names()),
        }
        deletes: list[tuple[str, str, str, str]] = []
        for kind in KINDS:
            async with asyncio.timeout(self.timeout_s):
                members = await client.smembers(self.keys.index(kind))  # type: ignore[misc]
            names = sorted(
                n for n in (m.decode("utf-8", "replace") for m in members) if n not in have[kind]
            )
            if not names:
                continue
            pipe = client.pipeline(transaction=False)
            for name in names:
                pipe.hget(self.keys.hash(kind, name), "site")
            async with asyncio.timeout(self.timeout_s):
                sites = await pipe.execute()
            for name, raw in zip(names, sites, strict=True):
                if raw is None:
                    deletes.append((kind, name, "", ""))  # an index entry without its hash
                    continue
                site = raw.decode("utf-8", "replace")
                if mine(site):
                    deletes.append((kind, name, "", site))
        return deletes

    def _require_client(self) -> aioredis.Redis:
        if self._client is None:
            raise ConnectionError("not connected to Redis")
        return self._client

    async def _write(self, plan: _Plan) -> None:
        """The plan in one MULTI: of each queue and site hash only the fields that
        changed since this process wrote it (agents, new names, and every name in a
        resync replaced whole), the index
        sets, the deletions, ``as_of`` and the message. An update beyond ``WRITE_ARGS``
        arguments (a resync of a large floor) goes in several, the message in the last.
        """
        client = self._require_client()
        keys = self.keys
        pipe = client.pipeline(transaction=True)
        args = 0
        done: list[tuple[str, str, Fields]] = []
        new: dict[str, list[str]] = {}
        for kind, name, fields in plan.hashes:
            key = keys.hash(kind, name)
            # Agents are replaced whole: one that moved between sites of different
            # processes is written by both, and the last writer's hash must be all its
            # own. A queue or site has one writer, its site's owner: fields that changed.
            old = self._written[kind].get(name) if kind != "agent" else None
            if old is None:
                pipe.delete(key)  # replaced whole: no field of an older layout stays
                pipe.hset(key, mapping=fields)
                new.setdefault(kind, []).append(name)
                args += 2 * len(fields) + 3
            else:
                changed = {k: v for k, v in fields.items() if old.get(k) != v}
                gone = [k for k in old if k not in fields]
                if changed:
                    pipe.hset(key, mapping=changed)
                if gone:
                    pipe.hdel(key, *gone)
                args += 2 * len(changed) + len(gone) + 2
            done.append((kind, name, fields))
            if args >= WRITE_ARGS:
                self._index(pipe, new)
                await self._execute(pipe)
                self._wrote(done)
                pipe = client.pipeline(transaction=True)
                args = 0
        self._index(pipe, new)
        first_delete = len(pipe)
        for kind, name, owner, site in plan.deletes:
            pipe.eval(DELETE_SCRIPT, 2, keys.hash(kind, name), keys.index(kind), name, owner, site)
        pipe.set(keys.as_of, repr(plan.as_of))
        message = self._message(plan)
        if message is not None:
            pipe.publish(keys.channel, message)
        results = await self._execute(pipe)
        self._wrote(done)
        self.deleted += sum(
            1 for r in results[first_delete : first_delete + len(plan.deletes)] if r == 1
        )
        if message is not None:
            self.messages += 1

    def _index(self, pipe: Pipeline, new: dict[str, list[str]]) -> None:
        for kind, names in new.items():
            pipe.sadd(self.keys.index(kind), *names)
        new.clear()

    def _wrote(self, done: list[tuple[str, str, Fields]]) -> None:
        written = self._written
        for kind, name, fields in done:
            written[kind][name] = fields
        self.hashes_written += len(done)
        done.clear()

    async def _execute(self, pipe: Pipeline) -> list[object]:
        async with asyncio.timeout(self.timeout_s):
            results: list[object] = await pipe.execute()
        self.writes += 1
        self.up = True
        return results

    def _message(self, plan: _Plan) -> bytes | None:
        named = plan.named
        if not (plan.resync or plan.violations or any(named.values())):
            return None
        return encode_message(
            as_of=plan.as_of,
            owner=self.owner,
            resync=plan.resync,
            queues=named["queue"],
            sites=named["site"],
            agents=named["agent"],
            violations=plan.violations,
        )
