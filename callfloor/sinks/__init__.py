"""Sinks: where the live floor goes besides callfloor's own HTTP and ``/metrics``.

- :mod:`~callfloor.sinks.redis_floor`: :class:`RedisFloor`, the live floor as Redis
  hashes and a pub/sub channel of changes, fed from the change bus;
- :mod:`~callfloor.sinks.floor_fields`: the pure part of it, typed views to the flat
  hash fields and the change message (no I/O).

A sink subscribes to the change bus and never blocks the writer: what it cannot
deliver in time it coalesces, and when it lost track it reads the whole floor again.
"""
