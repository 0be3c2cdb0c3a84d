"""``callfloor erlang``: Erlang C / Erlang A staffing for one queue, from the command line."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from typing import Any, Final

from callfloor.cli import validators as v
from callfloor.processors import erlang

PROG: Final[str] = "callfloor erlang"

OUTPUTS: Final[tuple[str, ...]] = ("text", "json")

_DESCRIPTION: Final[str] = """\
Staffing for one queue from its arrival rate, average handle time (AHT) and
service-level threshold.  Without --patience-s the model is Erlang C (callers
never hang up); with it, Erlang A (M/M/n+M: callers hang up after an exponential
patience with that mean).
"""

_EPILOG: Final[str] = f"""\
output:
  On a terminal a small table for people; otherwise (a pipe, a file) one JSON
  object.  --output text or --output json chooses explicitly.

output fields (the JSON object has exactly these keys):
  offered_load_erlangs  rate x AHT
  p_wait                probability a caller has to wait
  asa_s                 mean wait over ALL arrivals in seconds (answered at once
                        = 0 s; with --patience-s, abandoned callers count their
                        time until hanging up)
  service_level         callers answered within --threshold-s / offered callers
                        (abandoned callers are never in SL)
  occupancy             carried load per agent
  p_abandon             probability a caller hangs up; null for Erlang C, whose
                        callers never hang up
  required_agents       least agents meeting --target (Erlang C: always more
                        than the offered load; Erlang A: may be fewer)
  scheduled_agents      ceil(required_agents / (1 - shrinkage))

  p_wait .. p_abandon describe --agents N if given, else required_agents.

Erlang C with N <= offered load has no steady state (the queue grows without
bound).  The limiting values are reported: p_wait 1.0, service_level 0.0,
occupancy 1.0 (capped: agents are never idle) and asa_s null in JSON ("inf" in
text), meaning the mean wait is unbounded.

The search for required_agents stops at --max-agents (default {erlang.DEFAULT_MAX_AGENTS}):
a target that no staffing up to it meets is an error (exit 2), never the limit
shown as an answer.

example:
  callfloor erlang --rate-per-s 0.0555556 --aht-s 180 --threshold-s 20 \\
      --target 0.8 --shrinkage 0.3
"""


# (option, Namespace attribute, check, required). run() re-applies the checks
# because it is public and may be handed a Namespace that never went through the
# parser.
_OPTIONS: Final[tuple[tuple[str, str, Callable[[object], Any], bool], ...]] = (
    ("--rate-per-s", "rate_per_s", v.non_negative, True),
    ("--aht-s", "aht_s", v.positive, True),
    ("--threshold-s", "threshold_s", v.non_negative, True),
    ("--agents", "agents", v.non_negative_int, False),
    ("--target", "target", v.target_fraction, True),
    ("--patience-s", "patience_s", v.positive, False),
    ("--shrinkage", "shrinkage", v.fraction, True),
    ("--max-agents", "max_agents", v.positive_int, True),
)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``erlang`` subcommand to ``subparsers``; it dispatches to :func:`run`."""
    p = subparsers.add_parser(
        "erlang",
        help="Erlang C / Erlang A staffing for one queue",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--rate-per-s",
        type=v.non_negative,
        required=True,
        metavar="X",
        help="offered calls per second (e.g. 100 calls per 30 min = 0.0556)",
    )
    p.add_argument(
        "--aht-s",
        type=v.positive,
        required=True,
        metavar="S",
        help="average handle time in seconds (talk + hold + wrap-up), > 0",
    )
    p.add_argument(
        "--threshold-s",
        type=v.non_negative,
        required=True,
        metavar="T",
        help="service-level threshold in seconds: answered within T counts as in SL",
    )
    p.add_argument(
        "--agents",
        type=v.non_negative_int,
        default=None,
        metavar="N",
        help="evaluate this many agents (default: evaluate required_agents)",
    )
    p.add_argument(
        "--target",
        type=v.target_fraction,
        default=0.8,
        help="service-level target as a fraction in (0, 1] (default: 0.8)",
    )
    p.add_argument(
        "--patience-s",
        type=v.positive,
        default=None,
        metavar="P",
        help="mean caller patience in seconds; switches to Erlang A (default: Erlang C)",
    )
    p.add_argument(
        "--shrinkage",
        type=v.fraction,
        default=0.0,
        help="fraction of paid time agents are unavailable, in [0, 1) (default: 0.0, "
        "so scheduled_agents == required_agents)",
    )
    p.add_argument(
        "--max-agents",
        type=v.positive_int,
        default=erlang.DEFAULT_MAX_AGENTS,
        metavar="N",
        help="search limit for required_agents; --agents may not exceed it "
        f"(default: {erlang.DEFAULT_MAX_AGENTS})",
    )
    p.add_argument(
        "--output",
        choices=OUTPUTS,
        default=None,
        help="text: a table for people; json: one JSON object "
        "(default: text on a terminal, json otherwise)",
    )
    p.set_defaults(func=run)


class _Unanswerable(Exception):
    """Valid options that have no answer (beyond the search limit, or not evaluable)."""


def _validate(args: argparse.Namespace) -> str | None:
    """Return an error message for the first invalid option, or None."""
    if getattr(args, "max_agents", None) is None:
        args.max_agents = erlang.DEFAULT_MAX_AGENTS
    for option, attr, check, required in _OPTIONS:
        value = getattr(args, attr, None)
        if value is None:
            if required:
                return f"argument {option}: is required"
            setattr(args, attr, None)
            continue
        try:
            setattr(args, attr, check(value))
        except argparse.ArgumentTypeError as exc:
            return f"argument {option}: {exc}"
    output = getattr(args, "output", None)
    if output is not None and output not in OUTPUTS:
        return f"argument --output: invalid choice: {output!r} (choose from text, json)"
    if args.agents is not None and args.agents > args.max_agents:
        return (
            f"argument --agents: {args.agents} is above the search limit "
            f"--max-agents {args.max_agents}"
        )
    return None


def _compute(args: argparse.Namespace) -> dict[str, float | int | None]:
    """Every output field; raises _Unanswerable when there is no answer to give."""
    rate: float = args.rate_per_s
    aht: float = args.aht_s
    threshold: float = args.threshold_s
    target: float = args.target
    patience: float | None = args.patience_s
    limit: int = args.max_agents
    load = rate * aht

    try:
        if patience is None:
            required = erlang.least_agents_c(load, aht, threshold, target, limit)
        else:
            required = erlang.least_agents_a(rate, aht, patience, threshold, target, limit)
        if required is None:
            raise _Unanswerable(
                f"no staffing up to {limit} agents meets the target {target:g} within "
                f"{threshold:g} s for an offered load of {load:g} erlangs "
                "(the search limit; raise --max-agents to search further)"
            )
        n: int = required if args.agents is None else args.agents

        p_abandon: float | None
        if patience is None:
            p_wait = erlang.erlang_c(n, load)
            sl = erlang.service_level_c(n, load, threshold, aht)
            asa = erlang.asa_c(n, load, aht)
            # n <= load: agents never idle in the limit, so occupancy is capped at 1.
            occupancy = 1.0 if n <= load else load / n
            p_abandon = None  # Erlang C callers never hang up: the model has no answer
        else:
            res = erlang.erlang_a(n, rate, aht, patience, threshold)
            p_wait, sl, asa = res.p_wait, res.service_level, res.asa_s
            occupancy, p_abandon = res.occupancy, res.p_abandon
    except ValueError as exc:
        # Valid options whose model cannot be evaluated (e.g. an astronomically long
        # Erlang A queue): still the caller's input.
        raise _Unanswerable(str(exc)) from None

    return {
        "offered_load_erlangs": load,
        "p_wait": p_wait,
        # JSON has no infinity; null means "unbounded" (documented in --help).
        "asa_s": asa if math.isfinite(asa) else None,
        "service_level": sl,
        "occupancy": occupancy,
        "p_abandon": p_abandon,
        "required_agents": required,
        "scheduled_agents": erlang.scheduled_agents(required, args.shrinkage),
    }


def _pct(value: float | int | None) -> str:
    return "n/a" if value is None else f"{100.0 * value:.1f}%"


def render_text(args: argparse.Namespace, out: dict[str, float | int | None]) -> str:
    """The result as a small aligned table for people."""
    erlang_c = args.patience_s is None
    model = "Erlang C" if erlang_c else f"Erlang A, patience {args.patience_s:g} s"
    n = out["required_agents"] if args.agents is None else args.agents
    asa = out["asa_s"]
    rows = [
        ("offered load", f"{out['offered_load_erlangs']:.2f} erlangs"),
        (
            "required agents",
            f"{out['required_agents']}  (target {_pct(args.target)} in {args.threshold_s:g} s)",
        ),
        ("scheduled agents", f"{out['scheduled_agents']}  (shrinkage {_pct(args.shrinkage)})"),
        ("", ""),
        (f"with {n} agents", ""),
        ("service level", _pct(out["service_level"])),
        ("P(wait)", _pct(out["p_wait"])),
        ("ASA, all calls", "inf (queue unstable)" if asa is None else f"{asa:.1f} s"),
        ("occupancy", _pct(out["occupancy"])),
        (
            "abandoned",
            "n/a (Erlang C: callers never hang up)" if erlang_c else _pct(out["p_abandon"]),
        ),
    ]
    lines = [f"{model}: {args.rate_per_s:g} calls/s, AHT {args.aht_s:g} s"]
    lines += [f"  {label:<18}{value}".rstrip() for label, value in rows]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """Run ``callfloor erlang`` for parsed ``args``; return the process exit code.

    Prints the result on stdout and returns 0; on invalid input, or when no staffing
    within the search limit meets the target, prints a message on stderr and
    returns 2 (argparse's convention for a usage error).
    """
    problem = _validate(args)
    if problem is not None:
        print(f"{PROG}: error: {problem}", file=sys.stderr)
        return 2
    try:
        out = _compute(args)
    except _Unanswerable as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    output = args.output
    if output is None:
        output = "text" if sys.stdout.isatty() else "json"
    if output == "text":
        sys.stdout.write(render_text(args, out))
    else:
        sys.stdout.write(json.dumps(out, allow_nan=False) + "\n")
    return 0
