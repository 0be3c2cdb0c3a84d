"""What every feed source does with its mapper's results: the source kit's shared part.

:class:`FeedBatcher` turns a :class:`~callfloor.feeds.base.MapResult` into a
:class:`~callfloor.ingest.source.Batch`: it counts into the per-source families
(:mod:`callfloor.ingest.counts`), rejects events further ahead of the server clock than
the allowed skew (``ts_in_future``, as HTTP and MQTT do), dead-letters what could not be
mapped and, once the batch is acknowledged, what the floor refused (a limit), and
calls the source's own acknowledgement (a file source saves its position there).

A rejection given an identity (``keys``: a file's line, by its position and content)
goes through the service's duplicate recognition like the events beside it: it is
counted, in the source's families and the floor's counters, and dead-lettered once
its batch is acknowledged, unless the service had counted it before (the line was
read again after a restart), so it is neither counted nor dead-lettered twice.

A dead letter is one JSON object (source, kind, reason, message, the record with
caller numbers redacted, where it was): appended to the source's ``dead_letters`` file
when it has one, else logged at WARNING. A PBX has no broker to publish them to. The
record is kept up to :data:`~callfloor.feeds.base.RAW_KEEP` bytes; a longer one (a
line of megabytes) is cut, and the letter adds its size and SHA-256 (``raw_size``,
``raw_sha256``, ``raw_truncated``), as MQTT dead letters do.

Dead letters are written at most :data:`DEAD_LETTERS_PER_S` a second per source, in
bursts of up to :data:`DEAD_LETTER_BURST`: a file of junk (a megabyte of two-byte lines
is half a million rejections) must not write a hundred times its size to disk or to
the log. Every record is still counted (a rejection in
``callfloor_source_rejected_total``, a refusal by the floor's limits in its counters); the
letters left unwritten are counted in ``callfloor_source_deadletters_suppressed_total``
and summed up in one warning a minute (checked on each batch, and on close).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any, Final, TextIO

from callfloor.events import Event, to_builtins
from callfloor.feeds.base import MapResult, Rejected, bound_raw
from callfloor.ingest.counts import SourceCounts
from callfloor.ingest.source import Ack, Batch, Receipt

log = logging.getLogger("callfloor.ingest")

DEAD_LETTERS_PER_S: Final[float] = 100.0
DEAD_LETTER_BURST: Final[float] = 1000.0
SUPPRESSED_REPORT_S: Final[float] = 60.0


class FeedBatcher:
    """Counting, the future check and dead letters of one feed source."""

    def __init__(
        self,
        name: str,
        kind: str,
        counts: SourceCounts | None = None,
        *,
        clock: Callable[[], float] = time.time,
        not_after: Callable[[], float] | None = None,
        dead_letters: str | None = None,
        where: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.kind = kind
        self.key = (name, kind)
        self.counts = counts if counts is not None else SourceCounts()
        self.counts.register(self.key)
        self.clock = clock
        self.not_after = not_after
        self.dead_letters = dead_letters
        self.where = where  # the file read, for dead letters
        self._letters: TextIO | None = None
        self.monotonic = monotonic
        self._tokens = DEAD_LETTER_BURST
        self._refilled = monotonic()
        self._suppressed = 0  # since the last warning about them
        self._reported = self._refilled

    def batch(
        self,
        result: MapResult,
        records: int,
        *,
        lines: list[int] | None = None,
        then: Ack | None = None,
        resent: bool = False,
        keys: list[str] | None = None,
    ) -> Batch:
        """The batch of ``result`` (from ``records`` records); ``lines[i]`` is the line
        number of record ``i`` (file sources); ``then`` runs once it is acknowledged;
        ``resent``: every event may be a resend of one read before a crash; ``keys[j]``:
        the identity of ``result.rejected[j]`` (see the module docstring)."""
        counts, key = self.counts, self.key
        self._report(self.monotonic())  # a flood that stopped: no further letter may come
        counts.add(counts.received_total, key, records)
        if result.skipped:
            counts.add(counts.skipped_total, key, sum(result.skipped.values()))
        rejected: dict[str, int] = {}
        identified: list[tuple[str, str]] = []
        letters: list[dict[str, Any]] = []
        for j, r in enumerate(result.rejected):
            rejected[r.reason] = rejected.get(r.reason, 0) + 1
            line = lines[r.index] if lines is not None and 0 <= r.index < len(lines) else None
            if keys is not None:  # counted and dead-lettered once acknowledged
                identified.append((keys[j], r.reason))
                letters.append(self._rejected(r, line))
                continue
            counts.reject(key, r.reason)
            self.letter(self._rejected(r, line), r.reason)
        events: list[Event] = result.events
        if events and self.not_after is not None:
            events = self._not_ahead(events, rejected)
        counts.add(counts.events_total, key, len(events))
        if events:
            newest = max(float(e.ts) for e in events)  # type: ignore[arg-type]
            counts.lag_seconds[key] = max(0.0, self.clock() - newest)
        return Batch(
            events,
            self.name,
            rejected,
            self._acker(events, then, letters),
            # Every event's position; True for a batch of rejections alone (an empty
            # set would mark nothing, and their ids would not be looked up).
            resent=(frozenset(range(len(events))) if events else True) if resent else False,
            rejected_ids=identified,
        )

    def _not_ahead(self, events: list[Event], rejected: dict[str, int]) -> list[Event]:
        assert self.not_after is not None
        limit = self.not_after()
        kept: list[Event] = []
        for event in events:
            ts = float(event.ts)  # type: ignore[arg-type]
            if ts <= limit:
                kept.append(event)
                continue
            reason = "ts_in_future"
            rejected[reason] = rejected.get(reason, 0) + 1
            self.counts.reject(self.key, reason)
            self.letter(
                self._event_letter(
                    event, reason, f"`ts`: {ts} is more than the allowed skew ahead of the clock"
                ),
                reason,
            )
        return kept

    def _acker(self, events: list[Event], then: Ack | None, letters: list[dict[str, Any]]) -> Ack:
        def ack(receipt: Receipt) -> None:
            counted = set(receipt.rejected_resent)
            for j, letter in enumerate(letters):
                if j not in counted:
                    self.counts.reject(self.key, letter["reason"])
                    self.letter(letter, letter["reason"])
            for index, refusal in receipt.refused:
                if 0 <= index < len(events):
                    self.letter(
                        self._event_letter(events[index], refusal.reason, refusal.message),
                        refusal.reason,
                    )
            if then is not None:
                then(receipt)

        return ack

    def _base(self, reason: str, message: str) -> dict[str, Any]:
        return {
            "source": self.name,
            "kind": self.kind,
            "file": self.where,
            "reason": reason,
            "message": message,
            "received_at": self.clock(),
        }

    def _rejected(self, r: Rejected, line: int | None) -> dict[str, Any]:
        letter = self._base(r.reason, r.message)
        bound_raw(r)  # bounded by the reader already; the rest (AMI messages) here
        letter.update(position=r.position, line=line, verb=r.verb, ts=r.ts, raw=r.raw)
        if r.size is not None:
            letter.update(raw_truncated=True, raw_size=r.size, raw_sha256=r.sha256)
        return letter

    def _event_letter(self, event: Event, reason: str, message: str) -> dict[str, Any]:
        letter = self._base(reason, message)
        letter["event"] = to_builtins(event)
        return letter

    def _report(self, now: float, *, final: bool = False) -> None:
        """Warn of the letters left unwritten, a minute after the first of them (or now,
        ``final``: on close, as no further letter may come to report them)."""
        if self._suppressed and (final or now - self._reported >= SUPPRESSED_REPORT_S):
            log.warning(
                "deadletters_suppressed source=%s n=%d over=%.0fs (more than %g a second; "
                "each still counted as a rejection or a refusal)",
                self.name,
                self._suppressed,
                now - self._reported,
                DEAD_LETTERS_PER_S,
            )
            self._suppressed = 0
            self._reported = now

    def _allowed(self) -> bool:
        """Whether the rate allows one more dead letter now (a token bucket)."""
        now = self.monotonic()
        self._tokens = min(
            DEAD_LETTER_BURST, self._tokens + (now - self._refilled) * DEAD_LETTERS_PER_S
        )
        self._refilled = now
        self._report(now)
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def letter(self, letter: dict[str, Any], reason: str) -> None:
        """Write one dead letter (the file, else the log) and count it; beyond the rate,
        count it as suppressed instead (see the module docstring)."""
        if not self._allowed():
            if not self._suppressed:
                self._reported = self.monotonic()
            self._suppressed += 1
            self.counts.dead_letter_suppressed(self.key, reason)
            return
        text = json.dumps(letter, ensure_ascii=False, default=str)
        if self.dead_letters is not None:
            try:
                if self._letters is None:
                    self._letters = open(self.dead_letters, "a", encoding="utf-8")  # noqa: SIM115
                self._letters.write(text + "\n")
                self._letters.flush()
            except OSError as exc:
                log.error("deadletter_failed source=%s error=%r", self.name, exc)
                return
        else:
            log.warning("deadletter %s", text)
        self.counts.dead_letter(self.key, reason)

    def close(self) -> None:
        """Close the dead-letter file (opened again on the next letter); warn of the
        letters left unwritten since the last warning."""
        self._report(self.monotonic(), final=True)
        letters, self._letters = self._letters, None
        if letters is not None:
            try:
                letters.close()
            except OSError as exc:
                log.error("deadletter_failed source=%s error=%r", self.name, exc)
