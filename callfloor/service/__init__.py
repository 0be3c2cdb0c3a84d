"""The live service: :class:`FloorService` and the ``serve`` / ``demo`` entry points.

- :mod:`~callfloor.service.floor`: the service object (writer task, ticks, reads,
  lifecycle);
- :mod:`~callfloor.service.stats`: its self-metrics (:class:`IngestStats`);
- :mod:`~callfloor.service.commands`: :func:`run_serve` and :func:`run_demo`, which the
  command line calls (port errors, signals, the start banner).
"""

from callfloor.service.commands import run_demo, run_serve
from callfloor.service.floor import FloorService, ListenError
from callfloor.service.stats import IngestStats

__all__ = ["FloorService", "IngestStats", "ListenError", "run_demo", "run_serve"]
