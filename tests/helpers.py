"""Shared test helpers: build events and run them through the real decode path."""

from __future__ import annotations

from typing import Any

import msgspec

from callfloor.config import Config, parse_config
from callfloor.events import Event
from callfloor.ingest.decode import Rejection, decode_line
from callfloor.processors.engine import FloorProcessor
from callfloor.processors.snapshot import build_document

T0 = 1_795_300_000.0  # 2026-11-21 22:26:40 UTC (a Saturday)


def ev(type_: str, ts: float, **fields: Any) -> dict[str, Any]:
    """A canonical event as a dict."""
    return {"type": type_, "ts": ts, **fields}


def decode(event: dict[str, Any]) -> Event:
    """Decode one event dict through the real decoder (asserting it is valid)."""
    item = decode_line(msgspec.json.encode(event))
    assert not isinstance(item, Rejection), item
    return item


def config(data: dict[str, Any] | None = None) -> Config:
    """A validated configuration from a TOML-shaped dict."""
    return parse_config(data or {}, "<test>")


def run(
    events: list[dict[str, Any]], cfg: Config | None = None, at: float | None = None
) -> dict[str, Any]:
    """Apply events in order, tick to ``at`` (default: the last event's ts), render the document."""
    proc = processor(events, cfg)
    proc.tick(at if at is not None else events[-1]["ts"])
    return build_document(proc)


def processor(events: list[dict[str, Any]], cfg: Config | None = None) -> FloorProcessor:
    """A processor that has applied ``events``."""
    proc = FloorProcessor(cfg or config())
    for e in events:
        proc.apply(decode(e))
    return proc
