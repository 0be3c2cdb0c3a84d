"""HTTP API (aiohttp): ingest, the live document and per-entity reads, changes, health, metrics.

- :mod:`~callfloor.web.app`: :func:`make_app` (routes, the JSON error middleware);
- :mod:`~callfloor.web.floor`: the :class:`Floor` protocol the routes need of the service;
- :mod:`~callfloor.web.reads`, :mod:`~callfloor.web.ingest`,
  :mod:`~callfloor.web.changes`, :mod:`~callfloor.web.health`: the routes;
- :mod:`~callfloor.web.auth`: access control (bearer tokens, the loopback rule);
- :mod:`~callfloor.web.redact`: display names withheld from callers beyond loopback;
- :mod:`~callfloor.web.errors`: JSON answers and errors.

docs/api.md describes every endpoint.
"""

from callfloor.web.app import make_app
from callfloor.web.floor import Floor

__all__ = ["Floor", "make_app"]
