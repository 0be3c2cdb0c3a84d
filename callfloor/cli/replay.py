"""``callfloor replay``: event files through the processor, the SPEC §7 document out.

stdout carries exactly the document (one JSON line), for scripts and acceptance
tests; everything for people (the one-line summary, warnings, errors) goes to
stderr.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

import msgspec

from callfloor.cli import validators as v
from callfloor.config import load_config

if TYPE_CHECKING:
    from callfloor.replay import ReasonTally, ReplaySummary

PROG: Final[str] = "callfloor replay"

_EPILOG: Final[str] = """\
input:
  NDJSON (one event per line) or, when a file's first non-space byte is "[", a
  JSON array of events.  Rejected events are counted one by one; the valid
  events around them still apply.  FILE "-" is standard input.
  --format queue_log | queue_log_csv | connect | ami reads an Asterisk queue_log,
  its database export (FreePBX/Issabel, PBXware), Amazon Connect NDJSON or an AMI
  capture through the same mapping as the live sources (docs/sources.md); records
  that carry nothing for callfloor are skipped and counted by verb.

stderr:
  One summary line: events applied, rejected by reason with the first three
  lines (NDJSON, counted from 1) or elements (arrays, counted from 0), duplicates,
  late events, as_of, and which memory mode ran.  Without --at, when earlier
  events carried a later ts than the last one, a warning says as_of was taken from
  the last event.  A long replay shows its progress: a bar on a terminal, a line a
  minute otherwise.

memory:
  Input in time order (or within [limits] max_lateness of it) is replayed in
  memory that follows max_lateness, not the input's length: history older than
  that is folded as the live service folds it, with the same document as keeping
  everything.  An event further out of order makes the replay start again keeping
  every history (a warning names it); --keep-everything starts there.

exit codes:
  0  the document was printed
  1  --strict and at least one event was rejected (the document is still printed)
  2  bad arguments, an unreadable file, a file that is not a JSON array after "[",
     or a bad configuration

example:
  callfloor replay day.ndjson --config floor.toml --output json > state.json
"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``replay`` subcommand (its handler is :func:`run`)."""
    from callfloor.replay import FORMATS

    p = subparsers.add_parser(
        "replay",
        help="replay event files and print the state document (SPEC §7)",
        description="Read events in file order, run the live processing with the clock "
        "following event time, and print the state at --at as one JSON document.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "files",
        nargs="+",
        type=v.readable_file_or_stdin,
        metavar="FILE",
        help="event files, read in order (- is standard input)",
    )
    p.add_argument("--config", metavar="CFG", help="TOML configuration (default: built-in)")
    p.add_argument("--output", choices=("json",), default="json", help="output format")
    p.add_argument(
        "--at",
        type=v.instant,
        metavar="TS",
        help="document time, epoch seconds or RFC 3339 (default: the last valid event's ts)",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="auto",
        help="input format: auto (a JSON array if the file starts with '[', else NDJSON), "
        "ndjson, json, or a feed: queue_log, queue_log_csv, connect, ami (default auto)",
    )
    p.add_argument(
        "--site",
        metavar="SITE",
        help="feed formats: the site of events whose queue has no configured site "
        '(default "default")',
    )
    p.add_argument(
        "--timezone",
        type=v.timezone,
        metavar="TZ",
        help="queue_log_csv: the time zone of local-text times (default: [asterisk] "
        "timezone, else the site's)",
    )
    p.add_argument(
        "--keep-everything",
        action="store_true",
        help="keep every call's and agent's history for the whole replay, for input known "
        "to be out of time order by more than [limits] max_lateness (memory grows with "
        "the input; by default history older than that is folded as it goes, and an "
        "input found out of order is replayed again this way)",
    )
    p.add_argument("--strict", action="store_true", help="exit 1 when any event was rejected")
    p.add_argument("--quiet", action="store_true", help="no summary line and no progress on stderr")
    p.set_defaults(func=run, fast_exit=True)


def run(args: argparse.Namespace) -> int:
    """Run ``callfloor replay``: the document on stdout, the summary on stderr."""
    from callfloor.cli.progress import ProgressReporter
    from callfloor.feeds import FEED_FORMATS, FeedOptions
    from callfloor.replay import ReplayInputError, run_replay

    config = load_config(args.config)  # a ConfigError is reported by main (exit 2)
    files: list[str] = list(args.files)
    site, zone = getattr(args, "site", None), getattr(args, "timezone", None)
    if args.format not in FEED_FORMATS and (site is not None or zone is not None):
        print(f"{PROG}: --site and --timezone apply to the feed formats only", file=sys.stderr)
        return 2
    if files.count(v.STDIN) > 1:
        print(f"{PROG}: standard input (-) can be given once", file=sys.stderr)
        return 2
    options = (
        FeedOptions.from_config(config, site=site, timezone=zone)
        if args.format in FEED_FORMATS
        else None
    )
    reporter = None if args.quiet else ProgressReporter(sys.stderr)
    with stdin_spooled(files) as (paths, spool):
        try:
            result = run_replay(
                list(paths),
                config,
                args.at,
                args.format,
                options,
                keep_everything=args.keep_everything,
                progress=reporter,
            )
        except ReplayInputError as exc:
            print(f"{PROG}: {str(exc).replace(spool or chr(0), v.STDIN)}", file=sys.stderr)
            return 2
        finally:
            if reporter is not None:
                reporter.close()
    document = msgspec.json.encode(result.processor.view.document())
    sys.stdout.buffer.write(document + b"\n")
    sys.stdout.flush()

    summary = result.summary
    if spool is not None:
        _rename(summary, spool, v.STDIN)
    several = len(set(files)) > 1
    warning = backwards_warning(summary, several)
    if warning is not None:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    again = out_of_order_warning(summary, several)
    if again is not None:
        print(f"{PROG}: warning: {again}", file=sys.stderr)
    duplicated = duplicates_warning(summary)
    if duplicated is not None:
        print(f"{PROG}: warning: {duplicated}", file=sys.stderr)
    if not args.quiet:
        print(f"{PROG}: {summary_line(summary, several)}", file=sys.stderr)
    if args.strict and summary.rejected:
        return 1
    return 0


@contextmanager
def stdin_spooled(files: list[str]) -> Iterator[tuple[list[str], str | None]]:
    """``files`` with ``-`` replaced by a temporary copy of standard input.

    Replay may read its input twice (the second pass of out-of-order input, and the
    format sniff), which a pipe cannot give, so standard input is saved first.
    """
    if v.STDIN not in files:
        yield files, None
        return
    with tempfile.NamedTemporaryFile(prefix="callfloor-stdin-") as spool:
        shutil.copyfileobj(sys.stdin.buffer, spool, 1 << 20)
        spool.flush()
        yield [spool.name if f == v.STDIN else f for f in files], spool.name


def _rename(summary: ReplaySummary, old: str, new: str) -> None:
    """Positions in ``old`` (the spooled standard input) named ``new`` instead."""
    for tally in summary.by_reason.values():
        tally.positions = [replace(p, path=new) if p.path == old else p for p in tally.positions]
    if summary.last_event is not None and summary.last_event.path == old:
        summary.last_event = replace(summary.last_event, path=new)
    found = summary.out_of_order
    if found is not None and found.position.path == old:
        summary.out_of_order = replace(found, position=replace(found.position, path=new))


def _utc(ts: float) -> str:
    try:
        return (
            datetime.fromtimestamp(ts, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )
    except (OverflowError, OSError, ValueError):
        return "?"


def _positions(tally: ReasonTally, several_files: bool) -> str:
    """``lines 17, 204`` (one file) or ``a.ndjson line 17, b.ndjson lines 3, 9``."""
    groups: list[tuple[str, str, list[int]]] = []
    for pos in tally.positions:
        if groups and groups[-1][0] == pos.path and groups[-1][1] == pos.unit:
            groups[-1][2].append(pos.number)
        else:
            groups.append((pos.path, pos.unit, [pos.number]))
    parts = []
    for path, unit, numbers in groups:
        label = unit if len(numbers) == 1 else unit + "s"
        prefix = f"{path} " if several_files else ""
        parts.append(f"{prefix}{label} {', '.join(str(n) for n in numbers)}")
    more = ", ..." if tally.count > len(tally.positions) else ""
    return ", ".join(parts) + more


def summary_line(summary: ReplaySummary, several_files: bool = False) -> str:
    """The one-line summary, e.g. ``1042864 events applied, 3 rejected (invalid_ts 2:
    lines 17, 204; unknown_type 1: line 9), 12 duplicates, 40 late, as_of ...``."""
    parts = [f"{summary.events} events applied"]
    rejected = f"{summary.rejected} rejected"
    if summary.by_reason:
        reasons = "; ".join(
            f"{reason} {tally.count}: {_positions(tally, several_files)}"
            for reason, tally in sorted(summary.by_reason.items())
        )
        rejected += f" ({reasons})"
    parts += [rejected, f"{summary.duplicates} duplicates", f"{summary.late} late"]
    if summary.feed is not None:
        skipped = summary.feed.skipped
        part = f"{sum(skipped.values())} skipped"
        if skipped:
            part += f" ({_by_verb(skipped)})"
        parts.append(part)
        if summary.feed.rejected:
            parts.append(f"rejected by verb ({_by_verb(summary.feed.rejected)})")
    if summary.left_out:
        parts.append(f"{summary.left_out} after as_of left out")
    if summary.at_given:
        source = "--at"
    elif summary.last_event is not None:
        source = "last event"
    else:
        source = "no valid event"  # nothing to take a time from: the epoch
    parts.append(f"as_of {summary.as_of!r} ({_utc(summary.as_of)}, {source})")
    if summary.bounded:
        parts.append(f"history before max_lateness ({_span(summary.lateness)}) folded")
    else:
        parts.append("every history kept")
    return ", ".join(parts)


def _span(seconds: float) -> str:
    """``24 h``, ``30.9 h``, ``90 min``, ``45 s``."""
    if seconds >= 7200 or (seconds >= 3600 and seconds % 3600 == 0):
        return f"{seconds / 3600:.3g} h"
    if seconds >= 120 or (seconds >= 60 and seconds % 60 == 0):
        return f"{seconds / 60:.3g} min"
    return f"{seconds:.3g} s"


def out_of_order_warning(summary: ReplaySummary, several_files: bool = False) -> str | None:
    """One line when the bounded replay met an event too far out of time order and the
    input was replayed again keeping every history."""
    found = summary.out_of_order
    if found is None:
        return None
    pos = found.position
    where = f"{pos.path} {pos.unit} {pos.number}" if several_files else f"{pos.unit} {pos.number}"
    return (
        f"{where} (ts {found.ts!r}) is {_span(found.latest - found.ts)} before an "
        f"earlier event, more than [limits] max_lateness ({_span(found.lateness)}): the "
        "input was replayed again keeping every history (--keep-everything starts there)"
    )


def _by_verb(counts: dict[str, int]) -> str:
    """``CONFIGRELOAD 11, QUEUESTART 7``: most first, then by name."""
    return ", ".join(
        f"{verb} {n}" for verb, n in sorted(counts.items(), key=lambda i: (-i[1], i[0]))
    )


def duplicates_warning(summary: ReplaySummary) -> str | None:
    """One line when most events were duplicates: the same input given twice, or two
    inputs whose ids collide (event ids must be unique per event, SPEC §1)."""
    seen = summary.events + summary.duplicates
    if summary.duplicates < 10 or summary.duplicates * 2 < seen:
        return None
    return (
        f"{summary.duplicates} of {seen} events were duplicates (an id seen before): is "
        "the same input given twice, or do two inputs reuse the same event ids?"
    )


def backwards_warning(summary: ReplaySummary, several_files: bool = False) -> str | None:
    """One line when as_of came from the last event but an earlier event was later."""
    if not summary.as_of_from_earlier_max or summary.last_event is None:
        return None
    pos = summary.last_event
    where = f"{pos.path} {pos.unit} {pos.number}" if several_files else f"{pos.unit} {pos.number}"
    return (
        f"as_of {summary.as_of!r} is the ts of the last event ({where}), but earlier events "
        f"reach {summary.latest_ts!r}; the {summary.left_out} later ones were left out "
        "(pass --at to choose the document time)"
    )
