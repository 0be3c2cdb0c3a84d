"""Processors: the pure, deterministic core (events and clock ticks in, state out).

Nothing in this package performs I/O or imports asyncio, aiohttp, aiomqtt or redis.
"""

from callfloor.processors.engine import FloorProcessor
from callfloor.processors.snapshot import build_document

__all__ = ["FloorProcessor", "build_document"]
