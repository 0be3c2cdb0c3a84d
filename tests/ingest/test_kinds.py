"""The source kit's registry: each kind reads its own keys, and the service builds it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from callfloor.config import ConfigError, parse_config
from callfloor.ingest.ami import AmiOptions, AmiSource
from callfloor.ingest.kinds import KINDS
from callfloor.ingest.tail import TailOptions, TailSource
from callfloor.service import FloorService
from callfloor.service.sources import configured_sources

MINIMAL: dict[str, dict[str, Any]] = {
    "mqtt": {},
    "queue_log": {"path": "/var/log/asterisk/queue_log"},
    "queue_log_csv": {"path": "/tmp/queue_log.csv", "timezone": "Europe/London"},
    "connect": {"path": "/tmp/agent-events.ndjson"},
    "ami": {"username": "callfloor", "secret": "x"},
}


def test_every_registered_kind_has_a_minimal_example() -> None:
    """The examples below cover the registry (a new kind needs one)."""
    assert set(MINIMAL) == set(KINDS)


@pytest.mark.parametrize("kind", sorted(MINIMAL))
def test_each_kind_loads_from_its_minimal_table(kind: str) -> None:
    """A minimal ``[[sources]]`` table of each kind is a valid configuration."""
    cfg = parse_config({"sources": [{"kind": kind, **MINIMAL[kind]}]}, "<test>")
    assert cfg.sources[0].kind == kind and cfg.sources[0].name == kind


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"kind": "queue_log", "path": "/x", "poll_interval": "2h"}, "sources[0].poll_interval"),
        ({"kind": "queue_log", "path": "/x", "start": "middle"}, "sources[0].start"),
        ({"kind": "queue_log", "path": "/x", "max_line_bytes": 100}, "sources[0].max_line_bytes"),
        ({"kind": "connect", "path": "/x", "max_line_bytes": "1GB"}, "sources[0].max_line_bytes"),
        (
            {"kind": "queue_log", "path": "/x", "max_line_bytes": "lots"},
            "sources[0].max_line_bytes",
        ),
        ({"kind": "queue_log_csv", "path": "/x", "timezone": "Mars/Base"}, "sources[0].timezone"),
        ({"kind": "queue_log", "path": "/x", "topics": ["a"]}, "sources[0].topics"),
        ({"kind": "ami", "username": "u"}, "sources[0].secret"),
        ({"kind": "ami", "username": "u", "secret": "s", "url": "http://x"}, "sources[0].url"),
        ({"kind": "ami", "username": "u", "secret": "s", "auth": "none"}, "sources[0].auth"),
        ({"kind": "connect"}, "sources[0].path"),
        ({"kind": "connect", "ingest": True, "path": "/x"}, "sources[0].path"),
        ({"kind": "connect", "ingest": False}, "sources[0].ingest"),
        ({"kind": "connect", "ingest": True, "poll_interval": "1s"}, "sources[0].poll_interval"),
    ],
)
def test_a_kinds_own_keys_are_checked_with_file_and_key(
    table: dict[str, Any], problem: str
) -> None:
    """A wrong key of a kind is an error naming the file and the key."""
    with pytest.raises(ConfigError, match=re.escape(f"<test>: {problem}")):
        parse_config({"sources": [table]}, "<test>")


def test_max_line_bytes_is_a_size_with_a_1_mib_default() -> None:
    """``max_line_bytes`` takes a size ("64KiB"); without it a file source holds 1 MiB."""
    cfg = parse_config(
        {
            "sources": [
                {"kind": "connect", "path": "/x", "max_line_bytes": "64KiB"},
                {"kind": "queue_log", "path": "/y"},
            ]
        },
        "<test>",
    )
    assert [s.options.max_line_bytes for s in cfg.sources] == [65536, 1 << 20]  # type: ignore[union-attr]


def test_the_service_builds_each_configured_source_from_the_registry(tmp_path: Path) -> None:
    """``configured_sources`` gives one source per entry, of its kind's class."""
    cfg = parse_config(
        {
            "sources": [
                {"kind": "queue_log", "path": str(tmp_path / "queue_log"), "poll_interval": "5ms"},
                {"kind": "ami", "username": "u", "secret": "s", "url": "tcp://127.0.0.1:5039"},
            ]
        },
        "<test>",
    )
    service = FloorService(cfg, host="127.0.0.1", port=0)
    tail, ami = configured_sources(cfg, service)
    assert isinstance(tail, TailSource) and isinstance(tail.options, TailOptions)
    assert tail.options.poll_s == pytest.approx(0.005)
    assert isinstance(ami, AmiSource) and ami.options == AmiOptions("127.0.0.1", 5039)
    counts = service.stats.source_counts
    assert counts.received_total == {("queue_log", "queue_log"): 0, ("ami", "ami"): 0}
