"""Benchmark: MQTT publish -> visible in /api/v1/snapshot, at a steady rate.

Run with ``.venv/bin/python -m bench.bench_latency [--store memory|file|redis]``.
Target: p99 <= 50 ms beyond the watermark delay at 2,000 events/s.

Three processes, as in production: Mosquitto (deploy/mosquitto.conf) on a free loopback
port, ``callfloor serve`` with an MQTT source (and the chosen store; Redis from
deploy/redis.conf), and a publisher (this script with ``--publish``: paho-mqtt, QoS 1,
one event a message) sending the simulated bench day's events at a steady rate, each
stamped with the moment it is published (``ts`` = now, as a live ACD does). This process
polls ``/api/v1/snapshot`` on one kept-alive connection and records when the count of
applied events (events + duplicates + rejected) passes each published event; events are
applied in ``ts`` order, which is the publish order, so the k-th event is visible at the
first poll that counts k.

An event becomes applicable once the watermark (the wall clock minus 1 s) passes its
``ts``; the latency reported is visible - published - 1 s. The first two seconds are
warm-up and not counted. Each poll takes time itself, so the figures are upper bounds.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from itertools import islice
from pathlib import Path

from bench.bench_mqtt import Broker
from bench.common import free_port, machine, median, redis_server, simulated_day

ROOT = Path(__file__).resolve().parents[1]
TOPIC = "callfloor/bench/events"
WATERMARK_DELAY_S = 1.0
WARMUP_S = 2.0


# ----------------------------------------------------------------------------- publisher


def publish(port: int, events_path: Path, rate: float, seconds: float) -> None:
    """The publisher process: events at ``rate``/s, ts = publish time; then the times."""
    import msgspec
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    count = int(rate * seconds)
    with events_path.open("rb") as fh:
        events = [msgspec.json.decode(line) for line in islice(fh, count)]
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-lat-{os.getpid()}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    encode = msgspec.json.encode
    times: list[float] = []
    start = time.time() + 0.2
    for k, event in enumerate(events):
        due = start + k / rate
        wait = due - time.time()
        if wait > 0:
            time.sleep(wait)
        now = time.time()
        event["ts"] = round(now, 6)
        client.publish(TOPIC, encode(event), qos=1)
        times.append(now)
    time.sleep(0.5)
    client.loop_stop()
    client.disconnect()
    print(json.dumps(times), flush=True)


# ----------------------------------------------------------------------------- the run


def _store_url(store: str, workdir: Path, redis_url: str | None) -> str:
    if store == "file":
        return f"file://{workdir / 'state'}"
    if store == "redis":
        assert redis_url is not None
        return redis_url
    return "memory:"


def _poll(port: int, stop: threading.Event, seen: list[tuple[float, int]]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while not stop.is_set():
        conn.request("GET", "/api/v1/snapshot")
        body = conn.getresponse().read()
        c = json.loads(body)["counters"]
        seen.append((time.time(), int(c["events"] + c["duplicates"] + c["rejected"])))
        time.sleep(0.001)
    conn.close()


def run_once(store: str, rate: float, seconds: float, events: Path, config: Path) -> list[float]:
    """The latencies (s) beyond the watermark delay of one run, warm-up excluded."""
    broker = Broker()
    redis = contextlib.ExitStack()
    redis_url = redis.enter_context(redis_server())[0] if store == "redis" else None
    workdir = Path(tempfile.mkdtemp(prefix="bench-lat-"))
    port = free_port()
    cfg = workdir / "callfloor.toml"
    cfg.write_text(
        config.read_text()
        + f'\n[store]\nurl = "{_store_url(store, workdir, redis_url)}"\n'
        + f'\n[[sources]]\nkind = "mqtt"\nurl = "mqtt://127.0.0.1:{broker.port}"\n'
        + f'client_id = "bench-serve-{os.getpid()}"\n'
    )
    serve = subprocess.Popen(
        [sys.executable, "-m", "callfloor", "serve", "--config", str(cfg), "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        stop = threading.Event()
        seen: list[tuple[float, int]] = []
        poller = threading.Thread(target=_poll, args=(port, stop, seen))
        poller.start()
        publisher = subprocess.run(
            [
                *(sys.executable, "-m", "bench.bench_latency", "--publish", str(broker.port)),
                *(str(events), str(rate), str(seconds)),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        published: list[float] = json.loads(publisher.stdout)
        deadline = time.time() + 10
        while (not seen or seen[-1][1] < len(published)) and time.time() < deadline:
            time.sleep(0.05)
        stop.set()
        poller.join()
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=30)
        broker.close()
        redis.close()
        shutil.rmtree(workdir, ignore_errors=True)
    latencies: list[float] = []
    i = 0
    for k, at in enumerate(published, start=1):
        while i < len(seen) and seen[i][1] < k:
            i += 1
        if i == len(seen):
            raise RuntimeError(f"event {k} of {len(published)} never became visible")
        if at - published[0] >= WARMUP_S:
            latencies.append(seen[i][0] - at - WATERMARK_DELAY_S)
    return latencies


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--publish", nargs=4, metavar=("PORT", "EVENTS", "RATE", "SECONDS"))
    parser.add_argument("--store", choices=("memory", "file", "redis"), default="memory")
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.publish:
        port, path, rate, seconds = args.publish
        publish(int(port), Path(path), float(rate), float(seconds))
        return
    events, config = simulated_day()
    p50s: list[float] = []
    p99s: list[float] = []
    for _ in range(args.runs):
        lat = run_once(args.store, args.rate, args.seconds, events, config)
        p50s.append(_pct(lat, 0.5) * 1000)
        p99s.append(_pct(lat, 0.99) * 1000)
        print(
            f"run: {len(lat)} events, p50 {p50s[-1]:.1f} ms, p99 {p99s[-1]:.1f} ms "
            "beyond the watermark delay",
            flush=True,
        )
    print(
        f"store={args.store} rate={args.rate:g}/s: median p50 {median(p50s):.1f} ms, "
        f"median p99 {median(p99s):.1f} ms (runs: {args.runs}; {machine()})"
    )


if __name__ == "__main__":
    main()
