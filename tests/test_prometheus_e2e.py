"""A real Prometheus server scrapes the live service and answers PromQL over its series."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from helpers import config

from callfloor.service import FloorService

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None, reason="prometheus not installed (make test installs it)"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def service() -> AsyncIterator[FloorService]:
    svc = FloorService(config(), host="127.0.0.1", port=0, watermark_delay_s=0.0)
    task = asyncio.create_task(svc.run())
    await asyncio.wait_for(svc.started.wait(), 5)
    yield svc
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.fixture
def prometheus(tmp_path: Path, service: FloorService) -> Iterator[str]:
    port = _free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n  - job_name: callfloor\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{service.bound_port}']\n"
    )
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


async def _query(http: aiohttp.ClientSession, base: str, promql: str) -> list[dict]:
    try:
        async with http.get(f"{base}/api/v1/query", params={"query": promql}) as resp:
            body = json.loads(await resp.text())
    except aiohttp.ClientError:
        return []
    return list(body.get("data", {}).get("result", []))


async def test_prometheus_scrapes_counters_and_histograms(
    service: FloorService, prometheus: str
) -> None:
    """Prometheus scrapes /metrics (up == 1) and sees the offered counter and wait buckets."""
    now = time.time()
    body = "\n".join(
        json.dumps(e)
        for e in (
            {"type": "call_queued", "ts": now - 3, "call_id": "c1", "queue": "sales"},
            {"type": "call_queued", "ts": now - 2, "call_id": "c2", "queue": "sales"},
            {"type": "call_answered", "ts": now - 1, "call_id": "c1", "agent": "a1"},
        )
    )
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"http://127.0.0.1:{service.bound_port}/api/v1/events", data=body
        ) as resp:
            assert resp.status == 202
        deadline = time.monotonic() + 30
        offered: list[dict] = []
        while time.monotonic() < deadline:
            offered = await _query(http, prometheus, 'callfloor_queue_offered_total{queue="sales"}')
            if offered and offered[0]["value"][1] == "2":
                break
            await asyncio.sleep(0.5)
        assert offered and offered[0]["value"][1] == "2"
        up = await _query(http, prometheus, 'up{job="callfloor"}')
        assert up[0]["value"][1] == "1"
        bucket = await _query(
            http,
            prometheus,
            'callfloor_queue_wait_seconds_bucket{queue="sales",outcome="answered",le="20.0"}',
        )
        assert bucket and bucket[0]["value"][1] == "1"
