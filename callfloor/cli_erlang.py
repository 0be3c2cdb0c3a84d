"""``callfloor erlang``: Erlang C / Erlang A staffing for one queue, from the command line.

``callfloor.cli`` wires this in with :func:`add_parser` and dispatches to :func:`run`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from typing import Any, Final

from callfloor.processors import erlang

_PROG: Final[str] = "callfloor erlang"

_DESCRIPTION: Final[str] = """\
Staffing for one queue from its arrival rate, average handle time (AHT) and
service-level threshold.  Without --patience-s the model is Erlang C (callers
never hang up); with it, Erlang A (M/M/n+M: callers hang up after an exponential
patience with that mean).
"""

_EPILOG: Final[str] = """\
output fields (--output json prints one object with exactly these keys):
  offered_load_erlangs  rate x AHT
  p_wait                probability a caller has to wait
  asa_s                 mean wait over ALL arrivals in seconds (answered at once
                        = 0 s; with --patience-s, abandoned callers count their
                        time until hanging up)
  service_level         callers answered within --threshold-s / offered callers
                        (abandoned callers are never in SL)
  occupancy             carried load per agent
  p_abandon             probability a caller hangs up (0 for Erlang C)
  required_agents       least agents meeting --target (Erlang C: always more
                        than the offered load; Erlang A: may be fewer)
  scheduled_agents      ceil(required_agents / (1 - shrinkage))

  p_wait .. p_abandon describe --agents N if given, else required_agents.

Erlang C with N <= offered load has no steady state (the queue grows without
bound).  The limiting values are reported: p_wait 1.0, service_level 0.0,
occupancy 1.0 (capped: agents are never idle) and asa_s null in JSON ("inf" in
text), meaning the mean wait is unbounded.

example:
  callfloor erlang --rate-per-s 0.0555556 --aht-s 180 --threshold-s 20 \\
      --target 0.8 --shrinkage 0.3
"""


# ------------------------------------------------------------------ value checks
# Each check is used both as an argparse ``type`` (so a bad value is reported
# while parsing, with exit code 2) and again by run(), because run() is public and
# may be handed a Namespace that never went through the parser.


def _finite(text: object) -> float:
    # Values come from the command line (str) or from a hand-built Namespace.
    if isinstance(text, bool):
        raise argparse.ArgumentTypeError(f"not a number: {text!r}")
    try:
        value = float(text) if isinstance(text, int | float) else float(str(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number (got {text!r})")
    return value


def _non_negative(text: object) -> float:
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (got {value:g})")
    return value


def _positive(text: object) -> float:
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0 (got {value:g})")
    return value


def _target(text: object) -> float:
    value = _finite(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(
            f"must be a fraction in (0, 1], e.g. 0.8 for 80% (got {value:g})"
        )
    return value


def _shrinkage(text: object) -> float:
    value = _finite(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(
            f"must be a fraction in [0, 1), e.g. 0.3 for 30% (got {value:g})"
        )
    return value


def _agents(text: object) -> int:
    if isinstance(text, bool):
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}")
    if isinstance(text, int):
        value = text
    else:
        try:
            value = int(str(text))
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (got {value})")
    return value


# (option, Namespace attribute, check, required)
_OPTIONS: Final[tuple[tuple[str, str, Callable[[object], Any], bool], ...]] = (
    ("--rate-per-s", "rate_per_s", _non_negative, True),
    ("--aht-s", "aht_s", _positive, True),
    ("--threshold-s", "threshold_s", _non_negative, True),
    ("--agents", "agents", _agents, False),
    ("--target", "target", _target, True),
    ("--patience-s", "patience_s", _positive, False),
    ("--shrinkage", "shrinkage", _shrinkage, True),
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
        type=_non_negative,
        required=True,
        metavar="X",
        help="offered calls per second (e.g. 100 calls per 30 min = 0.0556)",
    )
    p.add_argument(
        "--aht-s",
        type=_positive,
        required=True,
        metavar="S",
        help="average handle time in seconds (talk + hold + wrap-up), > 0",
    )
    p.add_argument(
        "--threshold-s",
        type=_non_negative,
        required=True,
        metavar="T",
        help="service-level threshold in seconds: answered within T counts as in SL",
    )
    p.add_argument(
        "--agents",
        type=_agents,
        default=None,
        metavar="N",
        help="evaluate this many agents (default: evaluate required_agents)",
    )
    p.add_argument(
        "--target",
        type=_target,
        default=0.8,
        help="service-level target as a fraction in (0, 1] (default: 0.8)",
    )
    p.add_argument(
        "--patience-s",
        type=_positive,
        default=None,
        metavar="P",
        help="mean caller patience in seconds; switches to Erlang A (default: Erlang C)",
    )
    p.add_argument(
        "--shrinkage",
        type=_shrinkage,
        default=0.0,
        help="fraction of paid time agents are unavailable, in [0, 1) (default: 0.0, "
        "so scheduled_agents == required_agents)",
    )
    p.add_argument(
        "--output",
        choices=("json", "text"),
        default="json",
        help="json: one JSON object (default); text: a short table for supervisors",
    )
    p.set_defaults(func=run)


def _validate(args: argparse.Namespace) -> str | None:
    """Return an error message for the first invalid option, or None."""
    for option, attr, check, required in _OPTIONS:
        value = getattr(args, attr, None)
        if value is None:
            if required:
                return f"argument {option}: is required"
            continue
        try:
            setattr(args, attr, check(value))
        except argparse.ArgumentTypeError as exc:
            return f"argument {option}: {exc}"
    if getattr(args, "output", "json") not in ("json", "text"):
        return f"argument --output: invalid choice: {args.output!r} (choose from json, text)"
    return None


def _compute(args: argparse.Namespace) -> dict[str, float | int | None]:
    """Compute every output field; raises ValueError if the model cannot be evaluated."""
    rate: float = args.rate_per_s
    aht: float = args.aht_s
    threshold: float = args.threshold_s
    target: float = args.target
    patience: float | None = args.patience_s
    load = rate * aht

    if patience is None:
        required = erlang.required_agents_c(load, aht, threshold, target)
    else:
        required = erlang.required_agents_a(rate, aht, patience, threshold, target)
    n: int = required if args.agents is None else args.agents

    asa: float
    if patience is None:
        p_wait = erlang.erlang_c(n, load)
        sl = erlang.service_level_c(n, load, threshold, aht)
        asa = erlang.asa_c(n, load, aht)
        # n <= load: agents never idle in the limit, so occupancy is capped at 1.
        occupancy = 1.0 if n <= load else load / n
        p_abandon = 0.0
    else:
        res = erlang.erlang_a(n, rate, aht, patience, threshold)
        p_wait, sl, asa = res.p_wait, res.service_level, res.asa_s
        occupancy, p_abandon = res.occupancy, res.p_abandon

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


def _render_text(args: argparse.Namespace, out: dict[str, float | int | None]) -> str:
    model = "Erlang C" if args.patience_s is None else f"Erlang A, patience {args.patience_s:g} s"
    n = out["required_agents"] if args.agents is None else args.agents
    asa = out["asa_s"]
    rows = [
        ("offered load", f"{out['offered_load_erlangs']:.2f} erlangs"),
        (
            "required agents",
            f"{out['required_agents']}  (target {_pct(args.target)} in {args.threshold_s:g} s)",
        ),
        ("scheduled agents", f"{out['scheduled_agents']}  (shrinkage {_pct(args.shrinkage)})"),
        (f"-- with {n} agents", ""),
        ("service level", _pct(out["service_level"])),
        ("P(wait)", _pct(out["p_wait"])),
        ("ASA, all calls", "inf (queue unstable)" if asa is None else f"{asa:.1f} s"),
        ("occupancy", _pct(out["occupancy"])),
        ("abandoned", _pct(out["p_abandon"])),
    ]
    lines = [f"{model}: {args.rate_per_s:g} calls/s, AHT {args.aht_s:g} s"]
    lines += [f"  {label:<18}{value}".rstrip() for label, value in rows]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """Run ``callfloor erlang`` for parsed ``args``; return the process exit code.

    Prints the result on stdout and returns 0; on invalid input prints a message
    naming the option on stderr and returns 2 (argparse's convention).
    """
    problem = _validate(args)
    if problem is not None:
        print(f"{_PROG}: error: {problem}", file=sys.stderr)
        return 2
    try:
        out = _compute(args)
    except ValueError as exc:
        # Valid options whose model cannot be evaluated (e.g. an astronomically long
        # Erlang A queue): still the caller's input, so the usage exit code.
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 2
    if getattr(args, "output", "json") == "text":
        sys.stdout.write(_render_text(args, out))
    else:
        sys.stdout.write(json.dumps(out, allow_nan=False) + "\n")
    return 0
