"""Board streams, sessions and the board views over real HTTP (no browser)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from helpers import T0, config, ev
from live import FakeClock, ndjson, post, running

from callfloor.processors.views import NamePolicy
from callfloor.service import FloorService
from callfloor.web.boards import BoardHub
from callfloor.web.sessions import SessionKeys

LATE = T0 - 30
READ = "read-token-0123456789abcdef"
WRITE = "write-token-0123456789abcdef"
SH = {"sites": {"sh": {"timezone": "Asia/Shanghai", "interval_minutes": 30}}}


def _cfg(**http: Any) -> Any:
    data: dict[str, Any] = {
        **SH,
        "queues": {"sales": {"site": "sh"}, "support": {"site": "sh", "sl_target": 0.9}},
    }
    if http:
        data["http"] = http
    return config(data)


async def _events(resp: aiohttp.ClientResponse, n: int) -> list[tuple[str | None, str, Any]]:
    """The next ``n`` SSE events of a stream: (id, event, data)."""
    out: list[tuple[str | None, str, Any]] = []
    event_id, name, data = None, "message", ""
    while len(out) < n:
        line = (await asyncio.wait_for(resp.content.readline(), 10)).decode().rstrip("\n")
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and data:
            out.append((event_id, name, json.loads(data)))
            event_id, name, data = None, "message", ""
    return out


async def test_the_wallboard_stream_opens_with_the_sites_view_and_pushes_changes() -> None:
    """The stream's first event is the site's wallboard; a call queued later is pushed."""
    clock = FakeClock()
    async with (
        running(_cfg(), clock=clock) as (service, base),
        aiohttp.ClientSession() as http,
    ):
        await post(http, base, ndjson(ev("call_queued", LATE, call_id="c1", queue="sales")))
        await service.next_tick()
        async with http.get(f"{base}/api/v1/wallboard/stream?site=sh") as resp:
            assert resp.headers["Content-Type"] == "text/event-stream"
            [(first_id, name, first)] = await _events(resp, 1)
            assert name == "wallboard" and first_id is not None
            view = first["view"]
            assert [t["name"] for t in view["tiles"]] == ["sales", "support"]
            assert view["tiles"][0]["waiting"] == 1
            assert view["tiles"][0]["waiting_since"] == LATE
            assert view["clock"]["timezone"] == "Asia/Shanghai"
            # The acknowledgement route exists: the supervisor page may draw its button.
            assert first["sites"] == ["sh"] and first["acknowledge"] is True
            clock.t = T0 + 5
            await post(http, base, ndjson(ev("call_queued", T0 + 1, call_id="c2", queue="sales")))
            while True:
                [(_, _, pushed)] = await _events(resp, 1)
                if pushed["view"]["tiles"][0]["waiting"] == 2:
                    break


async def test_the_support_tile_carries_its_thresholds_and_where_they_come_from() -> None:
    """A tile's bands name the threshold's value and its source (the queue's target)."""
    async with running(_cfg()) as (service, _):
        await service.next_tick()
        boards = service.view.wallboards({"sh"})
        support = next(t for t in boards["sh"].tiles if t.name == "support")
        sl = next(b for b in support.thresholds if b.metric == "service_level")
        assert sl.target == 0.9 and sl.warn is not None
        assert (sl.warn.op, sl.warn.value) == ("<", 0.9)
        assert sl.warn.source == "sl_target of [queues.support]"
        # The default sl_low rule is at the target itself: no red band beyond amber; the
        # default longest_wait_high rule (twice the threshold) is the wait's red band.
        assert sl.red is None
        wait = next(b for b in support.thresholds if b.metric == "longest_wait_s")
        assert wait.red is not None and wait.red.source == "default rule longest_wait_high"
        assert (wait.red.op, wait.red.value) == (">", 2 * wait.warn.value)  # type: ignore[union-attr]
        assert service.view.tile_thresholds("support") is not None
        assert service.view.tile_thresholds("nope") is None


async def test_a_reconnection_with_the_last_event_id_is_not_sent_the_same_view() -> None:
    """Last-Event-ID of the current push: the stream sends nothing until the next change;
    an unknown or older id gets the current view at once."""
    clock = FakeClock()
    async with (
        running(_cfg(), clock=clock) as (service, base),
        aiohttp.ClientSession() as http,
    ):
        await service.next_tick()
        async with http.get(f"{base}/api/v1/wallboard/stream?site=sh") as resp:
            [(current, _, _)] = await _events(resp, 1)
        headers = {"Last-Event-ID": str(current)}
        async with http.get(f"{base}/api/v1/wallboard/stream?site=sh", headers=headers) as resp:
            clock.t = T0 + 3  # the clock moves: a new push
            [(pushed, _, _)] = await _events(resp, 1)
            assert pushed != current
        async with http.get(
            f"{base}/api/v1/wallboard/stream?site=sh", headers={"Last-Event-ID": "old-1"}
        ) as resp:
            [(again, _, _)] = await _events(resp, 1)
            assert again is not None


async def test_one_encode_serves_every_subscriber_of_a_site() -> None:
    """Ten subscribers of one site are handed the very same bytes object, built once; with
    no subscriber nothing is built at all."""
    service = FloorService(_cfg(), clock=FakeClock())
    service.proc.tick(T0)
    hub = BoardHub(service)
    assert not hub._due()
    listeners = [hub.subscribe("wallboard", "sh", None) for _ in range(10)]
    assert hub._due()
    hub.build()
    frames = [listener.frame for listener in listeners]
    assert all(f is not None and f[1] is frames[0][1] for f in frames)  # type: ignore[index]
    assert hub.stats.builds == 1 and hub.stats.pushes["wallboard"] == 10
    hub.build()  # nothing moved: the same view is not pushed again
    assert hub.stats.pushes["wallboard"] == 10
    for listener in listeners:
        hub.unsubscribe("wallboard", "sh", None, listener)
    assert not hub.channels and not hub._due()


async def test_the_supervisor_stream_withholds_names_beyond_loopback_without_read_tokens() -> None:
    """The supervisor view takes its name policy from the request: a loopback reader sees
    the display name, the view built with HIDE has none."""
    async with running(_cfg()) as (service, base), aiohttp.ClientSession() as http:
        body = ndjson(
            ev(
                "agent_state",
                LATE,
                agent="a1",
                state="available",
                name="Ann Lee",
                site="sh",
                team="blue",
                queues=["sales"],
            )
        )
        await post(http, base, body)
        await service.next_tick()
        async with http.get(f"{base}/api/v1/supervisor/stream?site=sh") as resp:
            [(_, name, data)] = await _events(resp, 1)
        assert name == "supervisor"
        [row] = data["view"]["agents"]
        assert (row["agent"], row["display_name"], row["team"]) == ("a1", "Ann Lee", "blue")
        hidden = service.view.supervisor({"sh"}, names=NamePolicy.HIDE)
        assert hidden["sh"].agents[0].display_name is None


async def test_the_document_says_each_sites_zone_date_and_interval() -> None:
    """Sites in the document carry timezone, local_date, day_start, interval_start."""
    async with (
        running(_cfg(), clock=FakeClock(1795300000.0)) as (service, base),
        aiohttp.ClientSession() as http,
    ):
        await post(http, base, ndjson(ev("call_queued", 1795299000.0, call_id="c", queue="sales")))
        await service.next_tick()
        async with http.get(f"{base}/api/v1/snapshot") as resp:
            doc = await resp.json()
    site = doc["sites"]["sh"]
    # 1795299999 is 2026-11-21 22:26:39 UTC, 2026-11-22 06:26:39 in Shanghai.
    assert site["timezone"] == "Asia/Shanghai"
    assert site["local_date"] == "2026-11-22"
    assert site["interval_minutes"] == 30
    assert site["interval_start"] == 1795298400.0  # 06:00 local
    assert site["day_start"] == 1795276800.0  # 00:00 local = 16:00 UTC the day before
    assert list(site)[:2] == ["windows", "live"]  # SPEC §7 keys first, as they were


# --------------------------------------------------------------------------- sessions


async def test_a_token_exchange_sets_httponly_strict_cookies_and_reads_work() -> None:
    """With read tokens the stream refuses a request without credentials, and accepts the
    cookie the read token was exchanged for; the token is in no cookie."""
    cfg = _cfg(read_tokens=[READ], write_tokens=[WRITE])
    async with running(cfg) as (service, base):
        await service.next_tick()
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(f"{base}/api/v1/wallboard/stream?site=sh") as resp:
                assert resp.status == 401
            async with http.post(f"{base}/api/v1/session", json={"token": READ}) as resp:
                assert resp.status == 200
                answer = await resp.json()
                raw = resp.headers.getall("Set-Cookie")
            assert list(answer["kinds"]) == ["read"]
            [cookie] = raw
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and READ not in cookie
            async with http.get(f"{base}/api/v1/wallboard/stream?site=sh") as resp:
                assert resp.status == 200
                [(_, name, _)] = await _events(resp, 1)
                assert name == "wallboard"
            async with http.get(f"{base}/api/v1/snapshot") as resp:
                assert resp.status == 200


async def test_a_wrong_token_or_a_form_post_gets_no_session() -> None:
    """A token of no kind is a 401; a body that is not JSON (a cross-site form) a 415."""
    async with running(_cfg(read_tokens=[READ])) as (_, base), aiohttp.ClientSession() as http:
        async with http.post(f"{base}/api/v1/session", json={"token": "x" * 20}) as resp:
            assert resp.status == 401 and not resp.headers.getall("Set-Cookie", [])
        async with http.post(f"{base}/api/v1/session", data={"token": READ}) as resp:
            assert resp.status == 415


async def test_a_write_through_a_session_needs_its_csrf_token_and_the_same_origin() -> None:
    """A write session's POST without X-CSRF-Token is a 403; with it, it is served; a
    foreign Origin is a 403 whatever the token."""
    cfg = _cfg(read_tokens=[READ], write_tokens=[WRITE])
    body = ndjson(ev("call_queued", LATE, call_id="c1", queue="sales"))
    headers = {"Content-Type": "application/x-ndjson"}
    jar = aiohttp.CookieJar(unsafe=True)
    async with running(cfg) as (_, base), aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.post(f"{base}/api/v1/session", json={"token": WRITE}) as resp:
            csrf = (await resp.json())["kinds"]["write"]["csrf"]
        async with http.post(f"{base}/api/v1/events", data=body, headers=headers) as resp:
            assert resp.status == 403 and (await resp.json())["need"] == "csrf_token"
        with_csrf = {**headers, "X-CSRF-Token": csrf}
        foreign = {**with_csrf, "Origin": "http://evil.example"}
        async with http.post(f"{base}/api/v1/events", data=body, headers=foreign) as resp:
            assert resp.status == 403 and (await resp.json())["need"] == "same_origin"
        async with http.post(f"{base}/api/v1/events", data=body, headers=with_csrf) as resp:
            assert resp.status == 202


async def test_a_signed_link_is_exchanged_for_a_cookie_and_leaves_the_address() -> None:
    """A link made with the read token opens the page once for a cookie; the answer sends
    the browser on to the URL without the link; a forged link is a 401."""
    async with running(_cfg(read_tokens=[READ])) as (_, base):
        auth = {"Authorization": f"Bearer {READ}"}
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.post(
                f"{base}/api/v1/session/links",
                json={"path": "/wallboard?site=sh", "ttl_s": 3600},
                headers=auth,
            ) as resp:
                url = (await resp.json())["url"]
            assert url.startswith("/wallboard?site=sh&access=")
            async with http.get(base + url, allow_redirects=False) as resp:
                assert resp.status == 200
                page = await resp.text()
                assert 'content="/wallboard?site=sh"' in page and "access=" not in page
                assert resp.headers["Referrer-Policy"] == "no-referrer"
            async with http.get(f"{base}/wallboard?site=sh", allow_redirects=False) as resp:
                assert resp.status == 200  # the cookie now
            async with http.get(base + url[:-3] + "AAA", allow_redirects=False) as resp:
                assert resp.status == 401


def test_sessions_end_with_their_token_and_their_expiry() -> None:
    """A cookie verifies under the token it was issued for, not once that token is gone
    from the configuration, and not after it expired; a link is not a cookie."""
    now = [1000.0]
    keys = SessionKeys({"read": [READ]}, clock=lambda: now[0])
    value, until = keys.issue("read", READ, 60)
    assert until == 1060 and keys.verify("read", value) is not None
    assert keys.verify("write", value) is None
    assert SessionKeys({"read": ["another-token-0123456789"]}).verify("read", value) is None
    assert keys.verify_link("read", value) is None
    now[0] = 1061
    assert keys.verify("read", value) is None


@pytest.mark.parametrize("path", ["/", "/wallboard", "/supervisor"])
async def test_pages_without_a_session_go_to_the_login_page(path: str) -> None:
    """With read tokens a page asked for without credentials redirects to /login?next=."""
    async with running(_cfg(read_tokens=[READ])) as (_, base), aiohttp.ClientSession() as http:
        async with http.get(base + path, allow_redirects=False) as resp:
            assert resp.status == 303
            assert resp.headers["Location"].startswith("/login?next=")
        async with http.get(f"{base}/login") as resp:
            assert resp.status == 200 and "text/html" in resp.headers["Content-Type"]
            assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
