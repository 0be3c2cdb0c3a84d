"""Prometheus exposition of the floor.

- :mod:`~callfloor.metrics.catalogue`: every family as data (name, type, help, labels,
  unit); ``docs/metrics.md`` is generated from it.
- :mod:`~callfloor.metrics.render`: the fast text renderer and label escaping.
- :mod:`~callfloor.metrics.collector`: :class:`FloorCollector` over the processor's
  typed read model (``proc.view``).
- :mod:`~callfloor.metrics.stats`: the :class:`ServiceStats` protocol the live service
  provides for its self-metrics.
- :mod:`~callfloor.metrics.registry`: :class:`FloorRegistry`, :func:`render`,
  :func:`render_service` (the ``/metrics`` body) and :data:`CONTENT_TYPE`.
"""

from callfloor.metrics.catalogue import CATALOGUE, Family
from callfloor.metrics.collector import FloorCollector
from callfloor.metrics.registry import (
    CONTENT_TYPE,
    FloorRegistry,
    LiveService,
    build_registry,
    render,
    render_service,
)
from callfloor.metrics.stats import ServiceStats, StatsProvider

__all__ = [
    "CATALOGUE",
    "CONTENT_TYPE",
    "Family",
    "FloorCollector",
    "FloorRegistry",
    "LiveService",
    "ServiceStats",
    "StatsProvider",
    "build_registry",
    "render",
    "render_service",
]
