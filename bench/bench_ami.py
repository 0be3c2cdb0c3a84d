"""Benchmark: AMI messages/s through the AMI source (client, parser and mapper).

Run with ``.venv/bin/python -m bench.bench_ami``. A scripted AMI server (asyncio, in a
separate process so it does not share the client's core) answers the login and the
QueueStatus, then sends ``--calls`` calls of five queue events each (QueueCallerJoin,
AgentCalled, QueueCallerLeave, AgentConnect, AgentComplete) plus a VarSet and a
Newexten per call that the mapper skips (a real connection is mostly events callfloor
does not map), as fast as the socket takes them. Measured: from the first event read
to the last call's events mapped, in the source alone (no service). Medians of
``--runs`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import subprocess
import sys
import time

from bench.common import machine, median
from callfloor.config import SourceConfig
from callfloor.feeds.ami import AmiParser
from callfloor.feeds.base import FeedOptions
from callfloor.ingest.ami import AmiOptions, AmiSource

PER_CALL = 7  # AMI messages per call, two of them skipped


def _wire(m: dict[str, str]) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in m.items()).encode() + b"\r\n"


def transcript(calls: int, t0: float) -> bytes:
    """What the server sends after the QueueStatus."""
    out = bytearray()
    for i in range(calls):
        t = t0 + i
        uid = f"1765100000.{i}"
        agent = f"SIP/{100 + i % 50}"
        base = {"Privilege": "agent,all", "Queue": f"q{i % 5}", "Uniqueid": uid}
        for name, dt, extra in (
            ("QueueCallerJoin", 0.0, {"Position": "1", "Count": "1"}),
            ("VarSet", 0.1, {"Variable": "QUEUEPOSITION", "Value": "1"}),
            ("AgentCalled", 1.0, {"MemberName": agent, "Interface": agent}),
            ("Newexten", 1.5, {"Context": "macro-auto-blkvm", "Application": "Set"}),
            ("QueueCallerLeave", 4.0, {"Position": "1", "Count": "0"}),
            ("AgentConnect", 4.2, {"MemberName": agent, "Interface": agent, "HoldTime": "4"}),
            ("AgentComplete", 60.0, {"MemberName": agent, "TalkTime": "56", "Reason": "caller"}),
        ):
            out += _wire({"Event": name, "Timestamp": f"{t + dt:.6f}", **base, **extra})
    return bytes(out)


def serve(port: int, calls: int) -> None:
    """The server process: one connection, login and QueueStatus answered, the transcript."""
    blob = transcript(calls, 1_765_100_000.0)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/5.0.1\r\n")
        parser = AmiParser()
        while data := await reader.read(4096):
            for m in parser.feed(data):
                aid = m.get("ActionID", "")
                if m.get("Action") == "Login":
                    writer.write(_wire({"Response": "Success", "ActionID": aid}))
                elif m.get("Action") == "QueueStatus":
                    writer.write(_wire({"Response": "Success", "ActionID": aid}))
                    writer.write(_wire({"Event": "QueueStatusComplete", "ActionID": aid}))
                    writer.write(blob)
                await writer.drain()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def one_run(calls: int) -> float:
    """AMI messages per second of one run."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_ami", "--serve", str(port), "--calls", str(calls)]
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            time.sleep(0.05)
        config = SourceConfig(
            kind="ami",
            name="ami",
            username="u",
            secret="s",
            options=AmiOptions(port=port, auth="plain", ping_s=30.0),
        )
        source = AmiSource(config, FeedOptions())
        key = ("ami", "ami")
        started: float | None = None
        async with source:
            async for _batch in source:
                if started is None:
                    started = time.perf_counter()
                if source.counts.received_total[key] >= calls * PER_CALL:
                    break
        assert started is not None
        return calls * PER_CALL / (time.perf_counter() - started)
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    """Run and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=30_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.calls)
        return
    rates = [asyncio.run(one_run(args.calls)) for _ in range(args.runs)]
    print(machine())
    print(
        f"AMI source: {median(rates):,.0f} messages/s ({median(rates) * 5 / PER_CALL:,.0f} "
        f"queue messages/s), {args.calls * PER_CALL:,} messages, median of {args.runs}"
    )


if __name__ == "__main__":
    main()
