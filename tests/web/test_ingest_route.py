"""POST /api/v1/events against a real server: hostile bodies, limits, duplicates, back-pressure."""

from __future__ import annotations

import aiohttp
import msgspec
from helpers import T0, config, ev
from live import FakeClock, get, ndjson, post, running

LATE = T0 - 30  # behind the watermark: applied in the round that receives it
AHEAD = T0 + 60  # ahead of the watermark: held until it passes


async def test_deep_nesting_alone_is_a_400_naming_the_problem() -> None:
    """A body nested deeper than the decoder allows is a 400 JSON answer, not a 5xx."""
    async with running() as (_, base), aiohttp.ClientSession() as http:
        status, reply = await post(http, base, b'{"type":"call_queued","x":' * 200_000)
    assert status == 400
    assert reply["rejected"][0]["reason"] == "invalid_json"
    assert "nested" in reply["rejected"][0]["message"]


async def test_deep_nesting_beside_good_events_keeps_them() -> None:
    """The good events of a body with a deeply nested item are applied; the item is rejected."""
    body = (
        ndjson(ev("call_queued", LATE, call_id="c1", queue="q"))
        + b'{"a":' * 100_000
        + b"\n"
        + ndjson(ev("call_queued", LATE, call_id="c2", queue="q"))
    )
    async with running() as (_, base), aiohttp.ClientSession() as http:
        status, reply = await post(http, base, body)
        _, queue = await get(http, base, "/api/v1/queues/q")
    assert status == 202
    assert (reply["accepted"], [r["index"] for r in reply["rejected"]]) == (2, [1])
    assert queue["live"]["waiting"] == 2


async def test_long_names_are_rejected_per_event() -> None:
    """An event whose queue name is longer than max_name_length is listed as name_too_long."""
    cfg = config({"limits": {"max_name_length": 16}})
    body = ndjson(
        ev("call_queued", LATE, call_id="c1", queue="q"),
        ev("call_queued", LATE, call_id="c2", queue="q" * 17),
    )
    async with running(cfg) as (service, base), aiohttp.ClientSession() as http:
        status, reply = await post(http, base, body)
    assert status == 202
    assert reply["accepted"] == 1
    assert [(r["index"], r["reason"], r["field"]) for r in reply["rejected"]] == [
        (1, "name_too_long", "queue")
    ]
    assert service.proc.view.queue_names() == ["q"]


async def test_queue_cap_is_reported_per_event() -> None:
    """Beyond max_queues, the event that would add a queue is listed as too_many_queues."""
    cfg = config({"limits": {"max_queues": 2}})
    body = ndjson(*(ev("call_queued", LATE, call_id=f"c{i}", queue=f"q{i}") for i in range(3)))
    async with running(cfg) as (_, base), aiohttp.ClientSession() as http:
        status, reply = await post(http, base, body)
    assert status == 202
    assert [(r["index"], r["reason"]) for r in reply["rejected"]] == [(2, "too_many_queues")]
    assert reply["accepted"] == 2


async def test_answer_lists_at_most_100_rejections_and_counts_the_rest() -> None:
    """A body of 5,000 invalid lines gets a 400 listing 100 of them and counting all 5,000."""
    async with running() as (_service, base), aiohttp.ClientSession() as http:
        status, reply = await post(http, base, b"not json\n" * 5000)
        _, doc = await get(http, base, "/api/v1/snapshot")
    assert status == 400
    assert len(reply["rejected"]) == 100
    assert reply["rejected_total"] == 5000
    assert doc["counters"]["rejected"] == 5000


async def test_backpressure_counts_held_events() -> None:
    """Held (future-dated) events count against max_pending_events: beyond it, 503 and not ready."""
    cfg = config({"limits": {"max_pending_events": 10}})
    first = ndjson(*(ev("call_queued", AHEAD, call_id=f"a{i}", queue="q") for i in range(8)))
    second = ndjson(*(ev("call_queued", AHEAD, call_id=f"b{i}", queue="q") for i in range(5)))
    async with running(cfg) as (service, base), aiohttp.ClientSession() as http:
        assert (await post(http, base, first))[0] == 202
        async with http.post(f"{base}/api/v1/events", data=second, headers=_ND) as resp:
            assert resp.status == 503
            assert resp.headers["Retry-After"]
            reply = await resp.json()
        ready, readiness = await get(http, base, "/readyz")
    assert "max_pending_events" in reply["error"]
    assert ready == 503 and readiness["pending_events"] == 8
    assert service.stats.dropped_events_total == 5


async def test_backpressure_clears_once_held_events_are_applied() -> None:
    """When the watermark passes the held events, /readyz is ready and posts are taken again."""
    cfg = config({"limits": {"max_pending_events": 4}})
    clock = FakeClock()
    async with running(cfg, clock) as (service, base), aiohttp.ClientSession() as http:
        held = ndjson(*(ev("call_queued", AHEAD, call_id=f"a{i}", queue="q") for i in range(4)))
        assert (await post(http, base, held))[0] == 202
        assert (await post(http, base, held))[0] == 503
        clock.t = AHEAD + 5
        await service.next_tick()
        assert (await get(http, base, "/readyz"))[0] == 200
        status, _ = await post(http, base, ndjson(ev("call_queued", AHEAD, call_id="z", queue="q")))
    assert status == 202


async def test_a_body_larger_than_the_backlog_is_413() -> None:
    """A body with more events than max_pending_events can never fit: 413 naming the limit."""
    cfg = config({"limits": {"max_pending_events": 3}})
    body = ndjson(*(ev("call_queued", LATE, call_id=f"c{i}", queue="q") for i in range(4)))
    async with running(cfg) as (_, base), aiohttp.ClientSession() as http:
        status, reply = await post(http, base, body)
    assert status == 413
    assert "max_pending_events" in reply["error"]


async def test_text_plain_post_is_415_naming_the_types_to_send() -> None:
    """A text/plain or form post (what a web page can send cross-site) is refused with 415."""
    body = ndjson(ev("call_queued", LATE, call_id="c1", queue="q"))
    async with running() as (service, base), aiohttp.ClientSession() as http:
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
            status, reply = await post(http, base, body, {"Content-Type": ctype})
            assert status == 415
            assert "application/x-ndjson" in reply["error"]
            assert "application/json" in reply["error"]
    assert service.proc.view.queue_names() == []


async def test_json_and_ndjson_content_types_are_accepted() -> None:
    """application/json (with a charset) and application/x-ndjson bodies are taken."""
    async with running() as (_, base), aiohttp.ClientSession() as http:
        one = msgspec.json.encode([ev("call_queued", LATE, call_id="c1", queue="q")])
        json_ct = {"Content-Type": "application/json; charset=utf-8"}
        assert (await post(http, base, one, json_ct))[0] == 202
        two = ndjson(ev("call_queued", LATE, call_id="c2", queue="q"))
        assert (await post(http, base, two))[0] == 202


async def test_reused_id_with_other_content_is_a_duplicate() -> None:
    """An event reusing an earlier event's id is reported as a duplicate, not as accepted."""
    first = ndjson(ev("call_queued", LATE, id="e1", call_id="c1", queue="q"))
    again = ndjson(ev("call_queued", LATE + 1, id="e1", call_id="c9", queue="other"))
    async with running() as (_, base), aiohttp.ClientSession() as http:
        await post(http, base, first)
        status, reply = await post(http, base, again)
    assert status == 202
    assert reply["accepted"] == 0
    assert reply["duplicates_total"] == 1
    assert reply["duplicates"] == [{"index": 0, "id": "e1"}]


async def test_duplicates_within_one_body_are_reported() -> None:
    """The second event with the same id in one body is a duplicate, held or applied."""
    for ts in (LATE, AHEAD):
        body = ndjson(
            ev("call_queued", ts, id="e1", call_id="c1", queue="q"),
            ev("call_queued", ts, id="e1", call_id="c2", queue="q"),
        )
        async with running() as (_, base), aiohttp.ClientSession() as http:
            status, reply = await post(http, base, body)
        assert status == 202
        assert (reply["accepted"], reply["duplicates_total"]) == (1, 1)
        assert reply["duplicates"][0]["index"] == 1


async def test_body_over_max_body_is_a_json_413_naming_the_limit() -> None:
    """A body larger than [limits] max_body is refused with a JSON 413 that names the limit."""
    cfg = config({"limits": {"max_body": "1KB"}})
    async with running(cfg) as (_, base), aiohttp.ClientSession() as http:
        status, reply = await post(http, base, b" " * 2048)
    assert status == 413
    assert "max_body" in reply["error"] and "1024" in reply["error"]


async def test_unknown_route_and_method_answer_json() -> None:
    """404 and 405 answers are JSON with an error message, like every other error."""
    async with running() as (_, base), aiohttp.ClientSession() as http:
        async with http.get(f"{base}/nope") as resp:
            assert (resp.status, resp.content_type) == (404, "application/json")
            assert "error" in await resp.json()
        async with http.get(f"{base}/api/v1/events") as resp:
            assert (resp.status, resp.content_type) == (405, "application/json")
            assert "POST" in (await resp.json())["error"]


async def test_errors_are_counted_by_status() -> None:
    """Each error answer is counted under its status code."""
    async with running() as (service, base), aiohttp.ClientSession() as http:
        await post(http, base, b"x", {"Content-Type": "text/plain"})
        async with http.get(f"{base}/nope"):
            pass
    assert service.stats.http_errors_total == {"415": 1, "404": 1}


_ND = {"Content-Type": "application/x-ndjson"}
