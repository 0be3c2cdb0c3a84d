"""The registry that renders quickly, and the ``/metrics`` body of a live service."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final, Protocol

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from callfloor.metrics.collector import Floor, FloorCollector
from callfloor.metrics.stats import ServiceStats, StatsProvider

__all__ = ["CONTENT_TYPE", "FloorRegistry", "build_registry", "render", "render_service"]

CONTENT_TYPE: Final[str] = CONTENT_TYPE_PLAIN_0_0_4
"""The ``Content-Type`` of :func:`render` output (Prometheus text format 0.0.4)."""


class FloorRegistry(CollectorRegistry):
    """A ``CollectorRegistry`` that :func:`render` writes quickly.

    It remembers its collectors in registration order, so :func:`render` can write
    each :class:`FloorCollector` through its fast text path and every other collector
    through ``generate_latest``; the result is byte-identical to
    ``generate_latest(registry)``, which also works on it (slowly).
    """

    def __init__(self, *, auto_describe: bool = False) -> None:
        super().__init__(auto_describe=auto_describe)
        self._ordered: list[Collector] = []
        self._ordered_lock = threading.Lock()

    def register(self, collector: Collector) -> None:
        """Add a collector (duplicate family names are refused, as by the base class)."""
        super().register(collector)
        with self._ordered_lock:
            self._ordered.append(collector)

    def unregister(self, collector: Collector) -> None:
        """Remove a collector."""
        super().unregister(collector)
        with self._ordered_lock:
            self._ordered.remove(collector)

    def render(self) -> bytes:
        """Text format 0.0.4 of every collector, FloorCollectors on the fast path."""
        if self.get_target_info():
            return generate_latest(self)  # target_info comes first: keep the library's order
        with self._ordered_lock:
            collectors = list(self._ordered)
        with _gc_paused():
            parts = [
                c.render_text() if isinstance(c, FloorCollector) else generate_latest(c).decode()
                for c in collectors
            ]
        return "".join(parts).encode("utf-8")


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No garbage-collector pass during one scrape (the previous state is restored).

    A scrape reads the floor as tens of thousands of short-lived msgspec Structs and
    dicts, which reference counting frees; their allocation alone triggers collections,
    and now and then a full one over the processor's large heap. That doubled the
    slowest scrapes on the bench floor (bench/bench_metrics.py: max 198 ms against
    101 ms with collection paused, medians 96 and 93 ms).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def build_registry(
    proc: Floor,
    *,
    stats: StatsProvider | None = None,
    per_agent_series: bool | None = None,
) -> FloorRegistry:
    """A fresh registry (not the global one) holding one :class:`FloorCollector`."""
    registry = FloorRegistry()
    registry.register(FloorCollector(proc, stats=stats, per_agent_series=per_agent_series))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The ``/metrics`` body (serve it with :data:`CONTENT_TYPE`).

    Same bytes as ``prometheus_client.generate_latest(registry)``; a
    :class:`FloorRegistry` takes the fast path. Tick the processor first.
    """
    if isinstance(registry, FloorRegistry):
        return registry.render()
    return generate_latest(registry)


class LiveService(Protocol):
    """What :func:`render_service` needs of the live service."""

    @property
    def floor(self) -> Floor:
        """The live floor (the service replaces it when partitions come and go)."""

    @property
    def stats(self) -> ServiceStats:
        """The service's self-metrics (it may swap the object)."""


# One registry per service, so label caches survive from scrape to scrape. The value
# must not reference the service (it would keep its own key alive).
_SERVICE_REGISTRIES: weakref.WeakKeyDictionary[Any, tuple[FloorRegistry, FloorCollector]] = (
    weakref.WeakKeyDictionary()
)


def render_service(service: LiveService) -> bytes:
    """The ``/metrics`` body of a live service: its processor and its stats.

    The caller advances the processor first (``service.read()``). The registry is
    kept per service and rebuilt if the service's processor was replaced.
    """
    stats = service.stats

    def provider() -> ServiceStats:
        return stats

    entry = _SERVICE_REGISTRIES.get(service)
    floor = service.floor
    if entry is None or entry[1].proc is not floor:
        collector = FloorCollector(floor, stats=provider)
        registry = FloorRegistry()
        registry.register(collector)
        entry = _SERVICE_REGISTRIES[service] = (registry, collector)
    entry[1].stats = provider  # the service may have swapped its stats object
    return entry[0].render()
