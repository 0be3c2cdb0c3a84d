"""Review of issue 6 (durable ingest): secrets in what the service says about its store
(errors, logs, /readyz). Each xfail is a confirmed bug."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.redis_server import RedisServer
from helpers import T0, decode, ev
from redis.asyncio import Redis

from callfloor.config import StoreConfig
from callfloor.ingest.source import Batch
from callfloor.store.base import StoreError
from callfloor.store.redis import RedisStore

PASSWORD = "s3cret-review-pw"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path) as running:
        yield running


async def test_a_query_password_never_shows_in_a_store_error(redis_server: RedisServer) -> None:
    """A password given as ?password= (which redis-py honours) is not shown in the
    error of an append that fails because Redis is down."""
    plain = Redis.from_url(redis_server.url)
    await plain.config_set("requirepass", PASSWORD)
    await plain.aclose()
    url = f"redis://{redis_server.host}:{redis_server.port}/0?password={PASSWORD}"
    store = RedisStore(StoreConfig(url=url, kind="redis"))
    await store.open()  # the password form works: the server requires it
    try:
        redis_server.kill()
        event = decode(ev("call_queued", T0, call_id="c0", queue="q", id="e0"))
        with pytest.raises(StoreError) as failed:
            await store.append([Batch([event])], T0)
    finally:
        await store.close()
    assert PASSWORD not in str(failed.value)
