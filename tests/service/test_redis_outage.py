"""A hung Redis does not blank the served floor (issue 10, item 3; docs/store.md "Redis down").

Real processes: a redis-server (the fixture) and `callfloor serve` with a ``redis://``
store. A simulated trace is posted and applied; then Redis is stopped with SIGSTOP (it
keeps its connections and answers nothing) while a thread reads ``/api/v1/snapshot``
over and over. The service cannot renew its lease, so after 0.4 x ``lease_ttl`` it
stops applying the partition (no split brain); its readers go on seeing the partition
as it last stood, frozen at its last ``as_of`` and marked stale. Then Redis resumes
(SIGCONT), the partition is taken again and the floor is live.

The run happens once (a module fixture); each test checks one thing it showed.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fixtures.redis_server import RedisServer
from prometheus_client.parser import text_string_to_metric_families
from serving import ServeProcess, replay_cli
from traces import DAY0, Event, assert_same_document, shifted, simulate, write_ndjson
from waiting import wait_until

LEASE_TTL_S = 2.0
FROZEN_WATCH_S = 2.5  # how long the frozen floor is watched (its clock must not move)
STALE_GAUGE = "callfloor_partition_stale_since_seconds"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _get(url: str, timeout: float = 5.0) -> tuple[int, bytes, dict[str, str]]:
    """GET ``url``: status, body and headers (error answers too)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


@dataclass
class Read:
    """One answer of ``/api/v1/snapshot``."""

    at: float  # wall clock when it was answered
    doc: dict[str, Any]
    header: str | None  # Callfloor-Stale


def _snapshot(server: ServeProcess) -> Read:
    status, body, headers = _get(f"{server.base}/api/v1/snapshot")
    assert status == 200, body[:300]
    return Read(time.time(), json.loads(body), headers.get("Callfloor-Stale"))


def _readyz(server: ServeProcess) -> tuple[int, dict[str, Any]]:
    status, body, _ = _get(f"{server.base}/readyz")
    return status, json.loads(body)


def _metrics(server: ServeProcess) -> Samples:
    _, body, _ = _get(f"{server.base}/metrics")
    out: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _labelled(samples: Samples, label: str) -> set[str]:
    """Names of the samples carrying ``label`` (e.g. every per-queue series)."""
    return {name for name, labels in samples if any(k == label for k, _ in labels)}


@dataclass
class Reader:
    """Reads the snapshot over and over from a thread until stopped."""

    server: ServeProcess
    reads: list[Read] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        try:
            while not self._stop.is_set():
                self.reads.append(_snapshot(self.server))
                time.sleep(0.05)
        except BaseException as exc:  # reported by the test
            self.errors.append(exc)

    def stop(self) -> None:
        self._stop.set()


@dataclass
class Outage:
    """What the service served before, during and after Redis was stopped."""

    events: list[Event]
    before: Read
    stopped_at: float  # wall clock of the SIGSTOP
    reads: list[Read]  # the reader's answers from the SIGSTOP until the SIGCONT
    reader_errors: list[BaseException]
    frozen: list[Read]  # snapshots read once the partition was stale, FROZEN_WATCH_S apart
    down_readyz: tuple[int, dict[str, Any]]
    down_metrics: Samples
    before_metrics: Samples
    replayed: dict[str, Any]  # `callfloor replay` at the frozen as_of
    back_readyz: tuple[int, dict[str, Any]] = (0, {})
    back: list[Read] = field(default_factory=list)  # live again, two ticks apart
    back_metrics: Samples = field(default_factory=dict)


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outage]:
    tmp_path = tmp_path_factory.mktemp("redis_outage")
    trace = simulate(seed=5, agents=12, queues=3, sites=2, hours=1.0, start=DAY0 + 9 * 3600.0)
    end = max(float(e["ts"]) for e in trace.events)
    events = shifted(trace.events, round(time.time() - 3.0 - end, 3))
    with RedisServer(tmp_path) as redis:
        config = tmp_path / "callfloor.toml"
        config.write_text(
            trace.toml
            + f'\n[store]\nurl = "{redis.url}"\ncheckpoint_every = "1s"\n'
            + f'lease_ttl = "{LEASE_TTL_S:g}s"\n',
            encoding="utf-8",
        )
        server = ServeProcess(config)
        try:
            server.wait_ready(timeout=20.0)
            server.post_all(events)
            server.snapshot_after(len(events), timeout=30.0)
            before = _snapshot(server)
            before_metrics = _metrics(server)
            reader = Reader(server)
            thread = threading.Thread(target=reader.run)
            thread.start()
            stopped_at = time.time()
            redis.pause()
            try:
                wait_until(
                    lambda: "all" in _readyz(server)[1].get("stale", {}),
                    LEASE_TTL_S * 5,
                    "the partition served stale after Redis was stopped",
                )
                down_readyz = _readyz(server)
                down_metrics = _metrics(server)
                first = _snapshot(server)
                time.sleep(FROZEN_WATCH_S)
                frozen = [first, _snapshot(server)]
            finally:
                reader.stop()
                thread.join(timeout=30)
                redis.resume()
            replayed = replay_cli(
                config,
                write_ndjson(tmp_path / "trace.ndjson", events),
                float(frozen[0].doc["as_of"]),
            )
            seen = Outage(
                events,
                before,
                stopped_at,
                [r for r in reader.reads if r.at >= stopped_at],
                reader.errors,
                frozen,
                down_readyz,
                down_metrics,
                before_metrics,
                replayed,
            )

            def live_again() -> bool:
                status, doc = _readyz(server)
                if status != 200 or doc.get("stale"):
                    return False
                seen.back_readyz = (status, doc)
                return True

            wait_until(live_again, 20.0, "ready and not stale after Redis resumed")
            seen.back = [_snapshot(server)]
            wait_until(
                lambda: _snapshot(server).doc["as_of"] > seen.back[0].doc["as_of"],
                10.0,
                "the clock moving again",
            )
            seen.back.append(_snapshot(server))
            seen.back_metrics = _metrics(server)
        finally:
            server.stop()
    yield seen


def test_the_snapshot_is_never_blank_while_redis_is_stopped(outage: Outage) -> None:
    """Every snapshot read while Redis was stopped has the queues, sites and agents the
    floor had before (the partition not applied is still served)."""
    assert not outage.reader_errors
    assert len(outage.reads) >= 10, "the reader hardly read while Redis was stopped"
    for read in outage.reads:
        for key in ("queues", "sites", "agents"):
            assert read.doc[key].keys() == outage.before.doc[key].keys(), (key, read.at)


def test_the_stale_floor_is_frozen_at_its_last_as_of(outage: Outage) -> None:
    """Once stale, the served floor does not move: the same as_of and the same document
    seconds apart, so no wait grows and no alert changes on a floor not applied."""
    first, last = outage.frozen
    assert last.at - first.at >= FROZEN_WATCH_S
    assert first.doc == last.doc
    assert first.doc["as_of"] < min(m["since"] for m in first.doc["stale"].values())


def test_the_frozen_floor_is_what_was_applied_by_its_as_of(outage: Outage) -> None:
    """The frozen document (its stale mark aside) equals `callfloor replay` of the events
    at its as_of: nothing acknowledged was lost or changed by freezing."""
    doc = {k: v for k, v in outage.frozen[0].doc.items() if k != "stale"}
    assert doc["counters"]["events"] == len(outage.events)
    # History posted hours late (or across a restart or a handover) is beyond the
    # live alert snapshots: its alert instants are the clock's (docs/alerts.md).
    assert_same_document(doc, outage.replayed, "the frozen snapshot", alerts=False)


def test_the_snapshot_marks_each_stale_site_outside_the_document_keys(outage: Outage) -> None:
    """While stale the snapshot has a top-level `stale` object (not a SPEC §7 key) naming
    every site with its partition, since when and the as_of its values describe, and a
    Callfloor-Stale header with the earliest since; live, neither."""
    read = outage.frozen[0]
    stale = read.doc["stale"]
    assert set(stale) == set(read.doc["sites"])
    for mark in stale.values():
        assert mark["partition"] == "all"
        assert mark["as_of"] == read.doc["as_of"]
        assert outage.stopped_at <= mark["since"] <= read.at
    assert read.header is not None
    assert float(read.header) == min(m["since"] for m in stale.values())
    assert "stale" not in outage.before.doc and outage.before.header is None
    for live in outage.back:
        assert "stale" not in live.doc and live.header is None


def test_readyz_says_degraded_with_the_stale_partition_and_since_when(outage: Outage) -> None:
    """/readyz is 503 degraded while stale and lists the partition: since when, the as_of
    it is frozen at, its sites."""
    status, doc = outage.down_readyz
    assert status == 503 and doc["status"] == "degraded"
    assert doc["partitions"] == []  # not applied here
    mark = doc["stale"]["all"]
    assert mark["as_of"] == outage.frozen[0].doc["as_of"]
    assert mark["since"] == outage.frozen[0].doc["stale"][mark["sites"][0]]["since"]
    assert sorted(mark["sites"]) == sorted(outage.before.doc["sites"])


def test_metrics_stop_exporting_the_partition_and_say_since_when_it_is_stale(
    outage: Outage,
) -> None:
    """While stale /metrics has no queue or site series (a takeover elsewhere would be
    counted twice in sum by (site)), and the stale gauge gives since when, by partition."""
    assert _labelled(outage.before_metrics, "queue") and _labelled(outage.before_metrics, "site")
    down = outage.down_metrics
    assert not _labelled(down, "queue") - {"callfloor_agent_info"}
    assert "callfloor_site_waiting_calls" not in _labelled(down, "site")
    since = down[(STALE_GAUGE, (("partition", "all"),))]
    assert since == outage.down_readyz[1]["stale"]["all"]["since"]
    assert not [k for k in outage.before_metrics if k[0] == STALE_GAUGE]


def test_the_floor_is_live_again_once_redis_resumes(outage: Outage) -> None:
    """After SIGCONT the partition is applied again: ready, no stale mark anywhere, the
    clock moving, the queue series and no stale gauge on /metrics."""
    status, doc = outage.back_readyz
    assert status == 200 and doc["status"] == "ready"
    assert doc["partitions"] == ["all"] and doc["stale"] == {}
    first, second = outage.back
    assert second.doc["as_of"] > first.doc["as_of"] > outage.frozen[0].doc["as_of"]
    assert first.doc["queues"].keys() == outage.before.doc["queues"].keys()
    assert "callfloor_queue_waiting_calls" in _labelled(outage.back_metrics, "queue")
    assert not [k for k in outage.back_metrics if k[0] == STALE_GAUGE]
