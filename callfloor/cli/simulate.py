"""``callfloor simulate``: write a simulated call floor's events as NDJSON."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from typing import BinaryIO, Final

import msgspec

from callfloor.cli import validators as v
from callfloor.simulator import FloorSimulation, SimulationSpec, build_spec
from callfloor.simulator.feed import Feed, FeedError, HttpFeed, MqttFeed, paced

PROG: Final[str] = "callfloor simulate"

# A fixed default start keeps the output reproducible: the same arguments always
# give the same bytes. 2026-11-23T00:00:00Z is a Monday.
DEFAULT_START: Final[float] = 1795392000.0

# Events are encoded and written in batches: one write per event would dominate
# the run time of a million-event day.
_BATCH: Final[int] = 4096

_DESCRIPTION: Final[str] = """\
Simulate a call floor (sites in their own time zones, voice/chat/email queues,
skills-based routing, ring-no-answer, abandons, callbacks, requeues, breaks and
shifts) and write its events as NDJSON in the canonical schema. The output is
deterministic: the same arguments give the same bytes.
"""

_EPILOG: Final[str] = """\
examples:
  callfloor simulate --duration 1d --output day.ndjson --write-config floor.toml
  callfloor simulate --agents 1000 --queues 50 --sites 4 --duration 8h > shift.ndjson
  callfloor simulate --realtime --post http://127.0.0.1:8080/api/v1/events
  callfloor simulate --realtime --mqtt mqtt://127.0.0.1:1883
  callfloor simulate --start "$(date -d '-30 min' +%s)" --duration 30m --post URL

With --realtime and no --start the floor starts now (so its local-time profile
matches the wall clock); with --start, event times are shifted to begin now.

--post and --mqtt feed a live service in batches (at most 1000 events each) instead
of writing NDJSON: with --realtime as the events fall due, without it as fast as the
service takes them (a backfill: the service refuses events older than its
[limits] max_lateness, 24 h by default, so give --start a recent time). A summary
goes to stderr; the exit code is 1 when the service rejected any event.
"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``simulate`` subcommand (its handler is :func:`run`)."""
    p = subparsers.add_parser(
        "simulate",
        help="write a simulated call floor's events as NDJSON",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--agents", type=v.positive_int, default=40, help="agents (default 40)")
    p.add_argument("--queues", type=v.positive_int, default=6, help="queues (default 6)")
    p.add_argument(
        "--sites",
        type=v.positive_int,
        default=2,
        help="sites, each in its time zone (default 2)",
    )
    p.add_argument(
        "--start",
        type=v.instant,
        metavar="TS",
        help="simulated start, epoch seconds or RFC 3339 (default 2026-11-23T00:00:00Z)",
    )
    p.add_argument(
        "--duration",
        type=v.duration,
        default=86400.0,
        metavar="DUR",
        help='simulated time: seconds or "90s", "15m", "8h", "1d" (default 1d)',
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--output", default="-", metavar="FILE", help="NDJSON output file, - for stdout (default)"
    )
    where.add_argument(
        "--post",
        metavar="URL",
        help="POST the events to a live service instead, e.g. "
        "http://127.0.0.1:8080/api/v1/events (token: --token or $CALLFLOOR_TOKEN)",
    )
    where.add_argument(
        "--mqtt",
        metavar="URL",
        help="publish the events at QoS 1 on callfloor/<site>/events instead, e.g. "
        "mqtt://127.0.0.1:1883",
    )
    p.add_argument(
        "--token",
        metavar="TOKEN",
        help="with --post: the bearer token (default $CALLFLOOR_TOKEN; none on loopback)",
    )
    p.add_argument(
        "--client-id",
        default="callfloor-simulator",
        metavar="ID",
        help="with --mqtt: the MQTT client id (default callfloor-simulator)",
    )
    p.add_argument(
        "--realtime",
        action="store_true",
        help="pace output to the wall clock, with event times starting now",
    )
    p.add_argument(
        "--speed",
        type=v.positive,
        default=1.0,
        metavar="X",
        help="with --realtime: simulated seconds per wall-clock second (default 1)",
    )
    p.add_argument(
        "--warmup",
        type=v.duration,
        default=0.0,
        metavar="DUR",
        help="with --realtime and no --start: begin DUR in the past and send those events "
        "at once, so a live service has numbers from the start (e.g. 20m)",
    )
    p.add_argument(
        "--write-config",
        metavar="FILE",
        help="also write the matching callfloor TOML configuration to FILE",
    )
    p.add_argument(
        "--duplicates",
        type=v.fraction,
        default=0.0,
        metavar="FRACTION",
        help="share of events sent twice with the same id, to exercise dedup (default 0)",
    )
    p.set_defaults(func=run)


def _error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Run ``callfloor simulate``; returns the exit code (2 for bad arguments)."""
    if args.queues < args.sites:
        return _error(f"--queues ({args.queues}) must be at least --sites ({args.sites})")
    if args.agents < args.sites:
        return _error(f"--agents ({args.agents}) must be at least --sites ({args.sites})")
    if args.speed != 1.0 and not args.realtime:
        return _error("--speed only applies with --realtime")
    if args.warmup and (not args.realtime or args.start is not None):
        return _error("--warmup only applies with --realtime and without --start")
    feeding = args.post is not None or args.mqtt is not None
    if feeding and args.speed != 1.0:
        return _error(
            "--speed cannot feed a live service: it holds events until the wall clock "
            "reaches their ts (use callfloor replay to go faster than real time)"
        )
    try:
        spec: SimulationSpec = build_spec(
            agents=args.agents,
            queues=args.queues,
            sites=args.sites,
            seed=args.seed,
            duplicate_rate=args.duplicates,
        )
    except ValueError as exc:
        return _error(str(exc))
    sim = FloorSimulation(spec)

    if args.write_config:
        try:
            with open(args.write_config, "w", encoding="utf-8") as fh:
                fh.write(sim.config_toml())
        except OSError as exc:
            return _error(f"--write-config {args.write_config}: {exc.strerror}")

    start = args.start
    shift = 0.0
    anchor = None
    if args.realtime:
        now = round(time.time(), 3)
        if start is None:
            start = now - args.warmup
            anchor = now  # the warm-up's events are due at once
        else:
            shift = now - start
    elif start is None:
        start = DEFAULT_START

    events = sim.events(start, args.duration)
    anchor = start if anchor is None else anchor
    if feeding:
        return _feed(events, args, anchor, shift)
    # A broken pipe (`| head`) and Ctrl-C are handled once, in callfloor.cli.main.
    if args.output == "-":
        _write(events, sys.stdout.buffer, args, anchor, shift)
        return 0
    try:
        out = open(args.output, "wb")  # noqa: SIM115 - closed below, after errors
    except OSError as exc:
        return _error(f"--output {args.output}: {exc.strerror}")
    with out:
        _write(events, out, args, anchor, shift)
    return 0


def _feed(
    events: Iterator[dict[str, object]], args: argparse.Namespace, start: float, shift: float
) -> int:
    """Send the events to a live service (--post or --mqtt); 1 if it rejected any."""
    feed: Feed
    try:
        if args.post is not None:
            feed = HttpFeed(args.post, args.token or os.environ.get("CALLFLOOR_TOKEN"))
        else:
            feed = MqttFeed(args.mqtt, client_id=args.client_id)
    except FeedError as exc:
        return _error(str(exc))
    try:
        for batch in paced(
            events, start=start, realtime=args.realtime, speed=args.speed, shift=shift
        ):
            feed.send(batch)
    except FeedError as exc:
        print(feed.summary(), file=sys.stderr)
        return _error(str(exc))
    finally:
        feed.close()
    print(f"{PROG}: {feed.summary()}", file=sys.stderr)
    return 1 if isinstance(feed, HttpFeed) and feed.rejected else 0


def _write(
    events: Iterator[dict[str, object]],
    out: BinaryIO,
    args: argparse.Namespace,
    start: float,
    shift: float,
) -> None:
    # Real time: everything due is written and flushed before each sleep.
    encode = msgspec.json.Encoder().encode_lines
    for batch in paced(
        events,
        start=start,
        realtime=args.realtime,
        speed=args.speed,
        shift=shift,
        batch_max=_BATCH,
    ):
        out.write(encode(batch))
        if args.realtime:
            out.flush()
    out.flush()
