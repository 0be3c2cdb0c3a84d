"""The supervisor: failing sources are restarted with capped, jittered backoff; never fatal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Self

import aiohttp
import pytest
from helpers import T0, decode, ev
from live import get, running

from callfloor.ingest.source import Batch
from callfloor.ingest.supervisor import SourceState, Supervisor


class ScriptedSource:
    """A source that fails to connect ``fail_enters`` times, then yields ``batches`` and
    either ends or (``fail_after``) raises."""

    def __init__(
        self, batches: list[Batch], *, fail_enters: int = 0, fail_after: bool = False
    ) -> None:
        self.batches = batches
        self.fail_enters = fail_enters
        self.fail_after = fail_after
        self.enters = 0
        self.exits = 0

    @property
    def name(self) -> str:
        return "scripted"

    async def __aenter__(self) -> Self:
        self.enters += 1
        if self.enters <= self.fail_enters:
            raise ConnectionRefusedError("broker down")
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.exits += 1

    def __aiter__(self) -> AsyncIterator[Batch]:
        return self._run()

    async def _run(self) -> AsyncIterator[Batch]:
        for batch in self.batches:
            yield batch
        if self.fail_after:
            raise RuntimeError("connection lost")


def _batch(i: int) -> Batch:
    return Batch([decode(ev("call_queued", T0, call_id=f"c{i}", queue="q"))], "scripted")


async def test_a_source_failing_to_connect_is_restarted_then_delivers() -> None:
    """Two failed connects are retried; then every batch reaches the sink, and it finishes."""
    got: list[Batch] = []

    async def sink(batch: Batch) -> None:
        got.append(batch)

    up: dict[str, bool] = {}
    restarts: dict[str, int] = {}
    sup = Supervisor(sink, up=up, restarts=restarts, backoff_min_s=0.01, jitter=lambda: 0.0)
    source = ScriptedSource([_batch(1), _batch(2)], fail_enters=2)
    await asyncio.wait_for(sup.run(source), 5)
    assert len(got) == 2
    assert (source.enters, restarts["scripted"], up["scripted"]) == (3, 2, False)
    status = sup.status()["scripted"]
    assert status.state is SourceState.FINISHED
    assert status.last_error == "ConnectionRefusedError: broker down"


async def test_a_failing_source_is_in_backoff_and_reported() -> None:
    """A source that keeps failing waits in backoff (healthy() is False) and never raises."""

    async def sink(batch: Batch) -> None:
        pass

    sup = Supervisor(sink, backoff_min_s=10.0, jitter=lambda: 0.0)
    task = asyncio.create_task(sup.run(ScriptedSource([], fail_enters=99)))
    await asyncio.sleep(0.05)
    status = sup.status()["scripted"]
    assert status.state is SourceState.BACKOFF and status.retry_in_s == 5.0
    assert not sup.healthy()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    """Delays double from the minimum, stop at the maximum, and vary between half and all."""
    low = Supervisor(
        lambda b: asyncio.sleep(0), backoff_min_s=1, backoff_max_s=8, jitter=lambda: 0.0
    )
    high = Supervisor(
        lambda b: asyncio.sleep(0), backoff_min_s=1, backoff_max_s=8, jitter=lambda: 1.0
    )
    assert [low.delay(n) for n in range(1, 7)] == [0.5, 1, 2, 4, 4, 4]
    assert [high.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 8, 8]


async def test_a_source_error_mid_stream_is_retried_and_exits_each_time() -> None:
    """An error while iterating leaves the context (disconnect) and enters again."""
    got: list[Batch] = []

    async def sink(batch: Batch) -> None:
        got.append(batch)

    sup = Supervisor(sink, backoff_min_s=0.01, jitter=lambda: 0.0)
    source = ScriptedSource([_batch(1)], fail_after=True)
    task = asyncio.create_task(sup.run(source))
    for _ in range(200):
        if source.enters >= 3:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert source.enters >= 3 and source.exits >= 3 and len(got) >= 3


async def test_a_failing_source_does_not_stop_the_service_and_shows_in_readyz() -> None:
    """The service keeps serving while a source fails; /readyz is 503 "degraded" naming it."""
    async with running() as (service, base), aiohttp.ClientSession() as http:
        service.supervisor.backoff_min_s = 30.0
        failing = asyncio.create_task(service.supervisor.run(ScriptedSource([], fail_enters=99)))
        await asyncio.sleep(0.05)
        status, ready = await get(http, base, "/readyz")
        assert (await get(http, base, "/healthz"))[0] == 200
        failing.cancel()
    assert status == 503 and ready["status"] == "degraded"
    assert ready["sources"]["scripted"]["state"] == "backoff"
    assert service.stats.source_restarts_total["scripted"] == 1


async def test_a_registered_source_is_pending_its_first_start_until_it_is_entered() -> None:
    """A source known before its task runs is in first_start() (healthy, not up) until
    it has been entered once; then it is not, even while it reconnects."""
    gate = asyncio.Event()

    class Gated(ScriptedSource):
        async def __aenter__(self) -> Self:
            await gate.wait()
            return await super().__aenter__()

    async def sink(batch: Batch) -> None:
        await asyncio.sleep(3600)  # holds the source up

    sup = Supervisor(sink, backoff_min_s=0.01, jitter=lambda: 0.0)
    source = Gated([_batch(1)])
    sup.register(source)
    before = (sup.first_start(), sup.healthy(), sup.status()["scripted"].state)
    task = asyncio.create_task(sup.run(source))
    await asyncio.sleep(0.02)
    connecting = (sup.first_start(), sup.healthy())
    gate.set()
    while sup.status()["scripted"].state is not SourceState.UP:
        await asyncio.sleep(0.005)
    after = (sup.first_start(), sup.healthy())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert before == (["scripted"], True, SourceState.STARTING)
    assert connecting == (["scripted"], True)
    assert after == ([], True)


class HangsOnRetry(ScriptedSource):
    """A scripted source whose second connect hangs (a retry in progress) until cancelled."""

    async def __aenter__(self) -> Self:
        if self.enters >= 1:
            self.enters += 1
            await asyncio.Event().wait()
        return await super().__aenter__()


async def _while_retrying(source: HangsOnRetry) -> tuple[SourceState, bool, bool, list[str]]:
    """The supervisor's view of ``source`` during its second connect attempt."""

    async def sink(batch: Batch) -> None:
        return None

    sup = Supervisor(sink, backoff_min_s=0.01, jitter=lambda: 0.0)
    task = asyncio.create_task(sup.run(source))
    while source.enters < 2:
        await asyncio.sleep(0.005)
    status = sup.status()["scripted"]
    seen = (status.state, status.been_up, sup.healthy(), sup.first_start())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return seen


async def test_a_source_reconnecting_after_it_was_up_is_not_healthy() -> None:
    """Once up, a source that lost its connection is unhealthy while it connects again,
    not only while it waits in backoff."""
    seen = await _while_retrying(HangsOnRetry([_batch(1)], fail_after=True))
    assert seen == (SourceState.STARTING, True, False, [])


async def test_a_source_that_failed_before_it_was_ever_up_stays_unhealthy_while_retrying() -> None:
    """A source whose first connect failed is unhealthy (not merely starting) during its
    next attempt too, so /readyz says degraded until it is up."""
    seen = await _while_retrying(HangsOnRetry([], fail_enters=1))
    assert seen == (SourceState.STARTING, False, False, [])
