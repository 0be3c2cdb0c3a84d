"""The queue_log mappers' whole output pinned: a generated log, its SHA-256 before any speedup.

The digests below were taken with the mapping as it was before it was made faster
(at commit 8c5e1b8): every event (with its id and the line it came from), every rejection
(reason, message, raw text, verb, time, line) and the skipped counts of a generated log
that has every verb, the field variants and the broken lines a real log may hold. A
change that makes the mapping faster must leave them byte-identical.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

import msgspec
import pytest
from feedutil import T0

from callfloor.events import CallQueued
from callfloor.feeds.asterisk import SKIPPED, VERBS
from callfloor.feeds.base import FeedOptions
from callfloor.feeds.queue_log import QueueLogMapper
from callfloor.feeds.queue_log_csv import QueueLogCsvMapper
from callfloor.feeds.stream import map_chunks

_AGENT_FIELDS = (
    "SIP/100",
    "SIP/101",
    "PJSIP/102",
    "Agent/103",
    "Local/104@from-queue/n",
    " SIP/105 ",
    "SIP/106",
    "SIP/107",
    "Alias/108",
    "NONE",
    "",
    "NULL",
    "\\N",
)
_QUEUES = ("sales", "support", "billing", " vip ", "NONE", "", "overflow")
_ODD_EPOCHS = (
    "oops",
    "nan",
    "inf",
    "-inf",
    "-5",
    "1e20",
    "",
    "5551234567890123456789012345678901234567890123456",
    "0x10",
    "\u0661\u0662\u0663",  # Arabic-Indic digits: float() reads them
    "1_795_424_400",
    " 1795424400 ",
    "+1795424400",
    "1795424400.25",
    "32503680000",
    "32503680000.5",
    "0",
)


def generated_log(lines: int = 6_000, seed: int = 13) -> bytes:
    """A queue_log of ``lines`` lines: calls, members, pauses, restarts and broken lines."""
    rnd = random.Random(seed)
    verbs = sorted(VERBS)
    skipped = sorted(SKIPPED)
    out: list[bytes] = [b"\xef\xbb\xbf"]
    t = float(T0)
    calls: list[str] = []
    serial = 0
    for _ in range(lines):
        t += rnd.choice((0, 0, 0, 1, 1, 2, 5, 30))
        if rnd.random() < 0.002:
            t += 90_000  # a day without lines: calls are swept
        kind = rnd.random()
        agent = rnd.choice(_AGENT_FIELDS)
        queue = rnd.choice(_QUEUES)
        epoch = str(int(t)) if rnd.random() < 0.9 else f"{t:.6f}"
        if kind < 0.45:
            serial += 1
            call = f"{int(t)}.{serial}"
            calls.append(call)
            data = f"|url|555{rnd.randrange(10_000_000):07d}|1"
            line = f"{epoch}|{call}|{queue}|NONE|ENTERQUEUE{data}"
        elif kind < 0.80:
            verb = rnd.choice(verbs)
            call = rnd.choice(calls[-40:]) if calls and rnd.random() < 0.9 else "NONE"
            spaced = f" {verb} " if rnd.random() < 0.02 else verb
            data = "|".join(
                rnd.choice(("", "1", "15000", "Lunch", "NONE", "+15551234567", "c.2"))
                for _ in range(rnd.randrange(0, 5))
            )
            line = f"{epoch}|{call}|{queue}|{agent}|{spaced}" + (f"|{data}" if data else "")
        elif kind < 0.86:
            line = f"{epoch}|NONE|NONE|NONE|{rnd.choice(skipped)}|x|555{serial:07d}"
        elif kind < 0.89:
            line = f"{rnd.choice(_ODD_EPOCHS)}|c9|sales|SIP/100|ENTERQUEUE||5559876543|1"
        elif kind < 0.91:
            line = rnd.choice(
                (
                    f"{epoch}|c1|sales|SIP/100",
                    "garbage 5551234567",
                    "",
                    "   ",
                    "\t",
                    f"{epoch}",
                    "|||||",
                    f"{epoch}|c1|sales|SIP/100|BEAMUP|5551234567",
                    f"{epoch}|c1|sales|SIP/100|connect|1",
                )
            )
        elif kind < 0.93:
            raw = f"{epoch}|c{serial}|sales|SIP/10\xe9|ENTERQUEUE||555 1234|1".encode("latin-1")
            out.append(raw + rnd.choice((b"\n", b"\r\n")))
            continue
        elif kind < 0.94:
            line = f"{epoch}|NONE|NONE|NONE|QUEUESTART|"
        else:
            verb = rnd.choice(("OUTDIAL", "OUTANSWER", "OUTCANCEL", "PAUSE", "UNPAUSE"))
            line = f"{epoch}|o{serial % 7}|{queue}|{agent}|{verb}|5551234567|x"
        out.append(line.encode() + rnd.choice((b"\n", b"\n", b"\n", b"\r\n")))
    # Many calls waiting, then a restart: one line, more than 64 events.
    for k in range(80):
        out.append(f"{int(t)}|r{k}|sales|NONE|ENTERQUEUE||5550000000|1\n".encode())
    out.append(f"{int(t) + 1}|NONE|NONE|NONE|QUEUESTART|\n".encode())
    out.append(f"{int(t) + 2}|c1|sales|SIP/100|CONNECT|1|".encode())  # no newline
    return b"".join(out)


def _options(keep: bool) -> FeedOptions:
    return FeedOptions(
        default_site="hq",
        queue_sites={"sales": "nyc", "support": "sao"},
        caller_ids="keep" if keep else "redact",
        aliases={"Alias/108": "one-o-eight", "106": "six"},
    )


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def digest(mapper: QueueLogMapper | QueueLogCsvMapper, data: bytes, size: int) -> str:
    """SHA-256 of everything the mapper made of ``data`` read in chunks of ``size``."""
    encode = msgspec.json.Encoder().encode
    h = hashlib.sha256()
    skipped: dict[str, int] = {}
    for mapped in map_chunks(mapper, _chunks(data, size)):
        result = mapped.result
        for event, origin in zip(result.events, result.origins, strict=True):
            h.update(encode([mapped.line_of(origin), event]) + b"\n")
        for r in result.rejected:
            h.update(
                encode(
                    [mapped.line_of(r.index), r.position, r.reason, r.message, r.raw, r.verb, r.ts]
                )
                + b"\n"
            )
        for verb, n in result.skipped.items():
            skipped[verb] = skipped.get(verb, 0) + n
    h.update(encode(sorted(skipped.items())))
    return h.hexdigest()


def pbxware(log: bytes) -> bytes:
    """The log's lines as a PBXware export (lines with fewer than 5 fields left as they are)."""
    rows = [b"uid,date_time,callid,queue_name,type,event,param1,param2,param3,"]
    rows.append(b"entpos,expos,htime,ttime,time\n")
    for uid, line in enumerate(log.splitlines(keepends=True)):
        fields = line.rstrip(b"\r\n").split(b"|")
        if len(fields) < 5:
            rows.append(line)
            continue
        params = [*fields[5:], b"", b"", b""][:3]
        row = [str(uid).encode(), *fields[:5], *params, b"1", b"0", b"0", b"0", b"x"]
        rows.append(b",".join(row) + line[len(line.rstrip(b"\r\n")) :])
    return b"".join(rows)


LOG = generated_log()

PINNED = {
    ("queue_log", "redact", 4 << 20): (
        "87456bab0f6a99a44c5d1eb122f73c0d24dd129a9c949e6a0cb27a213568aa48"
    ),
    ("queue_log", "redact", 997): (
        "6c8e978dfa9ba6a5f7b1a3baf663aae23073a7fcb10d0163dc757de90053a178"
    ),
    ("queue_log", "keep", 4 << 20): (
        "8dbbcf6423c49d30a6390e01439c07091005a799f90dbad53d33131f5f4050ae"
    ),
    ("queue_log", "keep", 61): "29a19fffd08aac246f147df27b045a68f9274e43c0e6d54a11016f035cff6316",
    ("pbxware", "redact", 4 << 20): (
        "24a7d3e5862516e74d19574170fd73bc65cb7253a08a6204bb0a4be97aba1dc7"
    ),
    ("pbxware", "keep", 1009): "5f57d1bcb6257af6cc71731ae6910772d0a96b75d735d63982133d4603e1af7a",
}


@pytest.mark.parametrize(("fmt", "privacy", "size"), sorted(PINNED))
def test_the_mapping_is_byte_identical_to_before(fmt: str, privacy: str, size: int) -> None:
    options = _options(privacy == "keep")
    if fmt == "queue_log":
        got = digest(QueueLogMapper(options), LOG, size)
    else:
        got = digest(QueueLogCsvMapper(options), pbxware(LOG[3:]), size)
    assert got == PINNED[fmt, privacy, size]


def test_the_generated_log_has_what_it_should() -> None:
    """Every verb, skipped verbs, each rejection reason, a line of more than 64 events."""
    result = QueueLogMapper(_options(False))
    reasons: set[str] = set()
    verbs: set[str] = set()
    most = 0
    for mapped in map_chunks(result, [LOG]):
        reasons |= {r.reason for r in mapped.result.rejected}
        verbs |= set(mapped.result.skipped)
        origins = mapped.result.origins
        most = max([most, *(origins.count(i) for i in set(origins))])
    assert reasons == {
        "malformed_line",
        "invalid_ts",
        "unknown_verb",
        "missing_field",
        "truncated_line",
    }
    assert verbs == set(SKIPPED)
    assert most > 64
    text = LOG.decode("utf-8", "replace")
    assert all(f"|{verb}|" in text for verb in VERBS)


@pytest.mark.parametrize(
    ("ts", "problem"),
    [
        (float("nan"), "must be a finite epoch time"),
        (float("inf"), "must be a finite epoch time"),
        (-0.5, "must be a finite epoch time"),
        (32_503_680_000.5, "must be a finite epoch time"),
        (1_795_424_400_000.0, "looks like milliseconds"),
        (1_795_424_400_000, "looks like milliseconds"),
        (-1, "must be a finite epoch time"),
    ],
)
def test_an_event_built_with_a_bad_time_still_fails(ts: float, problem: str) -> None:
    """The quick accept of an in-range float in ``__post_init__`` rejects what it did."""
    with pytest.raises(ValueError, match=problem):
        CallQueued(ts=ts, call_id="c1", queue="q")


@pytest.mark.parametrize("ts", [0.0, 32_503_680_000.0, 1_795_424_400.25, 1_795_424_400, True])
def test_an_event_built_with_a_good_time_keeps_it(ts: float) -> None:
    assert CallQueued(ts=ts, call_id="c1", queue="q").ts is ts
