"""The AMI client against a scripted asyncio AMI server: login, events, Ping, a dropped
connection, the reconnect and its QueueStatus re-sync."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from callfloor.config import SourceConfig
from callfloor.events import to_builtins
from callfloor.feeds.ami import AmiParser
from callfloor.feeds.base import FeedOptions
from callfloor.ingest.ami import AmiOptions, AmiSource
from callfloor.ingest.counts import SourceCounts
from callfloor.ingest.source import Batch
from callfloor.ingest.supervisor import Supervisor

BANNER = b"Asterisk Call Manager/5.0.1\r\n"
SECRET = "s3cret"
CHALLENGE = "840744318"
KEY = ("ami", "ami")


def wire(*messages: dict[str, Any]) -> bytes:
    return b"".join(
        b"".join(f"{k}: {v}\r\n".encode() for k, v in m.items()) + b"\r\n" for m in messages
    )


@dataclass
class Session:
    """What the server does on one connection after the login and the QueueStatus."""

    status: list[dict[str, Any]]
    events: list[dict[str, Any]]
    drop: bool  # close the connection once the events are sent


@dataclass
class ScriptedAmi:
    """An AMI server playing one Session per connection; records the actions it got."""

    sessions: list[Session]
    actions: list[dict[str, str]] = field(default_factory=list)
    connections: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = self.sessions[min(self.connections, len(self.sessions) - 1)]
        self.connections += 1
        writer.write(BANNER)
        parser = AmiParser()
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(4096):
                for m in parser.feed(data):
                    self.actions.append(m)
                    if await self._answer(m, session, writer):
                        writer.close()
                        return
        writer.close()

    async def _answer(
        self, m: dict[str, str], session: Session, writer: asyncio.StreamWriter
    ) -> bool:
        aid = m.get("ActionID", "")
        name = m.get("Action")
        if name == "Challenge":
            writer.write(wire({"Response": "Success", "Challenge": CHALLENGE, "ActionID": aid}))
        elif name == "Login":
            good = hashlib.md5((CHALLENGE + SECRET).encode()).hexdigest()
            ok = m.get("Key") == good and m.get("AuthType") == "MD5"
            writer.write(
                wire(
                    {
                        "Response": "Success" if ok else "Error",
                        "ActionID": aid,
                        "Message": "Authentication accepted" if ok else "Authentication failed",
                    },
                    {"Event": "FullyBooted", "Privilege": "system,all", "Status": "Fully Booted"},
                )
            )
        elif name == "QueueStatus":
            answers = [{**a, "ActionID": aid} for a in session.status]
            writer.write(
                wire(
                    {
                        "Response": "Success",
                        "ActionID": aid,
                        "EventList": "start",
                        "Message": "Queue status will follow",
                    },
                    *answers,
                    {"Event": "QueueStatusComplete", "ActionID": aid, "EventList": "Complete"},
                    *session.events,
                )
            )
            await writer.drain()
            return session.drop
        elif name == "Ping":
            writer.write(wire({"Response": "Success", "Ping": "Pong", "ActionID": aid}))
        await writer.drain()
        return False


def ev(name: str, ts: float, **fields: Any) -> dict[str, Any]:
    return {"Event": name, "Privilege": "agent,all", "Timestamp": f"{ts:.6f}", **fields}


@contextlib.asynccontextmanager
async def serving(script: ScriptedAmi) -> AsyncIterator[int]:
    server = await asyncio.start_server(script.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield port


def describe(batches: list[Batch]) -> list[str]:
    out = []
    for batch in batches:
        for e in batch.events:
            d = to_builtins(e)
            kind = f"{d['type']}:{d['state']}" if d["type"] == "agent_state" else d["type"]
            out.append(f"{kind}:{d.get('call_id') or d.get('agent')}")
    return out


async def test_events_reconnect_and_queue_status_resync() -> None:
    """A realistic session, a dropped connection, then a reconnect whose QueueStatus re-syncs
    the member, a caller that joined during the gap and one that left during it."""
    now = time.time()
    t0 = now - 60
    member = {
        "Event": "QueueMember",
        "Queue": "sales",
        "Name": "SIP/100",
        "Location": "SIP/100",
        "StateInterface": "SIP/100",
        "Membership": "dynamic",
        "Penalty": "0",
        "CallsTaken": "0",
        "Status": "1",
        "Paused": "0",
    }
    first = Session(
        status=[{"Event": "QueueParams", "Queue": "sales", "Calls": "0"}, member],
        events=[
            ev("QueueCallerJoin", t0, Queue="sales", Uniqueid="c1", CallerIDNum="5551234567"),
            ev("AgentCalled", t0 + 2, Queue="sales", Uniqueid="c1", MemberName="SIP/100"),
            ev("QueueCallerLeave", t0 + 5, Queue="sales", Uniqueid="c1", Position=1, Count=0),
            ev(
                "AgentConnect",
                t0 + 5.2,
                Queue="sales",
                Uniqueid="c1",
                MemberName="SIP/100",
                Interface="SIP/100",
                HoldTime=4,
                RingTime=2,
            ),
            ev("QueueCallerJoin", t0 + 10, Queue="sales", Uniqueid="c2", Position=1, Count=1),
        ],
        drop=True,
    )
    second = Session(
        status=[
            {"Event": "QueueParams", "Queue": "sales", "Calls": "1"},
            {**member, "Status": "2", "CallsTaken": "1"},
            {
                "Event": "QueueEntry",
                "Queue": "sales",
                "Position": "1",
                "Uniqueid": "c3",
                "Wait": "12",
            },
        ],
        events=[
            ev(
                "AgentComplete",
                now - 1,
                Queue="sales",
                Uniqueid="c1",
                MemberName="SIP/100",
                HoldTime=4,
                TalkTime=50,
                Reason="caller",
            )
        ],
        drop=False,
    )
    script = ScriptedAmi([first, second])
    batches: list[Batch] = []

    async def sink(batch: Batch) -> None:
        batches.append(batch)

    counts = SourceCounts()
    async with serving(script) as port:
        config = SourceConfig(
            kind="ami",
            name="ami",
            username="callfloor",
            secret=SECRET,
            options=AmiOptions(port=port, ping_s=0.2),
        )
        source = AmiSource(config, FeedOptions(), counts=counts, leave_grace_s=1.0)
        supervisor = Supervisor(sink, backoff_min_s=0.05, backoff_max_s=0.1)
        task = asyncio.create_task(supervisor.run(source))
        try:
            async with asyncio.timeout(10):
                while not any(a.get("Action") == "Ping" for a in script.actions):
                    await asyncio.sleep(0.02)
                while "call_dequeued:c2" not in describe(batches):
                    await asyncio.sleep(0.02)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    seen = describe(batches)
    assert seen[:5] == [
        "agent_state:available:100",  # the member, from the first QueueStatus
        "call_queued:c1",
        "call_routed:c1",
        "call_answered:c1",
        "agent_state:on_call:100",
    ], seen
    assert "call_queued:c2" in seen
    assert "call_queued:c3" in seen  # joined during the gap, known from QueueStatus
    assert "call_ended:c1" in seen
    assert seen.index("call_queued:c3") > seen.index("call_queued:c2")
    c3 = next(e for b in batches for e in b.events if getattr(e, "call_id", None) == "c3")
    assert float(c3.ts) == pytest.approx(time.time() - 12, abs=5)  # type: ignore[arg-type]
    logins = [a for a in script.actions if a.get("Action") == "Login"]
    assert len(logins) == 2 and all("Secret" not in a for a in logins)
    assert sum(a.get("Action") == "QueueStatus" for a in script.actions) == 2
    assert counts.reconnects_total[KEY] == 1
    assert counts.gap_seconds_total[KEY] > 0
    assert counts.received_total[KEY] >= 8
    ids = [e.id for b in batches for e in b.events]
    assert len(ids) == len(set(ids))


async def test_a_refused_login_fails_the_connection_and_is_retried() -> None:
    """A wrong secret: the login error ends the attempt, counted as a restart."""
    script = ScriptedAmi([Session(status=[], events=[], drop=False)])

    async def sink(batch: Batch) -> None:
        pass

    async with serving(script) as port:
        config = SourceConfig(
            kind="ami",
            name="ami",
            username="callfloor",
            secret="wrong",
            options=AmiOptions(port=port),
        )
        restarts: dict[str, int] = {}
        supervisor = Supervisor(sink, restarts=restarts, backoff_min_s=0.02, backoff_max_s=0.05)
        task = asyncio.create_task(supervisor.run(AmiSource(config, FeedOptions())))
        try:
            async with asyncio.timeout(5):
                while restarts.get("ami", 0) < 2:
                    await asyncio.sleep(0.02)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    status = supervisor.status()["ami"]
    assert status.last_error is not None and "Login refused" in status.last_error


async def test_a_configured_ami_source_feeds_the_live_floor() -> None:
    """``[[sources]] kind = "ami"`` through ``callfloor serve``'s wiring: the calls the
    scripted PBX reports are on the floor (offered, answered) and counted by source."""
    from helpers import T0, config
    from live import FakeClock

    from callfloor.service import FloorService
    from callfloor.service.sources import configured_sources

    t0 = T0 - 120
    session = Session(
        status=[],
        events=[
            ev("QueueCallerJoin", t0, Queue="sales", Uniqueid="c1"),
            ev("QueueCallerLeave", t0 + 5, Queue="sales", Uniqueid="c1", Position=1, Count=0),
            ev("AgentConnect", t0 + 5.2, Queue="sales", Uniqueid="c1", MemberName="SIP/100"),
            ev("QueueCallerJoin", t0 + 10, Queue="sales", Uniqueid="c2"),
            ev("QueueCallerAbandon", t0 + 30, Queue="sales", Uniqueid="c2", HoldTime=20),
        ],
        drop=False,
    )
    script = ScriptedAmi([session])
    async with serving(script) as port:
        source = {
            "kind": "ami",
            "url": f"tcp://127.0.0.1:{port}",
            "username": "callfloor",
            "secret": SECRET,
            "ping_interval": "200ms",
        }
        cfg = config({"sources": [source]})
        service = FloorService(cfg, clock=FakeClock(), host="127.0.0.1", port=0, tick_s=0.01)
        task = asyncio.create_task(service.run(configured_sources(cfg, service)))
        try:
            async with asyncio.timeout(10):
                await service.started.wait()
                while True:
                    await asyncio.sleep(0.02)
                    doc = to_builtins(service.view.document())
                    sales = doc["queues"].get("sales")
                    if sales is not None and sales["windows"]["60m"]["abandoned"] == 1:
                        break
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    window = sales["windows"]["60m"]
    assert (window["offered"], window["answered"], window["abandoned"]) == (2, 1, 1)
    counts = service.stats.source_counts
    assert counts.events_total[KEY] >= 4
    assert counts.received_total[KEY] >= 5
