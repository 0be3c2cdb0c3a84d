"""Helpers (no tests) for the feed tests: run a mapper over text, look at its events."""

from __future__ import annotations

from typing import Any

from callfloor.events import Event, to_builtins
from callfloor.feeds.base import FeedOptions, LineSplitter, MapResult
from callfloor.feeds.queue_log import QueueLogMapper

# 2026-11-23T09:00:00Z, a Monday.
T0 = 1_795_424_400


def feed_text(mapper: Any, text: str) -> MapResult:
    """Every complete line of ``text`` through ``mapper`` (positions are byte offsets)."""
    lines, offsets, _ = LineSplitter().push(text.encode())
    result: MapResult = mapper.feed(lines, offsets)
    return result


def qlog(*lines: str, options: FeedOptions | None = None) -> MapResult:
    """queue_log lines (without newlines) through a fresh mapper."""
    return feed_text(QueueLogMapper(options), "".join(line + "\n" for line in lines))


def plain(event: Event) -> dict[str, Any]:
    """An event as a dict without its id and without fields left at None."""
    out = {k: v for k, v in to_builtins(event).items() if v is not None and k != "id"}
    return out


def shapes(result: MapResult) -> list[dict[str, Any]]:
    """The events of a result as :func:`plain` dicts."""
    return [plain(e) for e in result.events]


def kinds(result: MapResult) -> list[str]:
    """``type`` (and ``state`` for agent states) of each event."""
    out = []
    for e in result.events:
        d = to_builtins(e)
        out.append(f"{d['type']}:{d['state']}" if d["type"] == "agent_state" else d["type"])
    return out
