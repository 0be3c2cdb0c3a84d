"""The Asterisk Manager Interface: its wire format, and its queue events as canonical events.

:class:`AmiParser` turns bytes read from an AMI connection into messages (``Key: Value``
lines up to a blank line, as dicts); :class:`AmiMapper` maps the queue events among
them, sharing the agent and call model of the queue_log mapping
(:mod:`callfloor.feeds.asterisk`). Both are pure: the TCP client that logs in and reads
is a thin shell around them.

Mapped events (Asterisk 12+ names; the 1.8/11 names ``Join``, ``Leave`` and
``QueueMemberPaused`` too): QueueCallerJoin, QueueCallerLeave, QueueCallerAbandon,
AgentCalled, AgentConnect, AgentComplete, AgentRingNoAnswer, AgentDump,
AttendedTransfer, BlindTransfer, QueueMemberAdded, QueueMemberRemoved,
QueueMemberPause, QueueMemberStatus. Every other event (an AMI connection carries
hundreds of kinds) and every response is skipped, counted by name.

The time of an event is its ``Timestamp`` header (``timestampevents = yes`` in
manager.conf); a live client sets it to the time it received the event when Asterisk
sends none.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Final

import msgspec

from callfloor.events import MAX_TS, CallRouted, Event
from callfloor.feeds.asterisk import (
    DEVICE_IN_USE,
    DEVICE_RINGING,
    DEVICE_UNAVAILABLE,
    NO_VALUE,
    AsteriskCore,
)
from callfloor.feeds.base import (
    REDACTED,
    FeedOptions,
    MapResult,
    Rejected,
    conceal,
    event_id,
    redact_text,
)
from callfloor.feeds.state import AsteriskState, PendingLeave

TAG: Final = "ami"

MAX_LINE: Final = 65_536
MAX_LINES: Final = 10_000

LEAVE_GRACE_S: Final = 30.0
"""How long a caller that left its queue may wait for its AgentConnect (or abandon).

Asterisk sends QueueCallerLeave *before* AgentConnect (it takes the caller out of the
queue, runs the member's macro or gosub, then logs CONNECT), and sends nothing at all
for a timeout, a key press or an empty queue. A leave that nothing explains within this
time (of event time) is a ``call_dequeued`` at the leave's own time.
"""

# AST_DEVICE_* as QueueMemberStatus and QueueMemberAdded send them.
DEVICE_STATES: Final[dict[str, str | None]] = {
    "0": None,  # UNKNOWN
    "1": None,  # NOT_INUSE
    "2": DEVICE_IN_USE,  # INUSE
    "3": DEVICE_IN_USE,  # BUSY
    "4": DEVICE_UNAVAILABLE,  # INVALID
    "5": DEVICE_UNAVAILABLE,  # UNAVAILABLE
    "6": DEVICE_RINGING,  # RINGING
    "7": DEVICE_IN_USE,  # RINGINUSE
    "8": DEVICE_IN_USE,  # ONHOLD
}

_NAMES: Final = {
    "Join": "QueueCallerJoin",
    "Leave": "QueueCallerLeave",
    "QueueMemberPaused": "QueueMemberPause",
}
_TRANSFER_KEYS: Final = (
    "TransfereeUniqueid",
    "OrigTransfererUniqueid",
    "SecondTransfererUniqueid",
    "TransfererUniqueid",
    "TransferTargetUniqueid",
)
_PRIVATE: Final = ("CallerID", "ConnectedLine", "Exten")


class AmiProtocolError(ValueError):
    """The peer does not speak AMI (a line or a message far too long)."""


class AmiParser:
    """AMI bytes in, messages out (pure).

    The first line of a connection is the banner (``Asterisk Call Manager/5.0.1``),
    kept in :attr:`banner`. A message is ``Key: Value`` lines ended by a blank line;
    lines end in ``\\r\\n`` (a bare ``\\n`` is accepted). A repeated key keeps every value,
    joined by ``\\n``; a line without ``": "`` (the output of an old ``Command`` action)
    is added to ``Output``.
    """

    def __init__(self, offset: int = 0) -> None:
        self.banner: str | None = None
        self.starts: list[tuple[int, int]] = []
        """(byte offset, 1-based line) where each message of the last feed() began."""
        self._buffer = b""
        self._current: dict[str, str] = {}
        self._lines = 0
        self._offset = offset  # of the first byte of the buffer
        self._line = 1
        self._start = (offset, 1)

    def feed(self, data: bytes) -> list[dict[str, str]]:
        """The messages that ``data`` completes."""
        buffer = self._buffer + data if self._buffer else data
        cut = buffer.rfind(b"\n") + 1
        self._buffer = buffer[cut:]
        if len(self._buffer) > MAX_LINE:
            raise AmiProtocolError(f"a line longer than {MAX_LINE} bytes")
        messages: list[dict[str, str]] = []
        starts: list[tuple[int, int]] = []
        self.starts = starts
        if not cut:
            return messages
        current = self._current
        offset, number = self._offset, self._line
        for raw in buffer[:cut].split(b"\n")[:-1]:
            here = (offset, number)
            offset += len(raw) + 1
            number += 1
            line = raw.decode("utf-8", "replace").rstrip("\r")
            if self.banner is None and not current and "Call Manager" in line and ": " not in line:
                self.banner = line
                continue
            if not line:
                if current:
                    messages.append(current)
                    starts.append(self._start)
                    current = {}
                    self._lines = 0
                continue
            if not current:
                self._start = here
            self._lines += 1
            if self._lines > MAX_LINES:
                raise AmiProtocolError(f"a message of more than {MAX_LINES} lines")
            key, sep, value = line.partition(": ")
            if not sep:
                if line.endswith(":") and " " not in line:
                    key, value = line[:-1], ""
                else:
                    key, value = "Output", line
            old = current.get(key)
            current[key] = value if old is None else f"{old}\n{value}"
        self._current = current
        self._offset, self._line = offset, number
        return messages

    def tail(self) -> tuple[dict[str, str], int, int] | None:
        """A message the input ended in the middle of (no blank line after it), if any."""
        current = dict(self._current)
        rest = self._buffer.decode("utf-8", "replace").strip()
        if rest:
            key, sep, value = rest.partition(": ")
            current[key if sep else "Output"] = value if sep else rest
        if not current:
            return None
        start = self._start if self._current else (self._offset, self._line)
        return current, start[0], start[1]


def redact_message(message: Mapping[str, str]) -> str:
    """A message as text for a rejection, caller numbers and extensions hidden."""
    lines = []
    for key, value in message.items():
        if any(p in key for p in _PRIVATE):
            value = REDACTED if value else value
        else:
            value = redact_text(value)
        lines.append(f"{key}: {value}")
    return "\n".join(lines)


def _text(message: Mapping[str, str]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in message.items())


def _value(message: Mapping[str, str], *keys: str) -> str | None:
    for key in keys:
        value = message.get(key)
        if value is not None:
            value = value.strip()
            if value not in NO_VALUE:
                return value
    return None


class AmiMapper:
    """AMI event dicts to canonical events (pure; see the module docstring)."""

    tag: Final = TAG

    def __init__(self, options: FeedOptions | None = None, leave_grace_s: float = LEAVE_GRACE_S):
        self.options = options or FeedOptions()
        self.core = AsteriskCore(self.options)
        self.leave_grace_s = leave_grace_s
        self._keep = self.options.caller_ids == "keep"

    def snapshot(self) -> AsteriskState:
        """A copy of the state, for a checkpoint."""
        return self.core.snapshot()

    def restore(self, state: msgspec.Struct) -> None:
        """Continue from a snapshot."""
        self.core.restore(state)

    def _raw(self, message: Mapping[str, str]) -> str:
        return _text(message) if self._keep else redact_message(message)

    def truncated(self, message: Mapping[str, str], position: int, index: int = 0) -> Rejected:
        """A message the input ended in the middle of (no blank line after it)."""
        return Rejected(
            index,
            position,
            "truncated_line",
            "the input ended inside this message (no blank line after it)",
            self._raw(message),
            message.get("Event"),
        )

    def finish(self, at: float | None = None) -> MapResult:
        """Settle callers that left their queue: all of them, or those older than ``at``
        less the grace (a live source calls this while the connection is quiet)."""
        out = MapResult()
        self._settle_leaves(out.events, None if at is None else at - self.leave_grace_s)
        out.origins = [0] * len(out.events)
        return out

    def _settle_leaves(self, events: list[Event], before: float | None) -> None:
        pending = self.core.state.pending
        due = [cid for cid, p in pending.items() if before is None or p.ts < before]
        for cid in due:
            p = pending.pop(cid)
            first = len(events)
            memo = self.core.state.calls.get(cid)
            if memo is not None and memo.waiting:
                self.core.leave(events, p.ts, cid, p.queue, "dequeued", "other")
            for k in range(len(events) - first):
                events[first + k].id = f"{p.id}.{k}"

    def feed(self, messages: Sequence[Mapping[str, str]], positions: Sequence[int]) -> MapResult:
        """Map AMI messages; ``positions[i]`` is a number unique on the connection."""
        out = MapResult()
        events = out.events
        core = self.core
        for index, message in enumerate(messages):
            name = message.get("Event")
            if name is None:
                out.skip("Response" if "Response" in message else "(no Event)")
                continue
            name = _NAMES.get(name, name)
            handler = _HANDLERS.get(name)
            if handler is None:
                out.skip(name)
                continue
            stamp = message.get("Timestamp")
            ts = _timestamp(stamp)
            if ts is None:
                out.rejected.append(
                    Rejected(
                        index,
                        positions[index],
                        "invalid_ts",
                        "`Timestamp`: missing or not epoch seconds (set timestampevents = yes "
                        f"in manager.conf), got {stamp!r}"
                        if stamp is not None
                        else "`Timestamp`: missing (set timestampevents = yes in manager.conf)",
                        self._raw(message),
                        name,
                    )
                )
                continue
            first = len(events)
            if core.state.pending:
                self._settle_leaves(events, ts - self.leave_grace_s)
            settled = len(events)
            base = event_id(TAG, positions[index], _text(message).encode())
            problem = handler(self, events, ts, message, base)
            if problem is not None:
                del events[settled:]
                out.rejected.append(
                    Rejected(
                        index,
                        positions[index],
                        "missing_field",
                        f"`{problem}`: {name} needs it",
                        self._raw(message),
                        name,
                        ts,
                    )
                )
            for k in range(len(events) - settled):
                events[settled + k].id = f"{base}.{k}"
            out.origins.extend([index] * (len(events) - first))
        if not self._keep and out.rejected:
            conceal(out.rejected)
        return out

    # ---------------------------------------------------------------- handlers
    # Each returns the name of a missing field, or None.

    def _agent(self, message: Mapping[str, str]) -> str | None:
        raw = _value(message, "MemberName", "AgentName", "Interface", "Location", "AgentCalled")
        return None if raw is None else self.core.agent_name(raw)

    def _join(self, out: list[Event], ts: float, m: Mapping[str, str], base: str) -> str | None:
        call, queue = _value(m, "Uniqueid"), _value(m, "Queue")
        if call is None:
            return "Uniqueid"
        if queue is None:
            return "Queue"
        self.core.state.pending.pop(call, None)
        self.core.enter(out, ts, call, queue)
        return None

    def _leave(self, out: list[Event], ts: float, m: Mapping[str, str], base: str) -> str | None:
        call = _value(m, "Uniqueid")
        if call is None:
            return "Uniqueid"
        memo = self.core.state.calls.get(call)
        if memo is not None and memo.waiting:
            self.core.state.pending[call] = PendingLeave(ts, _value(m, "Queue"), base)
        return None

    def _abandon(self, out: list[Event], ts: float, m: Mapping[str, str], base: str) -> str | None:
        call = _value(m, "Uniqueid")
        if call is None:
            return "Uniqueid"
        self.core.state.pending.pop(call, None)
        self.core.leave(out, ts, call, _value(m, "Queue"), "abandoned", "")
        return None

    def _called(self, out: list[Event], ts: float, m: Mapping[str, str], base: str) -> str | None:
        call, agent = _value(m, "Uniqueid"), self._agent(m)
        if call is None:
            return "Uniqueid"
        if agent is None:
            return "MemberName"
        queue = _value(m, "Queue")
        out.append(
            CallRouted(
                ts=ts, call_id=call, agent=agent, queue=queue, site=self.options.site_of(queue)
            )
        )
        return None

    def _connect(self, out: list[Event], ts: float, m: Mapping[str, str], base: str) -> str | None:
        call, agent = _value(m, "Uniqueid"), self._agent(m)
        if call is None:
            return "Uniqueid"
        if agent is None:
            return "MemberName"
        self.core.state.pending.pop(call, None)
        self.core.answer(out, ts, call, _value(m, "Queue"), agent)
        return None

    def _complete(self, out: list[Event], ts: float, m: Mapping[str, str], base: str) -> str | None:
        call = _value(m, "Uniqueid")
        if call is None:
            return "Uniqueid"
        memo = self.core.state.calls.get(call)
        if memo is not None and memo.agent is not None:  # not already ended by a transfer
            self.core.end(out, ts, call, self._agent(m))
        return None

    def _transfer(self, out: list[Event], ts: float, m: Mapping[str, str], base: str) -> str | None:
        result = _value(m, "Result")
        if result is not None and result != "Success":
            return None
        calls = self.core.state.calls
        for key in _TRANSFER_KEYS:
            call = _value(m, key)
            if call is not None:
                memo = calls.get(call)
                if memo is not None and memo.agent is not None:
                    self.core.end(out, ts, call, memo.agent)
                    return None
        return None  # not a queue call in conversation: nothing to end

    def _member(self, m: Mapping[str, str]) -> tuple[str | None, str | None, str | None]:
        agent = self._agent(m)
        queue = _value(m, "Queue")
        problem = "MemberName" if agent is None else "Queue" if queue is None else None
        return agent, queue, problem

    def _pause_fields(self, agent: str, queue: str, m: Mapping[str, str]) -> None:
        paused = _value(m, "Paused")
        if paused is None:
            return
        memo = self.core.memo(agent)
        if paused == "1":
            if queue not in memo.paused:
                memo.paused.append(queue)
            memo.reason = _value(m, "PausedReason", "Reason")
        else:
            if memo.paused_all:
                memo.paused_all = False
                memo.paused = [q for q in memo.queues if q != queue]
            elif queue in memo.paused:
                memo.paused.remove(queue)
            if not memo.paused:
                memo.reason = None

    def _device(self, agent: str, m: Mapping[str, str]) -> None:
        status = _value(m, "Status")
        if status is not None:
            self.core.memo(agent).device = DEVICE_STATES.get(status)

    def _added(self, out: list[Event], ts: float, m: Mapping[str, str], base: str) -> str | None:
        agent, queue, problem = self._member(m)
        if problem is not None or agent is None or queue is None:
            return problem
        self.core.join(self.core.memo(agent), queue)
        self._pause_fields(agent, queue, m)
        self._device(agent, m)
        self.core.settle(out, agent, ts)
        return None

    def _removed(self, out: list[Event], ts: float, m: Mapping[str, str], base: str) -> str | None:
        agent, queue, problem = self._member(m)
        if problem is not None or agent is None or queue is None:
            return problem
        memo = self.core.memo(agent)
        if queue in memo.queues:
            memo.queues.remove(queue)
        if queue in memo.paused:
            memo.paused.remove(queue)
        if not memo.queues:
            memo.logged_in = False
        self.core.settle(out, agent, ts, explicit=True)
        return None

    def _paused(self, out: list[Event], ts: float, m: Mapping[str, str], base: str) -> str | None:
        agent, queue, problem = self._member(m)
        if problem is not None or agent is None or queue is None:
            return problem
        if _value(m, "Paused") is None:
            return "Paused"
        self.core.join(self.core.memo(agent), queue)
        self._pause_fields(agent, queue, m)
        self.core.settle(out, agent, ts)
        return None

    def _status(self, out: list[Event], ts: float, m: Mapping[str, str], base: str) -> str | None:
        agent, queue, problem = self._member(m)
        if problem is not None or agent is None or queue is None:
            return problem
        self.core.join(self.core.memo(agent), queue)
        self._pause_fields(agent, queue, m)
        self._device(agent, m)
        self.core.settle(out, agent, ts)
        return None


def _timestamp(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        ts = float(text)
    except ValueError:
        return None
    if not math.isfinite(ts) or not 0.0 <= ts <= MAX_TS:
        return None
    return ts


Handler = Callable[[AmiMapper, list[Event], float, Mapping[str, str], str], "str | None"]


def _missed(reason: str) -> Handler:
    def handler(
        self: AmiMapper, out: list[Event], ts: float, m: Mapping[str, str], base: str
    ) -> str | None:
        call, agent = _value(m, "Uniqueid"), self._agent(m)
        if call is None:
            return "Uniqueid"
        if agent is None:
            return "MemberName"
        self.core.miss(out, ts, call, _value(m, "Queue"), agent, reason)
        return None

    return handler


_HANDLERS: Final[dict[str, Handler]] = {
    "QueueCallerJoin": AmiMapper._join,
    "QueueCallerLeave": AmiMapper._leave,
    "QueueCallerAbandon": AmiMapper._abandon,
    "AgentCalled": AmiMapper._called,
    "AgentConnect": AmiMapper._connect,
    "AgentComplete": AmiMapper._complete,
    "AgentRingNoAnswer": _missed("no_answer"),
    "AgentDump": _missed("rejected"),
    "AttendedTransfer": AmiMapper._transfer,
    "BlindTransfer": AmiMapper._transfer,
    "QueueMemberAdded": AmiMapper._added,
    "QueueMemberRemoved": AmiMapper._removed,
    "QueueMemberPause": AmiMapper._paused,
    "QueueMemberStatus": AmiMapper._status,
}
"""The AMI events that are mapped (older names are translated first)."""

MAPPED_EVENTS: Final[tuple[str, ...]] = tuple(_HANDLERS)
