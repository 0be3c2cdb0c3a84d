"""Asterisk's queue verbs to canonical events: the part queue_log, its exports and AMI share.

A queue_log says what happened to calls (ENTERQUEUE, CONNECT, COMPLETECALLER, ...) and
to members (ADDMEMBER, PAUSE, ...), but it never says an agent's state: that is
*synthesised* here from what the log implies (SPEC §11), per agent:

- ``queues``: the queues it serves (ADDMEMBER adds, REMOVEMEMBER removes; a CONNECT or
  a PAUSE in a queue shows it serves that queue);
- logged in: by ADDMEMBER, AGENTLOGIN, AGENTCALLBACKLOGIN, a call it answered or a
  pause (static members are never added); logged out by AGENTLOGOFF,
  AGENTCALLBACKLOGOFF, or once it serves no queue;
- its queue calls in conversation (CONNECT to COMPLETE*/transfer) and outbound calls in
  progress (PBXware's OUTDIAL to OUTANSWER/OUTCANCEL/...): while either is open it is
  ``on_call``;
- paused (PAUSE per queue, PAUSEALL, with the reason): ``not_ready`` once paused in every
  queue it serves.

Its state is then ``logged_out``, ``on_call``, ``not_ready`` or ``available``, in that
order of precedence (AMI adds the device's ``ringing`` and in-use states), and an
``agent_state`` is emitted whenever that state, its reason or the queue list changes.
An agent is one name however the log writes it (``Agent/1127``,
``Local/1127@callback-agent``): see :class:`~callfloor.feeds.base.FeedOptions`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Final

import msgspec

from callfloor.events import (
    AgentState,
    CallAbandoned,
    CallAnswered,
    CallDequeued,
    CallEnded,
    CallMissed,
    CallQueued,
    Channel,
    Event,
)
from callfloor.feeds.base import FeedOptions, strip_agent, struct_copy
from callfloor.feeds.state import AgentMemo, AsteriskState, CallMemo

NO_VALUE: Final = frozenset(("", "NONE", "NULL", "\\N"))
"""Field values that mean "nothing" (Asterisk writes NONE; database exports NULL or \\N)."""

CALL_TTL_S: Final = 86_400.0
"""A call with no record for this long (event time) is forgotten: its end was never logged."""

SWEEP_EVERY_S: Final = 3_600.0

# Device states (AMI's QueueMemberStatus) that decide the agent state on their own.
DEVICE_IN_USE: Final = "in_use"
DEVICE_RINGING: Final = "ringing"
DEVICE_UNAVAILABLE: Final = "unavailable"


Handler = Callable[
    ["AsteriskCore", list[Event], float, str | None, str | None, str | None, list[str]], None
]


Record = tuple[int, float, str, str, str, str, str | None]
"""A parsed queue_log record: (index in its batch, epoch, verb, call id, queue, agent, data
fields joined by ``|`` or None); see :class:`~callfloor.feeds.queue_log.Parsed`."""

_UNSEEN: Final = object()
_crc32: Final = zlib.crc32
_adler32: Final = zlib.adler32
_SUFFIX: Final = tuple(f".{k}" for k in range(64))


class AsteriskCore:
    """Applies Asterisk queue verbs to the agent and call state, producing events.

    The parsers (queue_log, the database exports) turn their records into ``(ts, call
    id, queue, agent, verb, data)`` and call :meth:`record`; AMI calls the methods
    below it directly.
    """

    def __init__(self, options: FeedOptions) -> None:
        self.options = options
        self.state = AsteriskState()
        self._sites: dict[str | None, str] = {}
        self._sites.update(options.queue_sites)
        self._default_site = options.default_site
        self._names: dict[str, str | None] = {}

    # ---------------------------------------------------------------- state

    def snapshot(self) -> AsteriskState:
        """A copy of the state."""
        return struct_copy(self.state)

    def restore(self, state: msgspec.Struct) -> None:
        """Continue from a snapshot."""
        if not isinstance(state, AsteriskState):
            raise TypeError(f"expected an AsteriskState, got {type(state).__name__}")
        self.state = struct_copy(state)

    def agent_name(self, raw: str) -> str | None:
        """The one name of an agent however the log writes it; None for NONE or empty."""
        found = self._names.get(raw, _UNSEEN)
        if found is not _UNSEEN:
            return found  # type: ignore[return-value]
        text = raw.strip()
        name: str | None = None
        if text not in NO_VALUE:
            name = self.options.aliases.get(text)
            if name is None:
                short = strip_agent(text) if self.options.strip_technology else text
                name = self.options.aliases.get(short, short) or text
        if len(self._names) < 100_000:
            self._names[raw] = name
        return name

    def record(
        self,
        events: list[Event],
        origins: list[int],
        index: int,
        position: int,
        line: bytes,
        tag: str,
        ts: float,
        verb: str,
        call: str,
        queue: str,
        agent_field: str,
        data: list[str],
    ) -> tuple[str, str] | None:
        """Map one parsed record; its events get ids from ``tag``, ``position``, ``line``.

        Returns None when it was mapped, ``("skipped", verb)`` for a verb that carries
        nothing for callfloor, else ``(reason, message)`` of its rejection.
        """
        info = VERB_INFO.get(verb)
        if info is None:
            if verb in SKIPPED:
                return "skipped", verb
            return "unknown_verb", f"unknown queue_log verb {verb[:40]!r}"
        handler, need_call, need_queue, need_agent = info
        if call in NO_VALUE:
            if need_call:
                return "missing_field", f"`callid`: {verb} needs it, the record has {call!r}"
            call_id: str | None = None
        else:
            call_id = call
        if queue in NO_VALUE:
            if need_queue:
                return "missing_field", f"`queuename`: {verb} needs it, the record has {queue!r}"
            queue_name: str | None = None
        else:
            queue_name = queue
        agent = self._names.get(agent_field, _UNSEEN)
        if agent is _UNSEEN:
            agent = self.agent_name(agent_field)
        if agent is None and need_agent:
            return "missing_field", f"`agent`: {verb} needs it, the record has {agent_field!r}"
        state = self.state
        latest = state.latest
        first = len(events)
        if latest is None or ts > latest:
            state.latest = ts
            if ts - state.swept >= SWEEP_EVERY_S:
                self._sweep(events, ts)
        handler(self, events, ts, call_id, queue_name, agent, data)  # type: ignore[arg-type]
        made = len(events) - first
        if made:
            # event_id(), inlined: this runs for nearly every line.
            base = "%s-%x-%x" % (tag, position, _crc32(line) << 32 | _adler32(line))  # noqa: UP031
            for k in range(made):
                events[first + k].id = base + _SUFFIX[k] if k < 64 else f"{base}.{k}"
            origins.extend([index] * made)
        return None

    def apply(
        self,
        events: list[Event],
        origins: list[int],
        records: Iterable[Record],
        lines: Sequence[bytes],
        positions: Sequence[int],
        tag: str,
    ) -> list[tuple[int, str, str, float]]:
        """Map parsed records (their verbs known): :meth:`record` for a whole batch.

        Each record's verb is one of :data:`VERB_INFO`; ``lines[index]`` and
        ``positions[index]`` give its events' ids. Returns the records that miss a field
        their verb needs, as ``(index, reason, message, ts)``. The same events, ids and
        rejections as :meth:`record` record by record, with less work per record.
        """
        problems: list[tuple[int, str, str, float]] = []
        dispatch = _DISPATCH
        no_value = NO_VALUE
        unseen = _UNSEEN
        names_get = self._names.get
        state = self.state
        enter = self.enter
        answer = self.answer
        end = self.end
        prefix = tag.replace("%", "%%") + "-%x-%x"
        one = prefix + ".0"
        for index, ts, verb, call, queue, agent_field, data in records:
            handler, need_call, need_queue, need_agent, code = dispatch[verb]
            call_id: str | None = call
            if call in no_value:
                if need_call:
                    problems.append(
                        (
                            index,
                            "missing_field",
                            f"`callid`: {verb} needs it, the record has {call!r}",
                            ts,
                        )
                    )
                    continue
                call_id = None
            queue_name: str | None = queue
            if queue in no_value:
                if need_queue:
                    problems.append(
                        (
                            index,
                            "missing_field",
                            f"`queuename`: {verb} needs it, the record has {queue!r}",
                            ts,
                        )
                    )
                    continue
                queue_name = None
            agent = names_get(agent_field, unseen)
            if agent is unseen:
                agent = self.agent_name(agent_field)
            if agent is None and need_agent:
                problems.append(
                    (
                        index,
                        "missing_field",
                        f"`agent`: {verb} needs it, the record has {agent_field!r}",
                        ts,
                    )
                )
                continue
            first = len(events)
            latest = state.latest
            if latest is None or ts > latest:
                state.latest = ts
                if ts - state.swept >= SWEEP_EVERY_S:
                    self._sweep(events, ts)  # its events are this record's
            # The three verbs of nearly every line go straight to their method.
            if code == _ENTER:
                enter(events, ts, call, queue)
            elif code == _ANSWER:
                answer(events, ts, call, queue_name, agent)  # type: ignore[arg-type]
            elif code == _END:
                end(events, ts, call, agent)  # type: ignore[arg-type]
            else:
                fields = [] if data is None else data.split("|")
                handler(self, events, ts, call_id, queue_name, agent, fields)  # type: ignore[arg-type]
            made = len(events) - first
            if made == 1:
                line = lines[index]
                events[first].id = one % (positions[index], _crc32(line) << 32 | _adler32(line))
                origins.append(index)
            elif made == 2:
                line = lines[index]
                base = prefix % (positions[index], _crc32(line) << 32 | _adler32(line))
                events[first].id = base + ".0"
                events[first + 1].id = base + ".1"
                origins.append(index)
                origins.append(index)
            elif made:
                line = lines[index]
                base = prefix % (positions[index], _crc32(line) << 32 | _adler32(line))
                for k in range(made):
                    events[first + k].id = base + _SUFFIX[k] if k < 64 else f"{base}.{k}"
                origins.extend([index] * made)
        return problems

    # ---------------------------------------------------------------- verbs

    def _sweep(self, out: list[Event], ts: float) -> None:
        """Forget calls whose end never came (an agent stuck on one is freed)."""
        state = self.state
        state.swept = ts
        stale = [cid for cid, memo in state.calls.items() if memo.seen < ts - CALL_TTL_S]
        for cid in stale:
            memo = state.calls.pop(cid)
            if memo.agent is not None:
                m = state.agents.get(memo.agent)
                if m is not None and cid in m.calls:
                    m.calls.remove(cid)
                    self.settle(out, memo.agent, ts)
        for name, m in state.agents.items():
            if m.outbound and m.busy_since < ts - CALL_TTL_S:
                m.outbound.clear()
                self.settle(out, name, ts)
        state.pending = {k: v for k, v in state.pending.items() if v.ts >= ts - CALL_TTL_S}

    def memo(self, name: str) -> AgentMemo:
        """The agent's memo (created on first sight)."""
        agents = self.state.agents
        m = agents.get(name)
        if m is None:
            m = agents[name] = AgentMemo()
        return m

    def settle(
        self,
        out: list[Event],
        name: str,
        ts: float,
        explicit: bool = False,
        force: bool = False,
        m: AgentMemo | None = None,
    ) -> None:
        """Emit the agent's state if it changed (``explicit``: a logoff the log wrote).

        An agent never shown before is not introduced as ``logged_out`` unless the log
        logged it off: an outbound call of an agent that never logged in says nothing
        about the floor. ``force`` emits it even unchanged: at the end of a call, so the
        agent's next ``agent_state`` (not ``wrap_up``: Asterisk logs no after-call work)
        completes the call's handling at its end (SPEC §1), even when the agent stays on
        another call or was logged off during this one.
        """
        if m is None:
            m = self.state.agents[name]
        # derive(m), inlined: this runs for most lines.
        reason: str | None = None
        device = m.device
        if not m.logged_in or device == DEVICE_UNAVAILABLE:
            state = "logged_out"
        elif m.calls or m.outbound or device == DEVICE_IN_USE:
            state = "on_call"
        elif device == DEVICE_RINGING:
            state = "ringing"
        elif m.paused_all or (m.paused and all(q in m.paused for q in m.queues)):
            state = "not_ready"
            reason = m.reason
        else:
            state = "available"
        queues = m.shown_queues
        same_queues = m.queues == queues
        if state == m.shown and reason == m.shown_reason and same_queues and not force:
            return
        if m.shown is None and state == "logged_out" and not explicit:
            return
        if not same_queues:
            # A new list: events share it while it holds, and it is never changed in place.
            queues = m.shown_queues = list(m.queues)
        m.shown = state
        m.shown_reason = reason
        site = self._sites.get(queues[0], self._default_site) if queues else self._default_site
        out.append(
            AgentState(
                ts=ts,
                agent=name,
                state=state,  # type: ignore[arg-type]
                reason=reason,
                queues=queues,
                site=site,
            )
        )

    def join(self, m: AgentMemo, queue: str | None) -> None:
        """The agent serves ``queue`` and is logged in (implied by a call or a pause)."""
        m.logged_in = True
        if queue is not None and queue not in m.queues:
            m.queues.append(queue)

    # -- calls

    def enter(
        self, out: list[Event], ts: float, call: str, queue: str, channel: Channel = "voice"
    ) -> None:
        """A caller entered ``queue``."""
        calls = self.state.calls
        old = calls.get(call)
        if old is not None and old.agent is not None:
            # Back in a queue while we thought it in conversation (a transfer the log
            # did not show): the conversation is over.
            self._end_conversation(out, ts, call, old.agent)
        calls[call] = CallMemo(queue, None, True, ts)
        out.append(
            CallQueued(
                ts=ts,
                call_id=call,
                queue=queue,
                channel=channel,
                site=self._sites.get(queue, self._default_site),
            )
        )

    def answer(self, out: list[Event], ts: float, call: str, queue: str | None, agent: str) -> None:
        """``agent`` answered ``call``: the leg ends, the conversation starts."""
        state = self.state
        memo = state.calls.get(call)
        if memo is None:
            memo = state.calls[call] = CallMemo(queue, agent, False, ts)
        else:
            queue = queue or memo.queue
            memo.waiting = False
            memo.agent = agent
            memo.seen = ts
            memo.queue = queue
        out.append(
            CallAnswered(
                ts=ts,
                call_id=call,
                agent=agent,
                queue=queue,
                site=self._sites.get(queue, self._default_site),
            )
        )
        m = state.agents.get(agent)
        if m is None:
            m = state.agents[agent] = AgentMemo()
        m.logged_in = True
        if queue is not None and queue not in m.queues:
            m.queues.append(queue)
        if call not in m.calls:
            m.calls.append(call)
        self.settle(out, agent, ts, False, False, m)

    def leave(
        self, out: list[Event], ts: float, call: str, queue: str | None, kind: str, reason: str
    ) -> None:
        """The caller left the queue unanswered: ``kind`` abandoned or dequeued."""
        memo = self.state.calls.pop(call, None)
        if memo is not None:
            queue = queue or memo.queue
            if memo.agent is not None:  # in conversation after all: keep it
                self.state.calls[call] = memo
        site = self._sites.get(queue, self._default_site)
        if kind == "abandoned":
            out.append(CallAbandoned(ts=ts, call_id=call, queue=queue, site=site))
        else:
            out.append(CallDequeued(ts=ts, call_id=call, queue=queue, reason=reason, site=site))

    def end(self, out: list[Event], ts: float, call: str, agent: str | None) -> None:
        """The conversation of ``call`` is over (complete or transferred)."""
        memo = self.state.calls.pop(call, None)
        talked = memo.agent if memo is not None else None
        who = agent or talked
        queue = memo.queue if memo is not None else None
        out.append(
            CallEnded(
                ts=ts, call_id=call, agent=who, site=self._sites.get(queue, self._default_site)
            )
        )
        if talked is not None:
            m = self.state.agents.get(talked)  # _free(), inlined
            if m is not None and call in m.calls:
                m.calls.remove(call)
                self.settle(out, talked, ts, False, True, m)
        if agent is not None and agent != talked:
            self._free(out, ts, call, agent)

    def _end_conversation(self, out: list[Event], ts: float, call: str, agent: str) -> None:
        memo = self.state.calls.get(call)
        queue = memo.queue if memo is not None else None
        out.append(
            CallEnded(
                ts=ts, call_id=call, agent=agent, site=self._sites.get(queue, self._default_site)
            )
        )
        self._free(out, ts, call, agent)

    def _free(self, out: list[Event], ts: float, call: str, name: str) -> None:
        m = self.state.agents.get(name)
        if m is not None and call in m.calls:
            m.calls.remove(call)
            self.settle(out, name, ts, False, True, m)

    def miss(
        self,
        out: list[Event],
        ts: float,
        call: str,
        queue: str | None,
        agent: str,
        reason: str,
    ) -> None:
        """A call rang ``agent`` and was not taken there."""
        memo = self.state.calls.get(call)
        if memo is not None:
            memo.seen = ts
            queue = queue or memo.queue
        out.append(
            CallMissed(
                ts=ts,
                call_id=call,
                agent=agent,
                queue=queue,
                reason=reason,
                site=self._sites.get(queue, self._default_site),
            )
        )

    def restart(self, out: list[Event], ts: float) -> None:
        """Asterisk (app_queue) started: no call survives it; members and pauses do."""
        calls = self.state.calls
        self.state.calls = {}
        for cid, memo in calls.items():
            site = self._sites.get(memo.queue, self._default_site)
            if memo.agent is None:
                out.append(
                    CallDequeued(ts=ts, call_id=cid, queue=memo.queue, reason="other", site=site)
                )
            else:
                out.append(CallEnded(ts=ts, call_id=cid, agent=memo.agent, site=site))
        for name, m in self.state.agents.items():
            if m.calls or m.outbound or m.device is not None:
                had_calls = bool(m.calls)
                m.calls.clear()
                m.outbound.clear()
                m.device = None
                self.settle(out, name, ts, force=had_calls)
        self.state.pending.clear()


def derive(m: AgentMemo) -> tuple[str, str | None]:
    """The agent state (and not-ready reason) a memo implies (inlined in ``settle``)."""
    if not m.logged_in:
        return "logged_out", None
    device = m.device
    if device == DEVICE_UNAVAILABLE:
        return "logged_out", None
    if m.calls or m.outbound or device == DEVICE_IN_USE:
        return "on_call", None
    if device == DEVICE_RINGING:
        return "ringing", None
    if m.paused_all or (m.paused and all(q in m.paused for q in m.queues)):
        return "not_ready", m.reason
    return "available", None


# ------------------------------------------------------------------------- the verbs
# Each handler gets (core, out, ts, call, queue, agent, data); the fields a verb needs
# are checked before (NEEDS).


def _enterqueue(
    c: AsteriskCore,
    out: list[Event],
    ts: float,
    call: str | None,
    queue: str | None,
    agent: str | None,
    data: list[str],
) -> None:
    assert call is not None and queue is not None
    c.enter(out, ts, call, queue)


def _connect(
    c: AsteriskCore,
    out: list[Event],
    ts: float,
    call: str | None,
    queue: str | None,
    agent: str | None,
    data: list[str],
) -> None:
    assert call is not None and agent is not None
    c.answer(out, ts, call, queue, agent)


def _leaver(kind: str, reason: str) -> Handler:
    def handler(
        c: AsteriskCore,
        out: list[Event],
        ts: float,
        call: str | None,
        queue: str | None,
        agent: str | None,
        data: list[str],
    ) -> None:
        assert call is not None
        c.leave(out, ts, call, queue, kind, reason)

    return handler


def _complete(
    c: AsteriskCore,
    out: list[Event],
    ts: float,
    call: str | None,
    queue: str | None,
    agent: str | None,
    data: list[str],
) -> None:
    assert call is not None
    c.end(out, ts, call, agent)


def _misser(reason: str) -> Handler:
    def handler(
        c: AsteriskCore,
        out: list[Event],
        ts: float,
        call: str | None,
        queue: str | None,
        agent: str | None,
        data: list[str],
    ) -> None:
        assert call is not None and agent is not None
        c.miss(out, ts, call, queue, agent, reason)

    return handler


def _reason(data: list[str]) -> str | None:
    text = data[0].strip() if data else ""
    return None if text in NO_VALUE else text


def _pause(
    c: AsteriskCore,
    out: list[Event],
    ts: float,
    call: str | None,
    queue: str | None,
    agent: str | None,
    data: list[str],
) -> None:
    assert agent is not None
    m = c.memo(agent)
    if queue is None:  # a PAUSE without a queue is a pause in all of them
        m.paused_all = True
    else:
        c.join(m, queue)
        if queue not in m.paused:
            m.paused.append(queue)
    m.reason = _reason(data)
    c.settle(out, agent, ts)


def _unpause(
    c: AsteriskCore,
    out: list[Event],
    ts: float,
    call: str | None,
    queue: str | None,
    agent: str | None,
    data: list[str],
) -> None:
    assert agent is not None
    m = c.memo(agent)
    if queue is None:
        m.paused_all = False
        m.paused.clear()
    else:
        c.join(m, queue)
        if m.paused_all:  # paused everywhere but now unpaused here
            m.paused_all = False
            m.paused = [q for q in m.queues if q != queue]
        elif queue in m.paused:
            m.paused.remove(queue)
    if not m.paused_all and not m.paused:
        m.reason = None
    c.settle(out, agent, ts)


def _pauseall(
    c: AsteriskCore,
    out: list[Event],
    ts: float,
    call: str | None,
    queue: str | None,
    agent: str | None,
    data: list[str],
) -> None:
    assert agent is not None
    m = c.memo(agent)
    m.paused_all = True
    reason = _reason(data)
    if reason is not None or not m.paused:
        m.reason = reason
    c.settle(out, agent, ts)


def _unpauseall(
    c: AsteriskCore,
    out: list[Event],
    ts: float,
    call: str | None,
    queue: str | None,
    agent: str | None,
    data: list[str],
) -> None:
    assert agent is not None
    m = c.memo(agent)
    m.paused_all = False
    m.paused.clear()
    m.reason = None
    c.settle(out, agent, ts)


def _pausereason(
    c: AsteriskCore,
    out: list[Event],
    ts: float,
    call: str | None,
    queue: str | None,
    agent: str | None,
    data: list[str],
) -> None:
    # QueueMetrics' verb: the code of the agent's pause (logged with, or right after, it).
    assert agent is not None
    m = c.memo(agent)
    if not m.paused_all and not (m.paused and all(q in m.paused for q in m.queues)):
        m.paused_all = True
    m.reason = _reason(data)
    c.settle(out, agent, ts)


def _addmember(
    c: AsteriskCore,
    out: list[Event],
    ts: float,
    call: str | None,
    queue: str | None,
    agent: str | None,
    data: list[str],
) -> None:
    assert agent is not None and queue is not None
    c.join(c.memo(agent), queue)
    c.settle(out, agent, ts)


def _removemember(
    c: AsteriskCore,
    out: list[Event],
    ts: float,
    call: str | None,
    queue: str | None,
    agent: str | None,
    data: list[str],
) -> None:
    assert agent is not None and queue is not None
    m = c.memo(agent)
    if queue in m.queues:
        m.queues.remove(queue)
    if queue in m.paused:
        m.paused.remove(queue)
    if not m.queues:
        m.logged_in = False
    c.settle(out, agent, ts, explicit=True)


def _login(
    c: AsteriskCore,
    out: list[Event],
    ts: float,
    call: str | None,
    queue: str | None,
    agent: str | None,
    data: list[str],
) -> None:
    assert agent is not None
    c.join(c.memo(agent), queue)
    c.settle(out, agent, ts)


def _logoff(
    c: AsteriskCore,
    out: list[Event],
    ts: float,
    call: str | None,
    queue: str | None,
    agent: str | None,
    data: list[str],
) -> None:
    assert agent is not None
    c.memo(agent).logged_in = False
    c.settle(out, agent, ts, explicit=True)


def _queuestart(
    c: AsteriskCore,
    out: list[Event],
    ts: float,
    call: str | None,
    queue: str | None,
    agent: str | None,
    data: list[str],
) -> None:
    c.restart(out, ts)


def _outdial(
    c: AsteriskCore,
    out: list[Event],
    ts: float,
    call: str | None,
    queue: str | None,
    agent: str | None,
    data: list[str],
) -> None:
    # PBXware: the agent dials out; it is busy on the outbound call until its end verb.
    assert agent is not None and call is not None
    m = c.memo(agent)
    if call not in m.outbound:
        m.outbound.append(call)
    m.busy_since = ts
    c.settle(out, agent, ts)


def _outend(
    c: AsteriskCore,
    out: list[Event],
    ts: float,
    call: str | None,
    queue: str | None,
    agent: str | None,
    data: list[str],
) -> None:
    # PBXware writes OUTANSWER when the outbound call ends (its htime is the ring time,
    # its ttime the talk time: OUTDIAL's time + both is OUTANSWER's); OUTCANCEL,
    # OUTCHANUNAVAIL, OUTCONGESTION end an attempt that never connected.
    assert agent is not None and call is not None
    m = c.memo(agent)
    if call in m.outbound:
        m.outbound.remove(call)
        c.settle(out, agent, ts)


VERBS: Final[dict[str, Handler]] = {
    "ENTERQUEUE": _enterqueue,
    "CONNECT": _connect,
    "ABANDON": _leaver("abandoned", ""),
    "EXITWITHTIMEOUT": _leaver("dequeued", "timeout"),
    "EXITWITHKEY": _leaver("dequeued", "key"),
    "EXITEMPTY": _leaver("dequeued", "empty"),
    "WITHDRAW": _leaver("dequeued", "other"),
    "COMPLETECALLER": _complete,
    "COMPLETEAGENT": _complete,
    "TRANSFER": _complete,
    "ATTENDEDTRANSFER": _complete,
    "BLINDTRANSFER": _complete,
    "RINGNOANSWER": _misser("no_answer"),
    "AGENTDUMP": _misser("rejected"),
    "PAUSE": _pause,
    "UNPAUSE": _unpause,
    "PAUSEALL": _pauseall,
    "UNPAUSEALL": _unpauseall,
    "PAUSEREASON": _pausereason,
    "ADDMEMBER": _addmember,
    "REMOVEMEMBER": _removemember,
    "AGENTLOGIN": _login,
    "AGENTCALLBACKLOGIN": _login,
    "AGENTLOGOFF": _logoff,
    "AGENTCALLBACKLOGOFF": _logoff,
    "QUEUESTART": _queuestart,
    # PBXware's outbound verbs
    "OUTDIAL": _outdial,
    "OUTANSWER": _outend,
    "OUTCANCEL": _outend,
    "OUTCHANUNAVAIL": _outend,
    "OUTCONGESTION": _outend,
    "OUTTRANSFER": _outend,
}
"""Verbs that change the floor, and their handlers."""

NEEDS: Final[dict[str, str]] = {
    "ENTERQUEUE": "cq",
    "CONNECT": "ca",
    "ABANDON": "c",
    "EXITWITHTIMEOUT": "c",
    "EXITWITHKEY": "c",
    "EXITEMPTY": "c",
    "WITHDRAW": "c",
    "COMPLETECALLER": "c",
    "COMPLETEAGENT": "c",
    "TRANSFER": "c",
    "ATTENDEDTRANSFER": "c",
    "BLINDTRANSFER": "c",
    "RINGNOANSWER": "ca",
    "AGENTDUMP": "ca",
    "PAUSE": "a",
    "UNPAUSE": "a",
    "PAUSEALL": "a",
    "UNPAUSEALL": "a",
    "PAUSEREASON": "a",
    "ADDMEMBER": "aq",
    "REMOVEMEMBER": "aq",
    "AGENTLOGIN": "a",
    "AGENTCALLBACKLOGIN": "a",
    "AGENTLOGOFF": "a",
    "AGENTCALLBACKLOGOFF": "a",
    "QUEUESTART": "",
    "OUTDIAL": "ca",
    "OUTANSWER": "ca",
    "OUTCANCEL": "ca",
    "OUTCHANUNAVAIL": "ca",
    "OUTCONGESTION": "ca",
    "OUTTRANSFER": "ca",
}
"""The fields each mapped verb needs: c = call id, q = queue, a = agent."""

VERB_INFO: Final[dict[str, tuple[Handler, bool, bool, bool]]] = {
    verb: (handler, "c" in NEEDS[verb], "q" in NEEDS[verb], "a" in NEEDS[verb])
    for verb, handler in VERBS.items()
}
"""Each mapped verb's handler and whether it needs a call id, a queue, an agent."""

_GENERIC: Final = 0
_ENTER: Final = 1
_ANSWER: Final = 2
_END: Final = 3
_DISPATCH: Final[dict[str, tuple[Handler, bool, bool, bool, int]]] = {
    verb: (
        *info,
        _ENTER
        if info[0] is _enterqueue
        else _ANSWER
        if info[0] is _connect
        else _END
        if info[0] is _complete
        else _GENERIC,
    )
    for verb, info in VERB_INFO.items()
}
""":data:`VERB_INFO` with a code for the verbs :meth:`AsteriskCore.apply` calls directly."""

SKIPPED: Final[frozenset[str]] = frozenset(
    (
        "CONFIGRELOAD",  # the configuration was reloaded: calls and members carry on
        "DID",  # the number the caller dialled, before ENTERQUEUE
        "INFO",  # free information lines
        "SYSCOMPAT",  # channels could not be bridged; the ABANDON that follows counts
        "FULL",  # the caller could not join: the queue was full (never a leg)
        "JOINEMPTY",  # could not join: no members (never a leg)
        "JOINUNAVAIL",  # could not join: no member available (never a leg)
        "RINGCANCELED",  # the caller hung up (or another member answered) while it rang
        "PENALTY",  # a member's penalty changed
        "RINGINUSE",  # a member's ringinuse setting changed
    )
)
"""Verbs Asterisk writes that carry nothing for callfloor: counted as skipped."""
