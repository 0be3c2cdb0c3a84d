"""The ``callfloor`` command: replay, erlang, simulate, demo, serve."""

from __future__ import annotations

import argparse
import sys

import msgspec

from callfloor import __version__, cli_erlang, cli_simulate
from callfloor.cli_args import instant
from callfloor.config import ConfigError, load_config


def _add_replay(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from callfloor.replay import FORMATS

    p = sub.add_parser(
        "replay",
        help="replay event files and print the state document (SPEC §7)",
        description="Read events in file order, run the live processing with the clock "
        "following event time, and print the state at --at as one JSON document.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="event files, read in order")
    p.add_argument("--config", metavar="CFG", help="TOML configuration (default: built-in)")
    p.add_argument("--output", choices=("json",), default="json", help="output format")
    p.add_argument(
        "--at",
        type=instant,
        metavar="TS",
        help="document time, epoch seconds or RFC 3339 (default: the last valid event's ts)",
    )
    p.add_argument("--format", choices=FORMATS, default="ndjson", help="input format")
    p.set_defaults(func=_run_replay)


def _run_replay(args: argparse.Namespace) -> int:
    from callfloor.replay import replay_document

    config = load_config(args.config)
    for path in args.files:
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            print(f"callfloor replay: {path}: {exc.strerror}", file=sys.stderr)
            return 2
    doc = replay_document(list(args.files), config, args.at, args.format)
    sys.stdout.buffer.write(msgspec.json.encode(doc) + b"\n")
    sys.stdout.flush()
    return 0


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="simulated floor -> processors -> HTTP on localhost (no other services needed)",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--agents", type=int, default=60)
    p.add_argument("--queues", type=int, default=8)
    p.add_argument(
        "--speed", type=float, default=1.0, help="simulated seconds per wall-clock second"
    )
    p.add_argument(
        "--config", metavar="CFG", help="TOML configuration (default: the simulated floor's)"
    )
    p.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from callfloor.service import run_demo

    return run_demo(args)


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the live service: HTTP ingest, metrics and API")
    p.add_argument("--config", metavar="CFG", help="TOML configuration (default: built-in)")
    p.add_argument("--host", help="listen address (default: config [http] host)")
    p.add_argument("--port", type=int, help="listen port (default: config [http] port)")
    p.set_defaults(func=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    from callfloor.service import run_serve

    return run_serve(args)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="callfloor", description="Real-time call-floor monitoring stream processor."
    )
    parser.add_argument("--version", action="version", version=f"callfloor {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_replay(sub)
    cli_erlang.add_parser(sub)
    cli_simulate.add_parser(sub)
    _add_demo(sub)
    _add_serve(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"callfloor: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code
