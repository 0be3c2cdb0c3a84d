"""Runs sources: restarts a failing one with capped, jittered backoff; never fails the service.

One :meth:`Supervisor.run` task per source. A run is ``async with source: async
for batch in source: await sink(batch)``. An exception in the source (connecting,
reading, decoding) is logged, counted as a restart, and the source is entered
again after a delay that doubles from ``backoff_min_s`` up to ``backoff_max_s``,
each drawn between half and all of its value (jitter, so a fleet of services does
not reconnect to a broker in lock-step). A source that stayed up for
``stable_after_s`` starts again from the shortest delay. A source whose iterator
ends is finished and not restarted. The state of each source is reported by
:meth:`Supervisor.status` (``/readyz``) and in the mappings given to it (metrics).

A source counts as up once ``async with source`` has returned: for MQTT, connected
and subscribed. Until a source has been up once it is :meth:`Supervisor.first_start`
pending: a broker drops what is published before the first subscription of a new
session, so a service must not say it takes events before then.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from callfloor.ingest.source import Batch, Source

log = logging.getLogger("callfloor.ingest")

Sink = Callable[[Batch], Awaitable[None]]


class SourceState(StrEnum):
    """Where a supervised source is."""

    STARTING = "starting"
    UP = "up"
    BACKOFF = "backoff"  # failed; waiting to be entered again
    FINISHED = "finished"  # its iterator ended


@dataclass(slots=True)
class SourceStatus:
    """One source as ``/readyz`` shows it."""

    state: SourceState = SourceState.STARTING
    been_up: bool = False  # entered at least once (MQTT: connected and subscribed)
    restarts: int = 0
    last_error: str | None = None
    retry_in_s: float | None = None


def _first_try(status: SourceStatus) -> bool:
    return status.state is SourceState.STARTING and not status.been_up and not status.restarts


class Supervisor:
    """Supervises sources feeding one sink (see the module docstring)."""

    def __init__(
        self,
        sink: Sink,
        *,
        up: dict[str, bool] | None = None,
        restarts: dict[str, int] | None = None,
        backoff_min_s: float = 0.5,
        backoff_max_s: float = 30.0,
        stable_after_s: float = 60.0,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sink = sink
        self.up = up if up is not None else {}
        self.restarts = restarts if restarts is not None else {}
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self.stable_after_s = stable_after_s
        self._jitter = jitter
        self._clock = clock
        self._status: dict[str, SourceStatus] = {}

    def status(self) -> dict[str, SourceStatus]:
        """Every supervised source by name."""
        return dict(self._status)

    def register(self, source: Source) -> None:
        """Know ``source`` before its :meth:`run` task starts (it shows as starting)."""
        name = source.name
        if name not in self._status:
            self._status[name] = SourceStatus()
            self.up[name] = False
            self.restarts.setdefault(name, 0)

    def healthy(self) -> bool:
        """No source is failing: none waits to be restarted or is reconnecting."""
        return all(
            s.state in (SourceState.UP, SourceState.FINISHED) or _first_try(s)
            for s in self._status.values()
        )

    def first_start(self) -> list[str]:
        """The sources still making their first attempt (never up, never failed)."""
        return sorted(name for name, s in self._status.items() if _first_try(s))

    def delay(self, attempt: int) -> float:
        """The wait before restart number ``attempt`` (1-based): doubling, capped, jittered."""
        base = min(self.backoff_max_s, self.backoff_min_s * 2.0 ** (attempt - 1))
        return base * (0.5 + 0.5 * self._jitter())

    async def run(self, source: Source) -> None:
        """Run ``source`` until it finishes or the task is cancelled; never raises otherwise."""
        name = source.name
        self.register(source)
        status = self._status[name]
        attempt = 0
        while True:
            started = self._clock()
            try:
                async with source:
                    status.state, status.retry_in_s = SourceState.UP, None
                    status.been_up = True
                    self.up[name] = True
                    async for batch in source:
                        await self.sink(batch)
            except asyncio.CancelledError:
                self.up[name] = False
                raise
            except Exception as exc:  # a source error never tears down the service
                self.up[name] = False
                if self._clock() - started >= self.stable_after_s:
                    attempt = 0
                attempt += 1
                wait = self.delay(attempt)
                status.state = SourceState.BACKOFF
                status.restarts += 1
                status.last_error = f"{type(exc).__name__}: {exc}"[:500]
                status.retry_in_s = round(wait, 3)
                self.restarts[name] = self.restarts.get(name, 0) + 1
                log.warning(
                    "source_failed source=%s error=%r retry_in_s=%.2f",
                    name,
                    status.last_error,
                    wait,
                )
                await asyncio.sleep(wait)
                status.state = SourceState.STARTING
                continue
            self.up[name] = False
            status.state = SourceState.FINISHED
            log.info("source_finished source=%s", name)
            return
