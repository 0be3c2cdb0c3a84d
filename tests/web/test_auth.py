"""Bearer tokens against a real server on loopback: writes, reads, open routes, counting."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from helpers import T0, config, ev
from live import get, ndjson, running

LATE = T0 - 30
WRITE = ("w-token-1", "w-token-2")
READ = ("r-token",)
EVENT = ndjson(ev("call_queued", LATE, call_id="c1", queue="q"))


def _tokens(write: tuple[str, ...] = (), read: tuple[str, ...] = ()) -> Any:
    return config({"http": {"write_tokens": list(write), "read_tokens": list(read)}})


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _post(
    http: aiohttp.ClientSession, base: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    sent = {"Content-Type": "application/x-ndjson", **(headers or {})}
    async with http.post(f"{base}/api/v1/events", data=EVENT, headers=sent) as resp:
        return resp.status, await resp.json(), dict(resp.headers)


async def _get(
    http: aiohttp.ClientSession, base: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, bytes, dict[str, str]]:
    async with http.get(base + path, headers=headers or {}) as resp:
        return resp.status, await resp.read(), dict(resp.headers)


async def test_write_without_token_is_401_naming_write_tokens() -> None:
    """A POST without Authorization is a 401 naming [http] write_tokens, and changes nothing."""
    async with running(_tokens(WRITE)) as (service, base), aiohttp.ClientSession() as http:
        status, reply, headers = await _post(http, base)
        await service.next_tick()
        assert service.view.queue_names() == []
    assert status == 401
    assert "missing bearer token" in reply["error"]
    assert "[http] write_tokens" in reply["error"]
    assert headers["WWW-Authenticate"] == 'Bearer realm="callfloor", scope="write"'


async def test_write_with_wrong_token_is_401_invalid_token() -> None:
    """A POST with a token that is not configured is a 401 with error="invalid_token"."""
    async with running(_tokens(WRITE)) as (service, base), aiohttp.ClientSession() as http:
        status, reply, headers = await _post(http, base, _auth("w-token-3"))
        await service.next_tick()
        assert service.view.queue_names() == []
    assert status == 401
    assert reply["error"].startswith("wrong bearer token")
    assert 'error="invalid_token"' in headers["WWW-Authenticate"]


async def test_write_with_another_scheme_is_401_naming_it() -> None:
    """An Authorization header that is not Bearer is a 401 naming the scheme it used."""
    async with running(_tokens(WRITE)) as (_, base), aiohttp.ClientSession() as http:
        status, reply, headers = await _post(http, base, {"Authorization": "Basic dTpw"})
    assert status == 401
    assert "'Basic', not Bearer" in reply["error"]
    assert 'error="invalid_request"' in headers["WWW-Authenticate"]


async def test_a_token_sent_without_bearer_is_never_echoed() -> None:
    """A bare token in the Authorization header (no scheme) is refused without showing it."""
    async with running(_tokens(WRITE)) as (_, base), aiohttp.ClientSession() as http:
        status, reply, _ = await _post(http, base, {"Authorization": "s3cr3t-t0ken-value"})
    assert status == 401
    assert "s3cr3t" not in reply["error"]
    assert "not 'Bearer <token>'" in reply["error"]


@pytest.mark.parametrize("token", WRITE)
async def test_write_with_any_configured_token_is_accepted(token: str) -> None:
    """A POST with any one of the write tokens is a 202 and its event is applied."""
    async with running(_tokens(WRITE)) as (service, base), aiohttp.ClientSession() as http:
        status, reply, _ = await _post(http, base, _auth(token))
        await service.next_tick()
        assert service.view.queue_names() == ["q"]
    assert (status, reply["accepted"]) == (202, 1)


async def test_bearer_scheme_is_case_insensitive() -> None:
    """`bearer <token>` (lower case) is accepted like `Bearer <token>`."""
    async with running(_tokens(WRITE)) as (_, base), aiohttp.ClientSession() as http:
        status, _, _ = await _post(http, base, {"Authorization": f"bearer {WRITE[0]}"})
    assert status == 202


async def test_a_read_token_does_not_grant_writes() -> None:
    """A read token sent with a POST is a wrong write token: 401."""
    async with running(_tokens(WRITE, READ)) as (_, base), aiohttp.ClientSession() as http:
        status, _, _ = await _post(http, base, _auth(READ[0]))
    assert status == 401


async def test_a_refused_upload_closes_the_connection() -> None:
    """A 401 for a POST ends the connection, so the unread body is not taken in."""
    async with running(_tokens(WRITE)) as (_, base), aiohttp.ClientSession() as http:
        status, _, headers = await _post(http, base)
    assert status == 401
    assert headers.get("Connection", "").lower() == "close"


async def test_loopback_writes_need_no_token_when_none_is_configured() -> None:
    """Without write tokens, a POST from loopback without Authorization is a 202."""
    async with running(_tokens()) as (_, base), aiohttp.ClientSession() as http:
        status, reply, _ = await _post(http, base)
    assert (status, reply["accepted"]) == (202, 1)


READ_PATHS = [
    "/metrics",
    "/api/v1/snapshot",
    "/api/v1/queues",
    "/api/v1/agents",
    "/api/v1/violations",
    "/api/v1/no-such-route",
]


@pytest.mark.parametrize("path", READ_PATHS)
async def test_reads_without_token_are_401_when_read_tokens_are_set(path: str) -> None:
    """With read tokens, every GET but the probes (unknown paths too) is a 401 naming them."""
    async with running(_tokens(WRITE, READ)) as (_, base), aiohttp.ClientSession() as http:
        status, body, headers = await _get(http, base, path)
    assert status == 401
    assert b"[http] read_tokens" in body
    assert headers["WWW-Authenticate"] == 'Bearer realm="callfloor", scope="read"'


@pytest.mark.parametrize("path", READ_PATHS[:-1])
async def test_reads_with_the_read_token_are_served(path: str) -> None:
    """With the read token, every read route answers 200."""
    async with running(_tokens(WRITE, READ)) as (_, base), aiohttp.ClientSession() as http:
        status, _, _ = await _get(http, base, path, _auth(READ[0]))
    assert status == 200


async def test_reads_with_a_wrong_token_are_401() -> None:
    """A GET with a token that is not a read token (a write token included) is a 401."""
    async with running(_tokens(WRITE, READ)) as (_, base), aiohttp.ClientSession() as http:
        wrong, _, _ = await _get(http, base, "/api/v1/snapshot", _auth("nope"))
        write, _, _ = await _get(http, base, "/api/v1/snapshot", _auth(WRITE[0]))
    assert (wrong, write) == (401, 401)


async def test_the_change_stream_needs_the_read_token() -> None:
    """/api/v1/changes is a read: 401 without the token, a stream with it."""
    async with running(_tokens(WRITE, READ)) as (_, base), aiohttp.ClientSession() as http:
        async with http.get(base + "/api/v1/changes") as refused:
            assert refused.status == 401
        async with http.get(base + "/api/v1/changes", headers=_auth(READ[0])) as stream:
            assert stream.status == 200
            assert await stream.content.readline() == b": connected\n"


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_probes_stay_open_with_tokens(path: str) -> None:
    """Liveness and readiness need no token, whatever tokens are configured."""
    async with running(_tokens(WRITE, READ)) as (_, base), aiohttp.ClientSession() as http:
        status, _, _ = await _get(http, base, path)
    assert status == 200


async def test_reads_are_open_without_read_tokens() -> None:
    """Without read tokens a GET needs no Authorization, even with write tokens set."""
    async with running(_tokens(WRITE)) as (_, base), aiohttp.ClientSession() as http:
        status, _, _ = await _get(http, base, "/api/v1/snapshot")
    assert status == 200


async def test_refusals_are_counted_by_status() -> None:
    """Each 401 is counted in http_errors_total and shown in /metrics."""
    async with running(_tokens(WRITE, READ)) as (service, base), aiohttp.ClientSession() as http:
        await _post(http, base)
        await _get(http, base, "/api/v1/snapshot", _auth("nope"))
        _, exposition, _ = await _get(http, base, "/metrics", _auth(READ[0]))
    assert service.stats.http_errors_total == {"401": 2}
    assert b'callfloor_http_errors_total{code="401"} 2.0' in exposition


async def test_too_many_events_in_one_body_is_a_413_naming_the_limit() -> None:
    """A body with more events than max_request_events is a 413 and none of it is taken."""
    cfg = config({"limits": {"max_request_events": 3}})
    body = ndjson(*(ev("call_queued", LATE, call_id=f"c{i}", queue=f"q{i}") for i in range(4)))
    async with running(cfg) as (service, base), aiohttp.ClientSession() as http:
        async with http.post(
            f"{base}/api/v1/events", data=body, headers={"Content-Type": "application/x-ndjson"}
        ) as resp:
            status, reply = resp.status, await resp.json()
        await service.next_tick()
        assert service.view.queue_names() == []
    assert status == 413
    assert (reply["limit"], reply["max_events"]) == ("max_request_events", 3)
    assert "[limits] max_request_events = 3" in reply["error"]


async def test_invalid_lines_do_not_count_towards_max_request_events() -> None:
    """Only valid events count: two good and two bad lines are taken under a limit of three."""
    cfg = config({"limits": {"max_request_events": 3}})
    body = ndjson(*(ev("call_queued", LATE, call_id=f"c{i}", queue="q") for i in range(2)))
    async with (
        running(cfg) as (_, base),
        aiohttp.ClientSession() as http,
        http.post(
            f"{base}/api/v1/events",
            data=body + b"not json\nnot json\n",
            headers={"Content-Type": "application/x-ndjson"},
        ) as resp,
    ):
        status, reply = resp.status, await resp.json()
    assert (status, reply["accepted"], reply["rejected_total"]) == (202, 2, 2)


async def test_a_body_at_max_request_events_is_taken() -> None:
    """A body with exactly max_request_events events is accepted whole."""
    cfg = config({"limits": {"max_request_events": 3}})
    body = ndjson(*(ev("call_queued", LATE, call_id=f"c{i}", queue="q") for i in range(3)))
    async with (
        running(cfg) as (_, base),
        aiohttp.ClientSession() as http,
        http.post(
            f"{base}/api/v1/events", data=body, headers={"Content-Type": "application/x-ndjson"}
        ) as resp,
    ):
        status, reply = resp.status, await resp.json()
    assert (status, reply["accepted"]) == (202, 3)


async def test_loopback_readers_see_display_names_without_read_tokens() -> None:
    """Without read tokens a loopback reader gets the agents' display names."""
    event = ev("agent_state", LATE, agent="a1", state="available", name="Ann Lee", team="blue")
    async with running(_tokens()) as (service, base), aiohttp.ClientSession() as http:
        async with http.post(
            f"{base}/api/v1/events",
            data=ndjson(event),
            headers={"Content-Type": "application/x-ndjson"},
        ) as resp:
            assert resp.status == 202
        await service.next_tick()
        _, agents = await get(http, base, "/api/v1/agents")
    assert agents["agents"]["a1"]["display_name"] == "Ann Lee"
