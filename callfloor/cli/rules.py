"""``callfloor rules check CONFIG`` and ``callfloor rules test CONFIG EVENTS...``.

``check`` validates the ``[alerts]`` rules (a bad one exits 2 naming file, key and
problem) and prints what each rule resolves to per queue: the thresholds the default
rules take from the queue's own target and threshold. ``test`` replays events and
prints the alert timeline, the same list ``callfloor replay`` puts in its document, so
a supervisor can try a rule on yesterday's floor before turning it on.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "rules", help="check alert rules, or try them on recorded events", description=__doc__
    )
    sub = parser.add_subparsers(dest="rules_command", required=True, metavar="SUBCOMMAND")
    check = sub.add_parser("check", help="validate the rules and show them per queue")
    check.add_argument("config", help="the configuration file (TOML)")
    check.set_defaults(func=_check)
    test = sub.add_parser("test", help="replay events and print the alert timeline")
    test.add_argument("config", help="the configuration file (TOML)")
    test.add_argument("events", nargs="+", help="event files (NDJSON, or --format)")
    test.add_argument("--at", type=float, default=None, help="the instant (epoch seconds)")
    test.add_argument("--format", default="auto", help="input format, as for replay")
    test.add_argument("--json", action="store_true", help="print the alert list as JSON")
    test.set_defaults(func=_test)


def _check(args: argparse.Namespace) -> int:
    from callfloor.alerts.rules import Threshold
    from callfloor.dashboards import board_config

    # Without the process's own sections: their secrets need not be set to check rules.
    config = board_config(args.config)
    rules = config.alerts.rules
    print(f"{config.source}: {len(rules)} rules in force")
    queues = sorted(config.queues)

    def resolve(t: Threshold, queue: str | None) -> str:
        if t.ref is None:
            return f"{t.constant:g}"
        if queue is not None and t.ref in ("sl_target", "sl_threshold_s", "short_abandon_s"):
            policy = config.queues[queue].policy
            return f"{t.factor * getattr(policy, t.ref):g}"
        return str(t)

    for rule in rules:
        origin = "default" if rule.default else "configured"
        head = f"{rule.name} ({origin}, {rule.severity}, scope {rule.scope_kind}s:{rule.glob}"
        extras = []
        if rule.for_s:
            extras.append(f"for {rule.for_s:g}s")
        if rule.min_volume:
            extras.append(f"min_volume {rule.min_volume} over {rule.volume_window}")
        if rule.escalate:
            extras.append(f"escalate to {rule.escalate.severity} after {rule.escalate.after_s:g}s")
        if rule.repeat_s:
            extras.append(f"repeat every {rule.repeat_s:g}s")
        if rule.sinks is not None:
            extras.append("sinks " + ", ".join(rule.sinks))
        print(head + ("; " + "; ".join(extras) if extras else "") + ")")
        if rule.violation is not None:
            print(f"  an agent's {rule.violation} violation (SPEC §4) while it lasts")
            continue
        covered: list[str | None] = (
            [q for q in queues if rule.covers(q)] if rule.scope_kind == "queue" else []
        )
        for queue in covered or [None]:
            parts = []
            for c in rule.conditions:
                where = f"[{c.window}]" if c.window else ""
                parts.append(f"{c.metric}{where} {c.op} {resolve(c.threshold, queue)}")
            clear = f", clears at {resolve(rule.clear, queue)}" if rule.clear is not None else ""
            label = f"  {queue}: " if queue is not None else "  "
            print(label + " and ".join(parts) + clear)
    return 0


def _time(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _test(args: argparse.Namespace) -> int:
    import msgspec

    from callfloor.config import load_config
    from callfloor.replay import ReplayInputError, run_replay

    config = load_config(args.config)
    try:
        result = run_replay(args.events, config, args.at, args.format)
    except ReplayInputError as exc:
        print(f"callfloor rules test: {exc}", file=sys.stderr)
        return 1
    alerts = result.processor.view.alerts()
    if args.json:
        print(json.dumps(msgspec.to_builtins(alerts), indent=2))
        return 0
    print(f"as of {_time(result.processor.clock)}: {len(alerts)} alerts")
    for a in alerts:
        value = "null" if a.value is None else f"{a.value:.6g}"
        print(
            f"{_time(a.since)}  {a.rule:<26} {a.scope:<24} {a.severity:<8} {a.state:<8} "
            f"fired {_time(a.fired_at)}  ended {_time(a.ended_at)}  value {value}"
        )
    return 0
