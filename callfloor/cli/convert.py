"""``callfloor convert``: a feed (queue_log, its database exports, AMI, Connect) to NDJSON.

The events go to stdout, one canonical event a line, exactly as the live source and
``replay --format`` would apply them (the same mapper); a summary goes to stderr:
records read, events written, what was skipped by verb and what was rejected, by
reason with the first lines. ``--rejects FILE`` writes every rejected record (caller
numbers redacted unless ``[privacy] caller_ids = "keep"``) as NDJSON.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from typing import BinaryIO, Final

import msgspec

from callfloor.cli import validators as v
from callfloor.config import load_config
from callfloor.feeds.base import MAX_LINE_BYTES

PROG: Final[str] = "callfloor convert"
CHUNK_BYTES: Final[int] = 1 << 20
LINES_KEPT: Final[int] = 3

_EPILOG: Final[str] = """\
formats (--from):
  queue_log      Asterisk's queue_log file: epoch|callid|queue|agent|VERB|data...
  queue_log_csv  its database table export with a header line: Asterisk realtime
                 (FreePBX, Issabel: time,callid,queuename,agent,event,data1..5; time
                 is local text, read in --timezone) or PBXware (uid,date_time,...)
  ami            an AMI capture (Key: Value blocks; events need a Timestamp header)
  connect        Amazon Connect agent event stream records and contact events, NDJSON

Files are read in order through one mapper (rotated logs continue each other); with
no FILE, or FILE "-", standard input is read as it comes (tail -f works).

exit codes:
  0  converted (rejected records are reported, not fatal)
  1  --strict and at least one record was rejected
  2  bad arguments, an unreadable file, a database export without a known header,
     or a bad configuration

examples:
  callfloor convert --from queue_log /var/log/asterisk/queue_log > events.ndjson
  callfloor convert --from queue_log_csv --timezone America/New_York export.csv
  tail -f /var/log/asterisk/queue_log | callfloor convert --from queue_log
"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``convert`` subcommand (its handler is :func:`run`)."""
    from callfloor.feeds import FEED_FORMATS

    p = subparsers.add_parser(
        "convert",
        help="map a queue_log, database export, AMI capture or Connect records to NDJSON",
        description="Map a feed to canonical events (NDJSON on stdout) through the same "
        "mapping as the live sources and replay --format, to see what it produces.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "files",
        nargs="*",
        type=v.readable_file_or_stdin,
        metavar="FILE",
        help="input files, read in order (default, or -: standard input)",
    )
    p.add_argument("--from", dest="source", required=True, choices=FEED_FORMATS, help="input")
    p.add_argument("--to", choices=("ndjson",), default="ndjson", help="output (ndjson)")
    p.add_argument("--config", metavar="CFG", help="TOML configuration (queue sites, aliases)")
    p.add_argument(
        "--site", metavar="SITE", help="the site of queues the configuration does not place"
    )
    p.add_argument(
        "--timezone",
        type=v.timezone,
        metavar="TZ",
        help="queue_log_csv: the time zone of local-text times",
    )
    p.add_argument("--rejects", metavar="FILE", help="write rejected records here as NDJSON")
    p.add_argument(
        "--max-line-bytes",
        type=v.line_limit,
        default=MAX_LINE_BYTES,
        metavar="SIZE",
        help="a longer line is skipped and rejected as line_too_long (default 1MiB)",
    )
    p.add_argument("--strict", action="store_true", help="exit 1 when a record was rejected")
    p.add_argument("--quiet", action="store_true", help="no summary line on stderr")
    p.set_defaults(func=run)


def _chunks(fh: BinaryIO, interactive: bool) -> Iterator[bytes]:
    """A stream's bytes: as they come (a pipe), or in large reads (a file)."""
    read = getattr(fh, "read1", None) if interactive else None
    while True:
        chunk = read(CHUNK_BYTES) if read is not None else fh.read(CHUNK_BYTES)
        if not chunk:
            return
        yield chunk


def run(args: argparse.Namespace) -> int:
    """Run ``callfloor convert``: events on stdout, the summary on stderr."""
    from callfloor.feeds import FeedFormatError, FeedOptions
    from callfloor.feeds.base import bound_raw
    from callfloor.feeds.stream import make_mapper, map_chunks

    config = load_config(args.config)
    files: list[str] = list(args.files) or [v.STDIN]
    if files.count(v.STDIN) > 1:
        print(f"{PROG}: standard input (-) can be given once", file=sys.stderr)
        return 2
    options = FeedOptions.from_config(config, site=args.site, timezone=args.timezone)
    mapper = make_mapper(args.source, options)
    encoder = msgspec.json.Encoder()
    out = sys.stdout.buffer
    events = 0
    skipped: dict[str, int] = {}
    reasons: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    several = len(files) > 1
    with ExitStack() as stack:
        rejects = stack.enter_context(open(args.rejects, "wb")) if args.rejects else None
        for name in files:
            if name == v.STDIN:
                fh: BinaryIO = sys.stdin.buffer
                interactive = True
            else:
                try:
                    fh = stack.enter_context(open(name, "rb"))
                except OSError as exc:
                    print(f"{PROG}: {name}: {exc.strerror}", file=sys.stderr)
                    return 2
                interactive = False
            try:
                chunks = _chunks(fh, interactive)
                for mapped in map_chunks(mapper, chunks, max_line=args.max_line_bytes):
                    result = mapped.result
                    if result.events:
                        out.write(encoder.encode_lines(result.events))
                        events += len(result.events)
                    for verb, n in result.skipped.items():
                        skipped[verb] = skipped.get(verb, 0) + n
                    for r in result.rejected:
                        bound_raw(r)  # line formats are bounded already; AMI messages here
                        line = mapped.line_of(r.index)
                        counts[r.reason] = counts.get(r.reason, 0) + 1
                        where = reasons.setdefault(r.reason, [])
                        if len(where) < LINES_KEPT:
                            where.append(f"{name} line {line}" if several else f"line {line}")
                        if rejects is not None:
                            rejects.write(
                                encoder.encode(
                                    {
                                        "file": name,
                                        "line": line,
                                        "reason": r.reason,
                                        "message": r.message,
                                        "verb": r.verb,
                                        "raw": r.raw,
                                    }
                                    | (
                                        {}
                                        if r.size is None
                                        else {"raw_size": r.size, "raw_sha256": r.sha256}
                                    )
                                )
                                + b"\n"
                            )
                    if interactive:
                        out.flush()
            except FeedFormatError as exc:
                print(f"{PROG}: {name}: {exc}", file=sys.stderr)
                return 2
    out.flush()
    rejected = sum(counts.values())
    if not args.quiet:
        parts = [f"{events} events written", f"{sum(skipped.values())} skipped"]
        if skipped:
            parts[-1] += (
                " ("
                + ", ".join(
                    f"{verb} {n}"
                    for verb, n in sorted(skipped.items(), key=lambda i: (-i[1], i[0]))
                )
                + ")"
            )
        text = f"{rejected} rejected"
        if counts:
            text += (
                " ("
                + "; ".join(
                    f"{reason} {counts[reason]}: {', '.join(reasons[reason])}"
                    + (", ..." if counts[reason] > len(reasons[reason]) else "")
                    for reason in sorted(counts)
                )
                + ")"
            )
        parts.append(text)
        print(f"{PROG}: {', '.join(parts)}", file=sys.stderr)
    return 1 if args.strict and rejected else 0
