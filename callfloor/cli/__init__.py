"""The ``callfloor`` command: replay, convert, erlang, simulate, demo, serve, dashboards,
rules.

One module per command (:mod:`~callfloor.cli.replay`, :mod:`~callfloor.cli.erlang`,
:mod:`~callfloor.cli.simulate`, :mod:`~callfloor.cli.serve` for serve and demo), each
with ``add_parser`` and a handler that returns the exit code; shared argument types
live in :mod:`~callfloor.cli.validators`. Commands import their heavy dependencies
when they run, so ``callfloor --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys

from callfloor import __version__
from callfloor.cli import convert, dashboards, erlang, replay, rules, serve, simulate
from callfloor.config import ConfigError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="callfloor", description="Real-time call-floor monitoring stream processor."
    )
    parser.add_argument("--version", action="version", version=f"callfloor {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    replay.add_parser(sub)
    convert.add_parser(sub)
    erlang.add_parser(sub)
    simulate.add_parser(sub)
    serve.add_demo_parser(sub)
    serve.add_serve_parser(sub)
    dashboards.add_parser(sub)
    rules.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    if sys.stderr is None:
        # Started with stderr closed (`2>&-`): Python leaves sys.stderr None, and
        # print(file=None) would write people's lines into stdout's document. Send them
        # to /dev/null (which also takes descriptor 2, so no file opened later gets it).
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (for the life of the process)
    parser = build_parser()
    args = parser.parse_args(argv)
    if argv is None and getattr(args, "fast_exit", False):
        # A process run (not a call from Python): once the answer is written, leave
        # without freeing the state object by object. Tearing down a replay's
        # millions of objects (and a last full collection over them) took a quarter
        # of a one-day replay's time; the operating system reclaims the memory at once.
        code = _main(args)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return _main(args)


def _main(args: argparse.Namespace) -> int:
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"callfloor: configuration error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly like other Unix tools.
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        return 130
    return code


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the exit-time flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
