"""Benchmark: MQTT -> applied, one event per message and batched payloads.

Run with ``.venv/bin/python -m bench.bench_mqtt``. Targets: one event per message
>= 5,000 events/s; batched (100 events a message) >= 50,000 events/s.

A Mosquitto broker (deploy/mosquitto.conf) runs on a free loopback port; the live
service (a :class:`FloorService` with an :class:`MqttSource`, the memory store) runs
in this process; the publisher is a separate process (this script with
``--publish``: paho-mqtt, QoS 1, 1,000 messages in flight). Events are the first
``--events`` of the simulated bench day (they name their site, so the payloads take
the values-first path of the site rule); the service clock stands just after the
last of them, so every event is applied at once. Two measurements per shape:

- live: the publisher and the service run together; events/s from the publisher's
  first message until the last event is applied (bounded by both sides);
- backlog: everything is published while callfloor is down (the persistent session
  keeps it), then the service starts; events/s from its connection until the last
  event is applied (callfloor's own pace, in the broker's in-flight window).

Medians of ``--runs`` runs, with the publisher's own rate and the machine line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

from bench.common import machine, median, simulated_day

ROOT = Path(__file__).resolve().parents[1]
TOPIC = "callfloor/bench/events"


# ----------------------------------------------------------------------------- publisher


def _payloads(events_path: Path, count: int, per_message: int) -> list[bytes]:
    with events_path.open("rb") as fh:
        lines = [line.rstrip(b"\n") for line in islice(fh, count)]
    return [b"\n".join(lines[i : i + per_message]) for i in range(0, len(lines), per_message)]


def publish(port: int, events_path: Path, count: int, per_message: int) -> None:
    """The publisher process: every payload at QoS 1, then its own timing on stdout."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    payloads = _payloads(events_path, count, per_message)
    done = 0
    finished = time.time()

    def on_publish(*_: object) -> None:
        nonlocal done, finished
        done += 1
        if done == len(payloads):
            finished = time.time()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{os.getpid()}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    started = time.time()
    for payload in payloads:
        client.publish(TOPIC, payload, qos=1)
    while done < len(payloads):
        time.sleep(0.001)
    client.loop_stop()
    client.disconnect()
    print(f"{started} {finished}", flush=True)


# ----------------------------------------------------------------------------- broker


class Broker:
    """Mosquitto from deploy/mosquitto.conf on a free port, with its own persistence."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bench-mqtt-"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        conf = self.dir / "mosquitto.conf"
        conf.write_text(
            (ROOT / "deploy" / "mosquitto.conf").read_text()
            + f"\nlistener {self.port} 127.0.0.1\npersistence_location {self.dir}/\n"
            + ("user root\n" if os.geteuid() == 0 else "")
        )
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("mosquitto did not start")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


# ----------------------------------------------------------------------------- service


def _publisher(port: int, events_path: Path, count: int, per_message: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "bench.bench_mqtt", "--publish", str(port)),
            *(str(events_path), str(count), str(per_message)),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def _times(proc: subprocess.Popen[str]) -> tuple[float, float]:
    out, _ = proc.communicate(timeout=600)
    started, finished = out.split()
    return float(started), float(finished)


async def _run(
    broker: Broker, events_path: Path, config_path: Path, count: int, per_message: int, mode: str
) -> tuple[float, float]:
    """(events/s until applied, the publisher's events/s) of one run."""
    from callfloor.config import SourceConfig, load_config
    from callfloor.ingest.mqtt import MqttSource
    from callfloor.service import FloorService

    with events_path.open("rb") as fh:
        last = list(islice(fh, count))[-1]
    import msgspec

    last_ts = float(msgspec.json.decode(last)["ts"])
    client_id = f"bench-{mode}-{per_message}-{time.monotonic_ns()}"
    source_config = SourceConfig(
        kind="mqtt",
        name="mqtt",
        url=f"mqtt://127.0.0.1:{broker.port}",
        topics=("callfloor/+/events",),
        client_id=client_id,
    )
    config = dataclasses.replace(load_config(str(config_path)), sources=(source_config,))

    def make() -> tuple[FloorService, MqttSource]:
        service = FloorService(config, clock=lambda: last_ts + 2.0, host="127.0.0.1", port=0)
        source = MqttSource(
            source_config, config.limits, stats=service.stats, not_after=service.not_after
        )
        return service, source

    publisher_times: tuple[float, float] | None = None
    if mode == "backlog":
        _, probe = make()
        async with probe:
            pass  # the session exists: the broker keeps what comes next
        publisher = _publisher(broker.port, events_path, count, per_message)
        publisher_times = await asyncio.to_thread(_times, publisher)
    service, source = make()
    task = asyncio.create_task(service.run([source]))
    while not service.stats.source_up.get("mqtt"):
        await asyncio.sleep(0.001)
    started = time.time()
    if mode == "live":
        publisher = _publisher(broker.port, events_path, count, per_message)
    counters = service.proc.view.counters
    while True:
        c = counters()
        if c.events + c.duplicates + c.rejected >= count:
            break
        await asyncio.sleep(0.002)
    applied = time.time()
    if mode == "live":
        publisher_times = await asyncio.to_thread(_times, publisher)
        started = publisher_times[0]
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert publisher_times is not None
    pub_started, pub_finished = publisher_times
    return count / (applied - started), count / (pub_finished - pub_started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--single", type=int, default=50_000, help="events, one per message")
    parser.add_argument("--batched", type=int, default=300_000, help="events, 100 a message")
    parser.add_argument("--only", choices=("single", "batched"), help="one shape only")
    parser.add_argument("--publish", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publish:
        port, path, count, per_message = args.publish
        publish(int(port), Path(path), int(count), int(per_message))
        return
    events_path, config_path = simulated_day()
    print(machine())
    broker = Broker()
    try:
        shapes = {
            "single": ("one event per message", args.single, 1),
            "batched": ("100 events per message", args.batched, 100),
        }
        for shape, (label, count, per_message) in shapes.items():
            if args.only not in (None, shape):
                continue
            for mode in ("live", "backlog"):
                rates = [
                    asyncio.run(_run(broker, events_path, config_path, count, per_message, mode))
                    for _ in range(args.runs)
                ]
                applied = median([r[0] for r in rates])
                published = median([r[1] for r in rates])
                print(
                    f"{label:24} {mode:8} {count:>8,} events: {applied:>9,.0f} events/s applied "
                    f"(publisher {published:,.0f}/s; runs "
                    f"{', '.join(f'{r[0]:,.0f}' for r in rates)})",
                    flush=True,
                )
    finally:
        broker.close()


if __name__ == "__main__":
    main()
