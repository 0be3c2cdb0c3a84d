"""A past event posted to the live service is refused with what to do instead."""

from __future__ import annotations

import aiohttp
from helpers import T0, ev
from live import FakeClock, ndjson, post, running


async def test_a_simulated_days_event_refused_as_too_old_says_how_old_and_what_to_do() -> None:
    """An event two weeks before the clock (a simulated file's fixed start) is refused as
    ts_too_old with its date, its age, the limit, and `callfloor replay` as the way."""
    async with running(clock=FakeClock(T0)) as (_, base), aiohttp.ClientSession() as http:
        old = T0 - 14 * 86400
        status, answer = await post(
            http, base, ndjson(ev("call_queued", old, call_id="c1", queue="sales"))
        )
    assert status == 400, answer  # nothing in the body was taken
    [refused] = answer["rejected"]
    assert refused["reason"] == "ts_too_old"
    message = refused["message"]
    assert "14 d before the service clock" in message
    assert "at most 1 d late" in message and "[limits] max_lateness" in message
    assert "callfloor replay" in message and "--realtime" in message
