"""Resends: a client's retry of a whole body, or a broker's redelivery, of events the
service already has, is acknowledged but neither applied nor counted, so a crash and
the retries it causes leave the document as it would have been without them."""

from __future__ import annotations

import aiohttp
from helpers import T0, decode, ev
from live import FakeClock, ndjson, post, running

from callfloor.ingest.source import Batch, Receipt

BODY = ndjson(
    ev("call_queued", T0 - 30, call_id="c1", queue="q", id="e1"),
    ev("call_queued", T0 - 20, call_id="c2", queue="q", id="e2"),
)


async def test_a_body_sent_again_is_a_resend_not_duplicates() -> None:
    """The same body twice: the second answer lists both as duplicates (already
    received), the document counts no duplicate, the resend metric counts two."""
    async with (
        running(clock=FakeClock(T0)) as (service, base),
        aiohttp.ClientSession() as http,
    ):
        first = await post(http, base, BODY)
        second = await post(http, base, BODY)
        await service.next_tick()
        assert first[0] == 202 and first[1]["accepted"] == 2
        assert second[0] == 202 and second[1]["duplicates_total"] == 2
        assert second[1]["accepted"] == 0
        assert service.proc.counters["duplicates"] == 0
        assert service.proc.counters["events"] == 2
        assert service.stats.resent_events_total == {"http": 2}


async def test_a_body_with_one_new_event_counts_its_known_ones_as_duplicates() -> None:
    """A body that is not wholly known is no resend: its known events are duplicates."""
    async with (
        running(clock=FakeClock(T0)) as (service, base),
        aiohttp.ClientSession() as http,
    ):
        await post(http, base, BODY)
        mixed = BODY + ndjson(ev("call_queued", T0 - 10, call_id="c3", queue="q", id="e3"))
        status, reply = await post(http, base, mixed)
        await service.next_tick()
        assert (status, reply["accepted"], reply["duplicates_total"]) == (202, 1, 2)
        assert service.proc.counters["duplicates"] == 2
        assert service.stats.resent_events_total == {}


async def test_marked_positions_are_resends_only_where_the_event_is_known() -> None:
    """A batch marking some positions (a broker's redelivered messages): a known event
    there is a resend; a known event elsewhere is a duplicate; a new one is applied."""

    async with running(clock=FakeClock(T0)) as (service, _):
        e1 = decode(ev("call_queued", T0 - 30, call_id="c1", queue="q", id="e1"))
        e2 = decode(ev("call_queued", T0 - 20, call_id="c2", queue="q", id="e2"))
        e3 = decode(ev("call_queued", T0 - 10, call_id="c3", queue="q", id="e3"))
        receipts: list[Receipt] = []
        await service.submit(Batch([e1, e2], "mqtt", ack=receipts.append))
        await service.next_tick()
        redelivered = Batch([e1, e2, e3], "mqtt", ack=receipts.append, resent=frozenset({0, 2}))
        await service.submit(redelivered)
        await service.next_tick()
        assert receipts[-1].duplicates == [0, 1] and receipts[-1].resent == 1
        assert service.proc.counters["duplicates"] == 1  # e2: known, not marked
        assert service.proc.counters["events"] == 3
        assert service.stats.resent_events_total == {"mqtt": 1}


async def test_a_file_batch_of_only_rejected_lines_read_again_is_not_counted_again() -> None:
    """A tail batch holding nothing but an unmappable line (the last line before a
    SIGKILL, read again from the saved position): its rejection id is known, so the
    second reading counts nothing, as one with events around it does."""
    from callfloor.feeds.queue_log import QueueLogMapper
    from callfloor.ingest.feedsource import FeedBatcher

    line = b"notanepoch|c9|q1|NONE|ENTERQUEUE||5551234567|1"
    async with running(clock=FakeClock(T0)) as (service, _):
        batcher = FeedBatcher("ql", "queue_log")
        for _ in range(2):
            result = QueueLogMapper().feed([line], [1200])
            assert len(result.rejected) == 1 and not result.events
            batch = batcher.batch(result, 1, resent=True, keys=["ql:rejected-4b0-1"])
            await service.submit(batch)
            await service.next_tick()
        assert service.proc.counters["rejected"] == 1
        assert sum(batcher.counts.rejected_total.values()) == 1
