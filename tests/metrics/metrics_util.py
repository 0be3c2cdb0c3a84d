"""Shared scenario and scrape helpers for the Prometheus exposition tests."""

from __future__ import annotations

from typing import Any

from helpers import T0, ev, processor
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from callfloor.config import Config
from callfloor.metrics import build_registry, render
from callfloor.processors.engine import FloorProcessor
from callfloor.service.stats import IngestStats

# An interval start, so the whole scenario lies in one site interval as well.
B = T0 + 200.0
AT = B + 200.0


def scenario() -> list[dict[str, Any]]:
    """Two queues on one site: a met answer, a missed abandon, a short abandon, a waiter."""
    return [
        ev("agent_state", B, agent="a1", state="available", queues=["sales"], team="blue"),
        ev("agent_state", B, agent="a2", state="available", queues=["sales", "support"]),
        ev("call_queued", B, call_id="c1", queue="sales"),
        ev("call_queued", B + 1, call_id="c2", queue="sales"),
        ev("call_queued", B + 2, call_id="c3", queue="sales"),
        ev("call_abandoned", B + 4, call_id="c3"),  # wait 2 s: short abandon
        ev("call_queued", B + 5, call_id="c4", queue="support"),  # still waiting
        ev("call_answered", B + 10, call_id="c1", agent="a1"),  # wait 10 s: met
        ev("agent_state", B + 10, agent="a1", state="on_call"),
        ev("call_abandoned", B + 31, call_id="c2"),  # wait 30 s: abandoned, missed
        ev("call_ended", B + 100, call_id="c1", agent="a1"),
        ev("agent_state", B + 100, agent="a1", state="wrap_up"),
        ev("agent_state", B + 130, agent="a1", state="available"),  # handled: 120 s
    ]


def scenario_proc(cfg: Config | None = None, at: float = AT) -> FloorProcessor:
    """A processor that applied :func:`scenario` and was ticked to ``at``."""
    proc = processor(scenario(), cfg)
    proc.tick(at)
    return proc


def parse(body: bytes) -> dict[str, Metric]:
    """Families by name, through prometheus_client's own text parser."""
    return {f.name: f for f in text_string_to_metric_families(body.decode("utf-8"))}


def scrape(proc: FloorProcessor, **kwargs: Any) -> dict[str, Metric]:
    """Drain ``proc``'s change set, as the live service's tick does (a read no longer
    updates the violation bookkeeping itself), then render a fresh registry and parse it."""
    if proc.changes:
        proc.drain_changes()
    return parse(render(build_registry(proc, **kwargs)))


def value(families: dict[str, Metric], sample: str, **labels: str) -> float | None:
    """The value of the one sample with this name and exactly these labels, else None."""
    found = [
        s.value
        for f in families.values()
        for s in f.samples
        if s.name == sample and s.labels == labels
    ]
    assert len(found) <= 1, (sample, labels, found)
    return found[0] if found else None


def samples(families: dict[str, Metric], sample: str) -> list[dict[str, str]]:
    """The label sets of every sample with this name."""
    return [s.labels for f in families.values() for s in f.samples if s.name == sample]


# The service's own stats object: plain attributes, every ServiceStats field settable.
FakeStats = IngestStats
