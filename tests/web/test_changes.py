"""/api/v1/changes over real HTTP: the change bus's first subscriber."""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
import pytest
from helpers import T0, ev
from live import get, ndjson, post, running


async def _next_data(stream: aiohttp.ClientResponse) -> dict[str, object]:
    line = b""
    while not line.startswith(b"data: "):
        line = await asyncio.wait_for(stream.content.readline(), 5)
    data: dict[str, object] = json.loads(line[len(b"data: ") :])
    return data


async def test_changes_stream_pushes_what_an_event_changed() -> None:
    """The stream sends a Server-Sent Event naming the agent and site an event touched."""
    body = ndjson(ev("agent_state", T0 - 5, agent="a1", state="available", queues=["sales"]))
    async with (
        running() as (_, base),
        aiohttp.ClientSession() as http,
        http.get(f"{base}/api/v1/changes") as stream,
    ):
        assert stream.headers["Content-Type"] == "text/event-stream"
        await post(http, base, body)
        message = await _next_data(stream)
    assert message["agents"] == ["a1"] and message["sites"] == ["default"]


async def test_a_client_leaving_the_stream_is_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A client that closes its change stream is unsubscribed and nothing is logged as an error."""
    with caplog.at_level(logging.INFO):
        async with running() as (service, base):
            async with aiohttp.ClientSession() as http, http.get(f"{base}/api/v1/changes") as s:
                assert await s.content.readline() == b": connected\n"
            assert len(service.bus) == 1
            async with aiohttp.ClientSession() as http:
                for i in range(3):  # changes to write to the stream that is gone
                    await post(
                        http,
                        base,
                        ndjson(ev("agent_state", T0 - 5, agent=f"a{i}", state="available")),
                    )
                    await service.next_tick()
            for _ in range(100):
                if not len(service.bus):
                    break
                await asyncio.sleep(0.01)
            assert len(service.bus) == 0
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_stream_of_a_stopping_service_ends() -> None:
    """When the service stops, an open stream ends (the client sees the end of the body)."""
    async with (
        running() as (service, base),
        aiohttp.ClientSession() as http,
        http.get(f"{base}/api/v1/changes") as stream,
    ):
        await stream.content.readline()
        service.bus.close()
        rest = await asyncio.wait_for(stream.content.read(), 3)
    assert rest == b"\n"


async def test_readyz_is_ready_while_streams_are_open() -> None:
    """An open change stream does not hold up other requests."""
    async with (
        running() as (_, base),
        aiohttp.ClientSession() as http,
        http.get(f"{base}/api/v1/changes") as stream,
    ):
        await stream.content.readline()
        assert (await get(http, base, "/readyz"))[0] == 200
