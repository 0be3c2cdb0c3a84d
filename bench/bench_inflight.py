"""Benchmark: 100 concurrent 16 MB bodies posted to one ``callfloor serve``: its RSS.

Run with ``.venv/bin/python -m bench.bench_inflight [--runs 3] [--bound 256MB]``.
Target: RSS under 1 GB during and after the attack, with the default ``[limits]
max_inflight_body`` (256 MB); bodies beyond the bound get 503.

The service runs as a process with the default configuration (``--bound`` sets
``max_inflight_body``; ``--bound 64GB`` is the service without a bound). 100 clients
(aiohttp, one connection each) post one body each at once. Two kinds of body, each just
under ``max_body`` (16 MiB):

- ``invalid``: 16 MB of one line that is not an event (decoded, every line rejected and
  counted): what the transport and the decoder hold, nothing kept after;
- ``valid``: 100,000 ``call_queued`` events (padded to 16 MB), ts an hour ago, the same
  body from every client: applied once, then recognised as resent (202) or refused by
  back-pressure while the backlog is full (503 max_pending_events); the floor keeps
  100,000 waiting calls.

The peak is the kernel's high-water mark of the process's RSS (``VmHWM``), which
catches what sampling would miss; "after" is ``VmRSS`` 3 s after the last answer.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

import aiohttp
import msgspec

from bench.common import free_port, machine

MB = 1024 * 1024
BODY = 16 * MB
CLIENTS = 100


def invalid_body() -> bytes:
    """One line that is not an event, repeated to just under 16 MiB."""
    line = b'{"type":"call_queued","note":"not an event: no ts, no call_id"}\n'
    return line * (BODY // len(line))


def valid_body(batch: int) -> bytes:
    """100,000 distinct call_queued events an hour old, padded to just under 16 MiB."""
    ts = time.time() - 3600
    lines = [
        msgspec.json.encode(
            {"type": "call_queued", "ts": ts, "call_id": f"b{batch}-c{i}", "queue": f"q{i % 20}"}
        )
        for i in range(100_000)
    ]
    width = (BODY - 1) // len(lines)
    return b"".join(line + b" " * (width - len(line) - 1) + b"\n" for line in lines)


def _status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field}")


async def _post(http: aiohttp.ClientSession, url: str, body: bytes) -> str:
    headers = {"Content-Type": "application/x-ndjson"}
    try:
        async with http.post(url, data=body, headers=headers) as resp:
            reply = await resp.json()
            if resp.status != 503:
                return str(resp.status)
            # Which bound refused it: the limit, or the first words of the message.
            limit = reply.get("limit") or " ".join(reply["error"].split()[:4])
            return f"503 {limit}"
    except aiohttp.ClientError as exc:
        return f"error {type(exc).__name__}"


async def _attack(url: str, bodies: list[bytes]) -> Counter[str]:
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        answers = await asyncio.gather(*(_post(http, url, body) for body in bodies))
    return Counter(answers)


def run(kind: str, bound: str) -> tuple[int, int, int, Counter[str]]:
    """One attack on a fresh process: baseline RSS, peak RSS, RSS after, the answers."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "callfloor.toml"
        config.write_text(f'[limits]\nmax_inflight_body = "{bound}"\n')
        command = [sys.executable, "-m", "callfloor", "serve", "--config", str(config)]
        proc = subprocess.Popen(
            [*command, "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    with urllib.request.urlopen(base + "/healthz", timeout=1):
                        break
                except OSError:
                    time.sleep(0.05)
            if kind == "invalid":
                one = invalid_body()
                bodies = [one] * CLIENTS
            else:
                # One body sent by every client: it is applied once and recognised as resent
                # after, so the floor keeps 100,000 calls and what the figures show is the
                # bodies in flight (a million distinct calls would be about 1 GB of floor
                # state, which max_inflight_body does not bound).
                bodies = [valid_body(0)] * CLIENTS
            baseline = _status(proc.pid, "VmRSS")
            answers = asyncio.run(_attack(base + "/api/v1/events", bodies))
            time.sleep(3)
            return baseline, _status(proc.pid, "VmHWM"), _status(proc.pid, "VmRSS"), answers
        finally:
            proc.terminate()
            proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bound", default="256MB", help="[limits] max_inflight_body")
    parser.add_argument("--kind", choices=("invalid", "valid", "both"), default="both")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"{CLIENTS} concurrent bodies of {BODY // MB} MiB, max_inflight_body = {args.bound}")
    kinds = ("invalid", "valid") if args.kind == "both" else (args.kind,)
    for kind in kinds:
        peaks, afters = [], []
        for i in range(args.runs):
            baseline, peak, after, answers = run(kind, args.bound)
            peaks.append(peak)
            afters.append(after)
            print(
                f"  {kind} run {i + 1}: baseline {baseline / MB:,.0f} MB, "
                f"peak {peak / MB:,.0f} MB, after {after / MB:,.0f} MB; "
                f"answers {dict(sorted(answers.items()))}",
                flush=True,
            )
        print(
            f"{kind}: median peak {statistics.median(peaks) / MB:,.0f} MB, "
            f"median after {statistics.median(afters) / MB:,.0f} MB"
        )


if __name__ == "__main__":
    main()
