"""``callfloor dashboards``: write the Grafana boards generated from the metric catalogue."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Final

PROG: Final = "callfloor dashboards"
DEFAULT_OUT: Final = "deploy/grafana/dashboards"

_DESCRIPTION: Final = """\
Write the Grafana boards ("Call floor", "Agents", "Operations", and "Alerts" once
alert families exist) as dashboard JSON, generated from the metric catalogue's
hints. Thresholds come from the configuration: each queue's sl_target (red below,
amber within 5 points) and sl_threshold_s (waits amber from half of it, red from it);
without --config, the defaults. The same arguments always write the same bytes.
"""

_EPILOG: Final = """\
examples:
  callfloor dashboards --out deploy/grafana/dashboards --config deploy/callfloor.toml
  callfloor dashboards --check --config deploy/callfloor.toml   # exit 1 if out of date
"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``dashboards`` subcommand (its handler is :func:`run`)."""
    p = subparsers.add_parser(
        "dashboards",
        help="write the Grafana boards generated from the metric catalogue",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--out",
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"directory of the JSON files (default {DEFAULT_OUT})",
    )
    p.add_argument(
        "--config",
        metavar="CFG",
        help="TOML configuration whose queues give the thresholds (default: built-in)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the files in --out differ from what would be written",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``callfloor dashboards``; returns the exit code (1: --check found differences)."""
    try:
        from callfloor import dashboards
    except ImportError as exc:  # grafana-foundation-sdk is an optional dependency
        print(
            f"{PROG}: error: {exc.name or exc} is not installed: pip install 'callfloor[grafana]'",
            file=sys.stderr,
        )
        return 2
    config = dashboards.board_config(args.config)
    out = Path(args.out)
    if args.check:
        problems = dashboards.check(out, config)
        for problem in problems:
            print(f"{PROG}: {problem}", file=sys.stderr)
        if problems:
            config_arg = f" --config {args.config}" if args.config else ""
            print(
                f"{PROG}: regenerate with: callfloor dashboards --out {out}{config_arg}",
                file=sys.stderr,
            )
            return 1
        return 0
    for path in dashboards.write(out, config):
        print(path)
    return 0
