"""Review of 0f8bd48/d6ea604: /readyz says starting until every configured source has been
up once."""

from __future__ import annotations

import pytest
from helpers import config

from callfloor.config import ConfigError


def test_a_source_may_not_take_the_http_ingest_name() -> None:
    """A [[sources]] entry named "http" is refused: it would share the built-in HTTP
    source's status, which is up at once, and /readyz would say ready before it subscribed."""
    with pytest.raises(ConfigError, match="built-in HTTP ingest"):
        config({"sources": [{"kind": "mqtt", "name": "http", "url": "mqtt://127.0.0.1:1"}]})
