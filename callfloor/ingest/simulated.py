"""The simulator as an in-process event source (for ``callfloor demo``).

The simulated floor starts a little in the past so the wallboard has numbers at
once: events up to now are fed as fast as the service takes them, later ones are
paced to the (optionally sped-up) clock, in small batches.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Self
from zoneinfo import ZoneInfo

import msgspec

from callfloor.config import Config, load_config, parse_config
from callfloor.events import Event
from callfloor.ingest.decode import Rejection, decode_line
from callfloor.ingest.source import Batch
from callfloor.simulator import SITE_CATALOGUE, FloorSimulation, SimulationSpec, SiteSpec

WARMUP_S = 20 * 60.0
BATCH_MAX = 500


def business_hours_sites(now: float, count: int = 2) -> tuple[SiteSpec, ...]:
    """Sites from the catalogue whose local time is daytime now, so the demo is busy."""

    def local_hour(tz: str) -> float:
        local = datetime.fromtimestamp(now, ZoneInfo(tz))
        return local.hour + local.minute / 60

    ranked = sorted(SITE_CATALOGUE, key=lambda site: abs(local_hour(site[1]) - 11.5))
    return tuple(SiteSpec(name, tz, interval) for name, tz, interval in ranked[:count])


def to_events(items: Iterator[dict[str, object]]) -> Iterator[Event]:
    """Simulator dicts through the real decoder, as if they came over the wire."""
    encode = msgspec.json.encode
    for item in items:
        decoded = decode_line(encode(item))
        if isinstance(decoded, Rejection):  # the simulator emits valid events only
            raise ValueError(f"simulator produced an invalid event: {decoded.message}")
        yield decoded


class PacedSource:
    """A source of simulated events, each batch released once its ``ts`` has come.

    Events up to the clock go out as fast as the service takes them, in batches of
    at most ``batch_max``; later ones wait for the clock. The iterator position
    survives a restart (the supervisor enters the source again after an error).
    """

    def __init__(
        self,
        events: Iterator[Event],
        clock: Callable[[], float],
        *,
        name: str = "simulator",
        batch_max: int = BATCH_MAX,
    ) -> None:
        self._events = events
        self._clock = clock
        self._name = name
        self._batch_max = batch_max
        self._pending: Event | None = None

    @property
    def name(self) -> str:
        """The source name (metric label)."""
        return self._name

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def __aiter__(self) -> AsyncIterator[Batch]:
        return self._batches()

    async def _batches(self) -> AsyncIterator[Batch]:
        while True:
            now = self._clock()
            batch: list[Event] = []
            pending = self._pending
            if pending is not None:
                ts: float = pending.ts  # type: ignore[assignment]
                if ts > now:
                    await asyncio.sleep(min(1.0, ts - now))
                    continue
                batch.append(pending)
                self._pending = None
            for event in self._events:
                if event.ts > now:  # type: ignore[operator]
                    self._pending = event
                    break
                batch.append(event)
                if len(batch) >= self._batch_max:
                    break
            else:
                if not batch:
                    return  # the simulated day is over
            if batch:
                yield Batch(batch, self._name)
            else:
                await asyncio.sleep(0)


@dataclass(frozen=True)
class DemoSetup:
    """What ``callfloor demo`` runs: configuration, clock and the simulator source."""

    config: Config
    clock: Callable[[], float]
    source: PacedSource
    site_names: tuple[str, ...]
    warmup: list[Event]  # the simulated minutes before now, applied before serving


def demo_setup(
    *,
    seed: int = 1,
    agents: int = 60,
    queues: int = 8,
    speed: float = 1.0,
    config_path: str | None = None,
    wall: Callable[[], float] = time.time,
) -> DemoSetup:
    """A simulated floor in business hours, starting ``WARMUP_S`` in the past."""
    if speed <= 0:
        raise ValueError("speed must be positive")
    wall_start = wall()
    sites = business_hours_sites(wall_start)
    spec = SimulationSpec(seed=seed, agents=agents, queues=max(queues, len(sites)), sites=sites)
    sim = FloorSimulation(spec)
    config = (
        load_config(config_path)
        if config_path
        else parse_config(_toml(sim.config_toml()), "<simulated floor>")
    )

    def clock() -> float:
        # Simulated time runs `speed` times faster than the wall clock from now on.
        return wall_start + (wall() - wall_start) * speed

    events = to_events(iter(sim.events(wall_start - WARMUP_S, 7 * 86400.0)))
    warmup: list[Event] = []
    upcoming: Iterator[Event] = events
    for event in events:
        if event.ts > wall_start:  # type: ignore[operator]
            # The first event after now goes out when its time comes: applied with the
            # warm-up it would move the clock ahead of the wall clock.
            upcoming = itertools.chain((event,), events)
            break
        warmup.append(event)
    return DemoSetup(
        config, clock, PacedSource(upcoming, clock), tuple(s.name for s in sites), warmup
    )


def _toml(text: str) -> dict[str, object]:
    import tomllib

    return tomllib.loads(text)
