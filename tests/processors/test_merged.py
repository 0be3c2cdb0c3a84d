"""Reads over several partitions: one processor per site reads as the whole floor."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import msgspec
import pytest
from helpers import decode
from traces import DAY0, Event, assert_same_document, replay_events, simulate, write_config

from callfloor.alerts.driver import attach_alerts
from callfloor.config import Config
from callfloor.processors.engine import FloorProcessor
from callfloor.processors.merged import MergedReader
from callfloor.processors.read import FloorReader
from callfloor.processors.views import NamePolicy


def _partitioned(config: Config, events: list[Event], at: float) -> list[FloorProcessor]:
    """One processor per site, each fed its site's events, all ticked to ``at``."""
    procs: dict[str, FloorProcessor] = {}
    for raw in events:
        event = decode(raw)
        site = event.site
        if site not in procs:
            procs[site] = FloorProcessor(config.for_sites(frozenset({site})))
            attach_alerts(procs[site], config)
        procs[site].apply(event)
    for proc in procs.values():
        proc.tick(at)
    return [procs[site] for site in sorted(procs)]


def _merged(procs: list[FloorProcessor], config: Config, generation: int = 0) -> MergedReader:
    labels = [label for label, _ in config.rolling_windows] + ["interval", "today"]
    return MergedReader([p.view for p in procs], labels=labels, generation=generation)


@pytest.fixture(scope="module")
def floor(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, list[Event], Path]:
    trace = simulate(seed=11, agents=24, queues=4, sites=2, hours=2.0, start=DAY0 + 8 * 3600.0)
    directory = tmp_path_factory.mktemp("merged")
    config = write_config(directory / "callfloor.toml", trace.toml)
    return config, trace.events, directory


def test_every_public_read_is_merged() -> None:
    """MergedReader overrides every public read of FloorReader (none reads a missing processor)."""
    public = {
        name
        for name, _ in inspect.getmembers(FloorReader)
        if not name.startswith("_") and name in FloorReader.__dict__
    }
    missing = sorted(name for name in public if name not in MergedReader.__dict__)
    assert missing == []


def test_per_site_processors_merged_equal_the_whole_floor(
    floor: tuple[Config, list[Event], Path],
) -> None:
    """The merged document of per-site processors equals the replay of every event."""
    config, events, directory = floor
    at = max(float(e["ts"]) for e in events)
    procs = _partitioned(config, events, at)
    assert len(procs) == 2
    merged = json.loads(msgspec.json.encode(_merged(procs, config).document()))
    whole = replay_events(directory, "whole", events, config, at)
    assert_same_document(merged, whole, "merged per-site processors and the whole replay")
    assert merged["counters"]["late"] == whole["counters"]["late"]


def test_merged_reads_find_each_name_in_its_partition(
    floor: tuple[Config, list[Event], Path],
) -> None:
    """A queue, site or agent is read from the partition that has it; lists are unions."""
    config, events, _ = floor
    at = max(float(e["ts"]) for e in events)
    procs = _partitioned(config, events, at)
    view = _merged(procs, config)
    assert view.queue_names() == sorted(n for p in procs for n in p.view.queue_names())
    assert view.agent_names() == sorted(n for p in procs for n in p.view.agent_names())
    for proc in procs:
        for name in proc.view.queue_names():
            assert view.queue(name) == proc.view.queue(name)
            assert view.queue_totals(name) == proc.view.queue_totals(name)
        for name in proc.view.agent_names()[:5]:
            assert view.agent_detail(name, names=NamePolicy.SHOW) == proc.view.agent_detail(
                name, names=NamePolicy.SHOW
            )
    assert view.queue("nowhere") is None and view.agent("nobody") is None
    stats = view.stats()
    assert stats.open_legs == sum(p.view.stats().open_legs for p in procs)
    assert sum(stats.events_by_type.values()) == sum(p.view.counters().events for p in procs)


def test_the_version_moves_with_the_partition_set() -> None:
    """A new generation (partitions adopted or dropped) changes the version, a cache key."""
    config = Config()
    procs = [FloorProcessor(config)]
    assert _merged(procs, config, 1).version != _merged(procs, config, 2).version


def test_no_partition_reads_as_an_empty_floor_at_the_given_clock() -> None:
    """A process standing by (no partition) answers an empty document at its clock."""
    view = MergedReader([], labels=["15m", "interval", "today"], clock=DAY0)
    doc = view.document()
    assert doc.as_of == DAY0 and doc.queues == {} and doc.agents == {}
    assert doc.counters.events == 0
