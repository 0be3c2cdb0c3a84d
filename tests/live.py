"""Helpers for tests of the live service: a hand-moved clock, a running service, HTTP posts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import aiohttp
import msgspec
from helpers import T0, config

from callfloor.config import Config
from callfloor.service import FloorService

NDJSON = {"Content-Type": "application/x-ndjson"}


class FakeClock:
    """A wall clock the test moves by hand."""

    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@asynccontextmanager
async def running(
    cfg: Config | None = None, clock: FakeClock | None = None, **kwargs: Any
) -> AsyncIterator[tuple[FloorService, str]]:
    """A service on a free port (tick every 10 ms), stopped on exit; yields it and its URL."""
    kwargs.setdefault("tick_s", 0.01)
    service = FloorService(
        cfg or config(), clock=clock or FakeClock(), host="127.0.0.1", port=0, **kwargs
    )
    async with serving(service) as url:
        yield service, url


@asynccontextmanager
async def serving(service: FloorService) -> AsyncIterator[str]:
    """Run a service built by the caller until the block ends; yields its URL."""
    task = asyncio.create_task(service.run())
    started = asyncio.create_task(service.started.wait())
    await asyncio.wait([task, started], timeout=5, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # raise what stopped it
    try:
        yield f"http://127.0.0.1:{service.bound_port}"
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


def ndjson(*events: dict[str, Any]) -> bytes:
    """Events as an NDJSON body."""
    return b"".join(msgspec.json.encode(e) + b"\n" for e in events)


async def post(
    http: aiohttp.ClientSession, base: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    """POST a body to the ingest route (NDJSON unless told); the status and the JSON answer."""
    async with http.post(f"{base}/api/v1/events", data=body, headers=headers or NDJSON) as resp:
        return resp.status, await resp.json()


async def get(http: aiohttp.ClientSession, base: str, path: str) -> tuple[int, Any]:
    """GET a JSON route; the status and the decoded answer."""
    async with http.get(base + path) as resp:
        return resp.status, await resp.json()
