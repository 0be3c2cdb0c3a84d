"""A queue or source naming a site that [sites] lacks is warned about at start-up."""

from __future__ import annotations

import logging

import pytest

from callfloor.config import parse_config
from callfloor.service.commands import log_config_warnings, unknown_site_warnings


def test_a_queue_on_an_unknown_site_is_warned_about_with_file_key_and_zone() -> None:
    """The warning names the file, the key and the time zone its days use (UTC)."""
    cfg = parse_config(
        {"sites": {"ldn": {"timezone": "Europe/London"}}, "queues": {"sales": {"site": "nyc"}}},
        "floor.toml",
    )
    assert unknown_site_warnings(cfg) == [
        "floor.toml: queues.sales.site: site 'nyc' is not in [sites]: its days and intervals "
        "use the time zone UTC (add [sites.nyc] with its timezone if that is not meant)"
    ]


def test_known_sites_and_sources_sites_are_checked_too(caplog: pytest.LogCaptureFixture) -> None:
    """Configured sites give no warning; a source's unknown site is logged at start-up."""
    cfg = parse_config(
        {
            "sites": {"ldn": {"timezone": "Europe/London"}},
            "queues": {"sales": {"site": "ldn"}},
            "sources": [{"kind": "queue_log", "path": "/x", "site": "pbx"}],
        },
        "floor.toml",
    )
    with caplog.at_level(logging.WARNING, logger="callfloor"):
        log_config_warnings(cfg)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "sources[0].site: site 'pbx'" in lines[0]
