"""``docs/metrics.md``, generated from the catalogue.

``python -m callfloor.metrics.docs`` prints it; ``--write PATH`` writes it and
``--check PATH`` fails (exit 1) when the file differs from what the catalogue says. A
test runs the check, so the page cannot drift from the families the collector exposes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from callfloor.metrics.catalogue import CATALOGUE, LABELS, Family, Group, MetricType

_INTRO = """\
# Metrics

`GET /metrics` serves the Prometheus text format (0.0.4). This page lists every metric
family callfloor exposes: its type, its labels, its unit and what it means. It is
generated from the catalogue in `callfloor/metrics/catalogue.py` (`python -m
callfloor.metrics.docs --write docs/metrics.md`), and a test fails when the two differ.

## Reading the numbers

- **Time.** Every value is read at the processor clock, which trails the wall clock by
  the watermark delay (about a second); `callfloor_clock_seconds` says which instant a
  scrape describes. Before the first event or tick only the configuration and lifetime
  families have samples.
- **Absent, not NaN.** A rate over nothing (a service level with no leg past its
  threshold, an ASA with nothing answered, occupancy with no available agent) has no
  sample rather than NaN or 0. Use `absent()` or `or` in PromQL where that matters.
- **Windows.** `*_window_*_calls` and the rate families are per window: the configured
  rolling windows (`15m`, `60m` by default), `interval` (the site's current interval)
  and `today` (since site-local midnight). They are gauges: a rolling window forgets.
  For `rate()` and `increase()` use the lifetime `callfloor_queue_*_total` counters.
- **Zero series.** `callfloor_events_total`, `callfloor_events_rejected_total` and the
  violation families start at 0 for every type, reason, and kind the configuration can
  raise, so alert rules see 0 rather than nothing.
- **Names and units.** Seconds and ratios (0..1) throughout; `_total` is on counters and
  only on counters. Counters reset only when the process restarts.
- **Per-agent series** are off by default (10,000 agents add about 60,000 series). Turn
  them on with `[metrics] per_agent_series = true`. They cover agents that sent a valid
  `agent_state`; `callfloor_violations_active` then carries an `agent` label and has a
  series only per agent, kind and severity with an active violation (absent means 0:
  `sum by (kind, severity) (callfloor_violations_active)`).
- **Service families** (HTTP, ingest, sources) come from the live service
  (`callfloor serve`, `callfloor demo`); a registry built around a bare processor has
  none.

Example queries:

```promql
# Service level of each queue over the rolling 15 minutes
callfloor_queue_service_level_ratio{window="15m"}
# Below target, with the target from the queue's own configuration
callfloor_queue_service_level_ratio{window="15m"}
  < on(queue) callfloor_queue_service_level_target_ratio
# Calls offered per minute, per site (lifetime counter joined to the queue's site)
sum by (site) (rate(callfloor_queue_offered_total[5m])
  * on(queue) group_left(site) callfloor_queue_info) * 60
# Not-ready agents per team (per-agent series on)
count by (team) (callfloor_agent_state{state="not_ready"})
# Agents' display names next to their active violations (per-agent series on)
callfloor_violations_active * on(agent) group_left(name, team) callfloor_agent_info
```
"""

_SECTIONS: tuple[tuple[Group, str, str], ...] = (
    (
        Group.QUEUE,
        "Queues",
        "One series set per listed queue (configured, or named by a valid `call_queued`).",
    ),
    (
        Group.SITE,
        "Sites",
        "Roll-ups of the site's queues, as in the replay document: counts added, rates "
        "formed with the site's own formula; agents counted once per site.",
    ),
    (Group.PROCESSOR, "Violations and the processor", "Always exposed."),
    (
        Group.AGENT,
        "Agents (per-agent series)",
        "Only with `[metrics] per_agent_series = true`. `team` and `name` are empty when the "
        "agent's `agent_state` events carry none.",
    ),
    (
        Group.SERVICE,
        "The live service",
        "Exposed by the live service only (the HTTP server, ingest rounds, sources, the "
        "change stream).",
    ),
)

_UNITS = {
    "": "",
    "seconds": "seconds",
    "ratio": "ratio 0..1",
    "per_second": "per second",
    "unix_seconds": "Unix time, seconds",
}


def _labels(family: Family) -> str:
    names = list(family.labels)
    if family.type is MetricType.HISTOGRAM:
        names.append("le")
    text = ", ".join(f"`{n}`" for n in names) or "-"
    if family.agent_labels is not None:
        per_agent = ", ".join(f"`{n}`" for n in family.agent_labels)
        text += f" (per-agent series on: {per_agent})"
    return text


def _meaning(family: Family) -> str:
    text = family.help.replace("|", "\\|")
    if family.type is MetricType.HISTOGRAM:
        text += f" Samples `{family.name}_bucket`, `_sum`, `_count`."
    elif family.type is MetricType.SUMMARY:
        text += f" Samples `{family.name}_sum`, `_count`."
    return text


def render_markdown() -> str:
    """The whole of ``docs/metrics.md``."""
    out = [_INTRO]
    for group, title, lead in _SECTIONS:
        out.append(f"\n## {title}\n\n{lead}\n\n")
        out.append("| family | type | labels | unit | meaning |\n|---|---|---|---|---|\n")
        for f in CATALOGUE:
            if f.group is group:
                out.append(
                    f"| `{f.name}` | {f.type} | {_labels(f)} | {_UNITS[f.unit]} | {_meaning(f)} |\n"
                )
    out.append("\n## Labels\n\n| label | meaning |\n|---|---|\n")
    for name, meaning in LABELS.items():
        out.append(f"| `{name}` | {meaning} |\n")
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    """Print, write or check ``docs/metrics.md``."""
    parser = argparse.ArgumentParser(description="docs/metrics.md from the metric catalogue")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", type=Path, metavar="PATH", help="write the page to PATH")
    action.add_argument("--check", type=Path, metavar="PATH", help="fail if PATH differs")
    args = parser.parse_args(argv)
    text = render_markdown()
    if args.write is not None:
        args.write.write_text(text, encoding="utf-8")
    elif args.check is not None:
        current = args.check.read_text(encoding="utf-8") if args.check.exists() else ""
        if current != text:
            print(
                f"{args.check} is out of date with callfloor/metrics/catalogue.py; run "
                f"python -m callfloor.metrics.docs --write {args.check}",
                file=sys.stderr,
            )
            return 1
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
