"""Amazon Connect records posted to a feed's own route: ``POST /api/v1/feeds/<name>``."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from helpers import config
from live import NDJSON, FakeClock, get

from callfloor.service import FloorService
from callfloor.service.sources import configured_sources

T = 1_795_300_000.0  # tests.helpers.T0: the service clock
QUEUE = {"queueArn": "arn:aws:connect:r:1:instance/i/queue/sales"}


def contact(kind: str, eid: str, **detail: Any) -> dict[str, Any]:
    """An EventBridge "Amazon Connect Contact Event" for contact ``k1``."""
    return {
        "version": "0",
        "id": eid,
        "detail-type": "Amazon Connect Contact Event",
        "source": "aws.connect",
        "time": "2026-11-21T22:20:00Z",
        "detail": {
            "eventType": kind,
            "contactId": "k1",
            "channel": "VOICE",
            "initiationMethod": "INBOUND",
            **detail,
        },
    }


def body(*records: dict[str, Any] | str) -> bytes:
    return b"".join((r if isinstance(r, str) else json.dumps(r)).encode() + b"\n" for r in records)


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[tuple[FloorService, str]]:
    cfg = config({"sources": [{"kind": "connect", "ingest": True}]})
    service = FloorService(cfg, clock=FakeClock(), host="127.0.0.1", port=0, tick_s=0.01)
    task = asyncio.create_task(service.run(configured_sources(cfg, service)))
    try:
        async with asyncio.timeout(5):
            await service.started.wait()
        yield service, f"http://127.0.0.1:{service.bound_port}"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def post(http: aiohttp.ClientSession, url: str, data: bytes) -> tuple[int, Any]:
    async with http.post(url, data=data, headers=NDJSON) as resp:
        return resp.status, await resp.json()


async def test_posted_records_are_mapped_applied_and_a_resend_is_a_duplicate() -> None:
    """A QUEUED and an abandoning DISCONNECTED posted: the call is on the floor; the same
    body again is answered as duplicates (the records' own ids)."""
    queued = {**QUEUE, "enqueueTimestamp": "2026-11-21T22:20:00Z"}
    records = body(
        contact("INITIATED", "e0"),
        contact("QUEUED", "e1", queueInfo=queued),
        contact(
            "DISCONNECTED",
            "e2",
            queueInfo=queued,
            disconnectTimestamp="2026-11-21T22:20:30Z",
            disconnectReason="CUSTOMER_DISCONNECT",
        ),
    )
    async with serving() as (service, base), aiohttp.ClientSession() as http:
        url = f"{base}/api/v1/feeds/connect"
        status, reply = await post(http, url, records)
        assert status == 202 and reply["accepted"] == 2, reply
        status, again = await post(http, url, records)
        assert status == 202 and again["duplicates_total"] == 2, again
        await asyncio.sleep(0.05)
        _, doc = await get(http, base, "/api/v1/snapshot")
    window = doc["queues"]["sales"]["windows"]["60m"]
    assert (window["offered"], window["abandoned"]) == (1, 1)
    counts = service.stats.source_counts
    assert counts.received_total[("connect", "connect")] == 6
    assert counts.skipped_total[("connect", "connect")] == 2


async def test_a_record_that_is_not_json_is_listed_with_its_line() -> None:
    """A broken line is rejected by index (its line in the body, from 0); the rest maps."""
    queued = {**QUEUE, "enqueueTimestamp": "2026-11-21T22:20:00Z"}
    async with serving() as (_service, base), aiohttp.ClientSession() as http:
        status, reply = await post(
            http,
            f"{base}/api/v1/feeds/connect",
            body("{not json", contact("QUEUED", "e1", queueInfo=queued)),
        )
    assert status == 202 and reply["accepted"] == 1
    assert [(r["index"], r["reason"]) for r in reply["rejected"]] == [(0, "invalid_json")]


async def test_the_feed_route_takes_ndjson_only_and_exists_only_when_configured() -> None:
    """Another Content-Type is a 415; a service without the feed has no such route."""
    async with serving() as (_service, base), aiohttp.ClientSession() as http:
        async with http.post(
            f"{base}/api/v1/feeds/connect", data=b"x", headers={"Content-Type": "text/plain"}
        ) as resp:
            assert resp.status == 415
        async with http.post(f"{base}/api/v1/feeds/other", data=b"{}", headers=NDJSON) as resp:
            assert resp.status == 404
