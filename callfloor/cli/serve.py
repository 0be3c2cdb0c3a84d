"""``callfloor serve`` (the live service) and ``callfloor demo`` (a simulated floor).

Both hand an argparse Namespace to :mod:`callfloor.service`: ``serve`` with
``config``, ``host`` and ``port``; ``demo`` with ``host``, ``port``, ``seed``,
``agents``, ``queues``, ``speed`` and ``config``.
"""

from __future__ import annotations

import argparse

from callfloor.cli import validators as v


def add_serve_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``serve`` subcommand (its handler is :func:`run_serve`)."""
    p = subparsers.add_parser(
        "serve",
        help="run the live service: HTTP ingest, metrics and API",
        description="Run the production process: the configured sources, HTTP ingest, "
        "Prometheus /metrics and the JSON API, until Ctrl-C.",
    )
    p.add_argument("--config", metavar="CFG", help="TOML configuration (default: built-in)")
    p.add_argument("--host", help="listen address (default: config [http] host)")
    p.add_argument(
        "--port",
        type=v.port,
        metavar="PORT",
        help="listen port (default: config [http] port)",
    )
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """Run ``callfloor serve`` until it is stopped; returns the exit code."""
    from callfloor.service import run_serve as serve

    return serve(args)


def add_demo_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` subcommand (its handler is :func:`run_demo`)."""
    p = subparsers.add_parser(
        "demo",
        help="simulated floor -> processors -> HTTP on localhost (no other services needed)",
        description="Run the service on a simulated floor whose clock is the wall clock, "
        "so every number moves: nothing else is needed.",
    )
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument(
        "--port",
        type=v.port,
        default=8080,
        metavar="PORT",
        help="listen port (default 8080)",
    )
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--agents", type=v.positive_int, default=60, help="agents (default 60)")
    p.add_argument("--queues", type=v.positive_int, default=8, help="queues (default 8)")
    p.add_argument(
        "--speed",
        type=v.positive,
        default=1.0,
        metavar="X",
        help="simulated seconds per wall-clock second (default 1)",
    )
    p.add_argument(
        "--config", metavar="CFG", help="TOML configuration (default: the simulated floor's)"
    )
    p.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Run ``callfloor demo`` until it is stopped; returns the exit code."""
    from callfloor.service import run_demo as demo

    return demo(args)
