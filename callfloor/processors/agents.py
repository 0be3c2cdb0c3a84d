"""Agents: each agent's ``agent_state`` history, the fold over it, and handling.

An agent's state at any instant is a function of its ``agent_state`` events sorted by
time (arrival order breaks ties), never of the order they arrived in. So each agent
keeps its history (time and payload code per event, in compact arrays) and a *fold*:
the state after the last event. An event later than the agent's last one is folded
in one step; an earlier one is inserted and the fold is recomputed from the nearest
*mark* before it (or the agent's *base*, the fold before its retained history) only
until it converges with the old fold, and spliced there (:func:`refold_late`). The
same :func:`step` does both.

Spells (SPEC §1) are runs of one state and one reason; the rules for what closing a
spell does are a table (:data:`CLOSE_SPELL`), in the manner of h11's transition
tables: reading it tells what each state's spell contributes.

Handling (SPEC §1): a call ended at ``e`` by this agent is decided by
:func:`decide_handling` from the history alone: after-call work is the ``wrap_up``
spell current strictly before ``e``, or the one the agent's next ``agent_state``
at or after ``e`` starts (at equal times the call event comes first).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from typing import Final

from callfloor.config import AgentRules
from callfloor.processors.calendar import SiteCalendar
from callfloor.processors.violations import (
    STALE_AGENT,
    WARNING,
    NRDay,
    Violation,
    add_not_ready,
    counts_not_ready,
    respell,
    spell_kind,
)

LOGGED_OUT: Final = "logged_out"
WRAP_UP: Final = "wrap_up"
NOT_READY: Final = "not_ready"


# What one ``agent_state`` says: (state, reason (only for not_ready), site, queue list,
# team, display name); ``None`` keeps what the agent had. A plain tuple: one is built
# per event, and a NamedTuple's constructor costs a Python-level call.
Payload = tuple[str, str | None, str, tuple[str, ...] | None, str | None, str | None]
P_STATE: Final = 0
P_REASON: Final = 1
P_SITE: Final = 2
P_GROUP: Final = 3
P_TEAM: Final = 4
P_DISPLAY: Final = 5


_NO_VIOLATIONS: Final[list[Violation]] = []
_NO_DAYS: Final[list[NRDay]] = []


class AgentFold:
    """An agent's state after a prefix of its history (copyable)."""

    __slots__ = (
        "closed",
        "display",
        "group",
        "keeps_spells",
        "known",
        "last_ts",
        "nr_days",
        "reason",
        "since",
        "site",
        "state",
        "team",
    )

    def __init__(self, site: str) -> None:
        self.known = False  # has any agent_state
        self.state: str | None = None
        self.reason: str | None = None
        self.since = 0.0  # start of the current spell
        self.last_ts = float("-inf")  # time of the last agent_state (silence)
        self.site = site
        self.group: tuple[str, ...] = ()
        self.team: str | None = None
        self.display: str | None = None
        # Materialised violations of spells and silences that ended, and non-exempt
        # not-ready time of closed spells by day. Most agents have none: these start as
        # shared empty lists, replaced (never appended to) on first use.
        self.closed: list[Violation] = _NO_VIOLATIONS
        self.nr_days: list[NRDay] = _NO_DAYS
        # Its days keep their spells (a re-fold from marks splices them; see refold_late).
        self.keeps_spells = False

    def copy(self) -> AgentFold:
        """An independent copy (violations are immutable once closed)."""
        f = AgentFold(self.site)
        f.known = self.known
        f.state = self.state
        f.reason = self.reason
        f.since = self.since
        f.last_ts = self.last_ts
        f.group = self.group
        f.team = self.team
        f.display = self.display
        f.keeps_spells = self.keeps_spells
        if self.closed:
            f.closed = list(self.closed)
        if self.nr_days:
            f.nr_days = [d.copy() for d in self.nr_days]
        return f


_NOTHING_PENDING: Final[list[CallEnd]] = []  # shared: replaced, never appended to
_SEARCHED: Final = 8  # payload tables up to this size are searched, not indexed

# The base of every agent whose history was never pruned: shared, so it is never
# mutated (a re-fold copies it; retention replaces it with an agent's own).
EMPTY_BASE: Final = AgentFold("default")


class CallEnd:
    """A call this agent ended: its handling completes when after-call work is known."""

    __slots__ = ("answered_at", "attached", "call_id", "done_at", "ended_at", "queue")

    def __init__(self, call_id: str, queue: str, answered_at: float, ended_at: float) -> None:
        self.call_id = call_id
        self.queue = queue
        self.answered_at = answered_at
        self.ended_at = ended_at
        self.done_at: float | None = None  # handling completed (record applied) at
        self.attached = False  # a wrap_up spell is this call's after-call work

    def key(self) -> tuple[str, str, float, float]:
        """Identity: the same call end regenerated by a re-fold has the same key."""
        return (self.call_id, self.queue, self.answered_at, self.ended_at)

    def handle_s(self) -> float:
        """Talk time plus after-call work (valid once ``done_at`` is set)."""
        assert self.done_at is not None
        talk = self.ended_at - self.answered_at
        acw = self.done_at - self.ended_at
        return (talk if talk > 0 else 0.0) + (acw if acw > 0 else 0.0)


class AgentTrack:
    """One agent: history, base and current fold, answers, misses, call ends."""

    __slots__ = (
        "answers",
        "base",
        "carried_at",
        "carried_from",
        "carried_gap",
        "codes",
        "ends",
        "fold",
        "handled_at",
        "handled_s",
        "marks",
        "misses",
        "name",
        "offers",
        "payload_index",
        "payloads",
        "pending",
        "roster_cache",
        "roster_changed",
        "ts",
    )

    def __init__(self, name: str, site: str) -> None:
        self.name = name
        self.ts = array("d")  # times of agent_state events, ascending
        # Per event: payload index * 2 + 1 if the event carried an id (for duplicates).
        self.codes = array("q")
        self.payloads: list[Payload] = []
        # Index of payloads, made only when an agent has many: a few are searched.
        self.payload_index: dict[Payload, int] | None = None
        self.base = EMPTY_BASE  # the fold before ts[0]: empty until retention prunes
        self.fold = AgentFold(site)  # after ts[-1]
        self.answers = array("d")  # times of its non-orphaned call_answered, ascending
        self.misses = array("d")  # times of its call_missed, ascending
        # Offers (``offered_today``): a call_routed to the agent, or a non-orphaned
        # call_answered by it with no ring before it; times ascending.
        self.offers = array("d")
        # Answers that took up an earlier ring of the same call: answer times (ascending)
        # and the ring's time, aligned. An answer just after midnight whose ring was
        # before it is an offer of the new day too (see derive.agent_offered_today).
        self.carried_at = array("d")
        self.carried_from = array("d")
        # The longest ring-to-answer gap among them (never lowered): a read scans only
        # the answers that gap after midnight (see derive.agent_offered_today).
        self.carried_gap = 0.0
        self.ends: list[CallEnd] = []  # by ended_at
        # Completed call ends live retention dropped from ``ends``: their ``ended_at``
        # (ascending) and handle time, aligned, kept for ``handled_today``.
        self.handled_at = array("d")
        self.handled_s = array("d")
        self.pending: list[CallEnd] = _NOTHING_PENDING  # ends whose handling is undecided
        # Folds of history prefixes, (index, fold of ts[:index]), made by late events'
        # re-folds (see refold_late); None until one, and again whenever the history's
        # indices or the fold's lists change otherwise (retention).
        self.marks: list[Mark] | None = None
        # Roster episodes and the history they were worked out from (see derive.py).
        # (zone, first instant known), the day read, episodes per shift.
        self.roster_cache: (
            tuple[
                tuple[str, float],
                float,
                dict[tuple[float, float], list[tuple[str, float, float]]],
            ]
            | None
        ) = None
        self.roster_changed = float("inf")  # the earliest entry added since (see derive.py)

    def add_pending(self, end: CallEnd) -> None:
        """Note a call end whose handling is undecided."""
        if self.pending:
            self.pending.append(end)
        else:
            self.pending = [end]

    def index_of(self, payload: Payload) -> int:
        """The index of a payload in the agent's table, interned if new (history codes
        are index * 2 + had id)."""
        payloads = self.payloads
        table = self.payload_index
        if table is None:
            for i in range(len(payloads)):
                if payloads[i] == payload:
                    return i
        else:
            found = table.get(payload)
            if found is not None:
                return found
        index = len(payloads)
        payloads.append(payload)
        if table is not None:
            table[payload] = index
        elif index >= _SEARCHED:
            self.payload_index = {p: i for i, p in enumerate(payloads)}
        return index

    def set_payloads(self, payloads: list[Payload]) -> None:
        """Replace the payload table (codes must be remapped by the caller)."""
        self.payloads = payloads
        self.payload_index = (
            {p: i for i, p in enumerate(payloads)} if len(payloads) > _SEARCHED else None
        )

    def code(self, payload: Payload, has_id: bool) -> int:
        """The compact code of a payload (interned per agent)."""
        return self.index_of(payload) * 2 + (1 if has_id else 0)

    def payload(self, i: int) -> Payload:
        """The payload of history entry ``i``."""
        return self.payloads[self.codes[i] >> 1]

    def state_at(self, i: int) -> str:
        """The state of history entry ``i``."""
        return self.payloads[self.codes[i] >> 1][P_STATE]

    def has_duplicate(self, t: float, state: str) -> bool:
        """Whether an id-less ``agent_state`` with this time and state is already here."""
        ts = self.ts
        i = bisect_left(ts, t)
        codes = self.codes
        payloads = self.payloads
        while i < len(ts) and ts[i] == t:
            code = codes[i]
            if not code & 1 and payloads[code >> 1][P_STATE] == state:
                return True
            i += 1
        return False

    def insert(self, t: float, code: int) -> bool:
        """Add a history entry; True if it went at the end (an in-order event)."""
        ts = self.ts
        if not ts or t >= ts[-1]:
            ts.append(t)
            self.codes.append(code)
            return True
        i = bisect_right(ts, t)  # after equal times: arrival order breaks ties
        ts.insert(i, t)
        self.codes.insert(i, code)
        return False


def ended_at_of(end: CallEnd) -> float:
    """Sort key of an agent's call ends."""
    return end.ended_at


# ----------------------------------------------------------------------------- the fold

CalendarOf = Callable[[str], SiteCalendar]


def _close(f: AgentFold, v: Violation) -> None:
    """Materialise a violation that ended."""
    if f.closed:
        f.closed.append(v)
    else:
        f.closed = [v]


def _close_not_ready(f: AgentFold, t: float, rules: AgentRules, calendar: CalendarOf) -> None:
    if not counts_not_ready(rules, f.state, f.reason):
        return
    limit = rules.not_ready_limit(f.reason)
    if t - f.since > limit:
        _close(f, Violation(spell_kind(NOT_READY), WARNING, f.since + limit, t, t - f.since))
    if t > f.since:
        if not f.nr_days:
            f.nr_days = []
        add_not_ready(
            f.nr_days, calendar(f.site), rules.daily_not_ready_s, f.since, t, f.keeps_spells
        )


def _close_wrap_up(f: AgentFold, t: float, rules: AgentRules, calendar: CalendarOf) -> None:
    limit = rules.wrap_up_max_s
    if t - f.since > limit:
        _close(f, Violation(spell_kind(WRAP_UP), WARNING, f.since + limit, t, t - f.since))


# What closing a spell of each state does; states not listed contribute nothing
# (their time is neither limited nor counted).
CLOSE_SPELL: Final[dict[str, Callable[[AgentFold, float, AgentRules, CalendarOf], None]]] = {
    NOT_READY: _close_not_ready,
    WRAP_UP: _close_wrap_up,
}


def step(f: AgentFold, t: float, p: Payload, rules: AgentRules, calendar: CalendarOf) -> None:
    """Fold one ``agent_state`` at ``t`` (no earlier than every event folded so far)."""
    state, reason, site, group, team, display = p
    if f.known:
        if f.state != LOGGED_OUT:
            silence = t - f.last_ts
            limit = rules.stale_after_s
            if silence > limit:
                _close(f, Violation(STALE_AGENT, WARNING, f.last_ts + limit, t, silence))
        if state != f.state or reason != f.reason:
            old = f.state
            assert old is not None
            close = CLOSE_SPELL.get(old)
            if close is not None:
                close(f, t, rules, calendar)
            f.state = state
            f.reason = reason
            f.since = t
    else:
        f.known = True
        f.state = state
        f.reason = reason
        f.since = t
    if t > f.last_ts:
        f.last_ts = t
    f.site = site
    if group is not None:
        f.group = group
    if team is not None:
        f.team = team
    if display is not None:
        f.display = display


def refold(track: AgentTrack, rules: AgentRules, calendar: CalendarOf) -> AgentFold:
    """The fold of the whole retained history, from the base."""
    f = track.base.copy()
    ts = track.ts
    payload = track.payload
    for i in range(len(ts)):
        step(f, ts[i], payload(i), rules, calendar)
    return f


MARK_EVERY: Final = 32  # history entries between two marks a re-fold leaves


def _same_state(a: AgentFold, b: AgentFold) -> bool:
    """Whether two folds are in the same state (their materialised lists aside)."""
    return (
        a.since == b.since
        and a.last_ts == b.last_ts
        and a.state == b.state
        and a.reason == b.reason
        and a.known == b.known
        and a.site == b.site
        and a.group == b.group
        and a.team == b.team
        and a.display == b.display
    )


# A mark: (history index, the fold's state before that entry (its lists unused), how
# many violations the fold had closed, how many spells each day total had kept). The
# lists themselves are the current fold's, cut at those counts: a mark holds no copy,
# and a splice before it only moves its counts.
Mark = tuple[int, AgentFold, int, dict[float, int]]


def _state_of(f: AgentFold) -> AgentFold:
    """A copy of the fold's state without its lists."""
    g = AgentFold(f.site)
    g.known = f.known
    g.state = f.state
    g.reason = f.reason
    g.since = f.since
    g.last_ts = f.last_ts
    g.group = f.group
    g.team = f.team
    g.display = f.display
    g.keeps_spells = True
    return g


def _counts(f: AgentFold) -> dict[float, int]:
    """How many spells each of the fold's day totals kept."""
    out: dict[float, int] = {}
    for d in f.nr_days:
        assert d.spells is not None
        out[d.start] = len(d.spells[2])
    return out


def _mark(i: int, f: AgentFold) -> Mark:
    return (i, _state_of(f), len(f.closed), _counts(f))


def _resume(mark: Mark, final: AgentFold, limits: Sequence[float]) -> AgentFold:
    """The fold at a mark: its state, and the current fold's lists cut at its counts."""
    _, state, n_closed, counts = mark
    f = _state_of(state)
    closed = final.closed[:n_closed]
    f.closed = closed if closed else _NO_VIOLATIONS
    days: list[NRDay] = []
    for d in final.nr_days:
        n = counts.get(d.start)
        assert d.spells is not None
        closed_s, crossings, spells = d.spells
        if n is None or (not n and not crossings and not closed_s):
            continue  # not counted yet at the mark
        day = NRDay(d.start, d.end)
        day.spells = (closed_s, list(crossings), spells[:n])
        respell(day, limits)
        days.append(day)
    f.nr_days = days if days else _NO_DAYS
    return f


def _splice(new: AgentFold, old: Mark, final: AgentFold, limits: Sequence[float]) -> None:
    """Make ``final`` what it is after ``new`` instead of after the mark ``old``, where
    both are in the same state: what was closed and counted before the mark becomes
    what ``new`` closed and counted; what came after is the same (appended violations,
    spells added to day totals, whose sums and crossings are worked out again)."""
    _, _, n_closed, counts = old
    closed = new.closed + final.closed[n_closed:]
    final.closed = closed if closed else _NO_VIOLATIONS
    days = {d.start: d.copy() for d in new.nr_days}
    for d in final.nr_days:
        assert d.spells is not None
        added = d.spells[2][counts.get(d.start, 0) :]
        if not added:
            continue
        day = days.get(d.start)
        if day is None:
            day = days[d.start] = NRDay(d.start, d.end)
            day.keep_spells()
        assert day.spells is not None
        day.spells[2].extend(added)
        respell(day, limits)
    final.nr_days = sorted(days.values(), key=_day_start) if days else _NO_DAYS


def _day_start(day: NRDay) -> float:
    return day.start


def refold_late(track: AgentTrack, p: int, rules: AgentRules, calendar: CalendarOf) -> AgentFold:
    """The agent's fold after entry ``p`` of its history was inserted (a late event).

    Folds on from the last mark before ``p`` only until the fold is back in the state
    the old history's next mark recorded (usually within :data:`MARK_EVERY` entries);
    from there the rest of the history goes as it went, so the current fold is the old
    one with what was closed and counted before that point replaced, and the marks
    after it only move their counts. The cost does not grow with the history after
    ``p``. The first late event since the marks were dropped folds the whole retained
    history once, leaving marks.
    """
    limits = rules.daily_not_ready_s
    marks = track.marks if track.marks is not None else []
    final = track.fold
    k = bisect_right(marks, p, key=_mark_index)
    kept = marks[:k]
    later = marks[k:]  # old numbering: the entry at old index m is at m + 1 now
    if kept:
        i = kept[-1][0]
        f = _resume(kept[-1], final, limits)
    else:
        i = 0
        f = track.base.copy()
        if not f.keeps_spells:
            f.keeps_spells = True
            for day in f.nr_days:
                day.keep_spells()
    ts = track.ts
    n = len(ts)
    payloads = track.payloads
    codes = track.codes
    every = MARK_EVERY
    made: list[Mark] = []
    next_mark = i + every
    li = 0
    nl = len(later)
    check = later[0][0] + 1 if later else n  # where the next old mark is, numbered anew
    while i < n:
        if i == check:
            if _same_state(f, later[li][1]):
                return _converged(track, f, kept, made, later, li, limits)
            li += 1
            check = later[li][0] + 1 if li < nl else n
        if i >= next_mark:
            made.append(_mark(i, f))
            next_mark = i + every
        step(f, ts[i], payloads[codes[i] >> 1], rules, calendar)
        i += 1
    track.marks = kept + made
    return f


def _converged(
    track: AgentTrack,
    f: AgentFold,
    kept: list[Mark],
    made: list[Mark],
    later: list[Mark],
    li: int,
    limits: Sequence[float],
) -> AgentFold:
    """The re-fold ``f`` reached the state of the old mark ``later[li]``: splice it into
    the current fold and move the counts of the marks from there on."""
    old = later[li]
    i = old[0] + 1
    final = track.fold
    _, _, n_old, c_old = old
    moved = len(f.closed) - n_old
    c_new = _counts(f)
    delta = {d: c_new.get(d, 0) - c_old.get(d, 0) for d in c_new.keys() | c_old.keys()}
    changed = any(delta.values())
    _splice(f, old, final, limits)
    shifted: list[Mark] = []
    for m, state, n_closed, counts in later[li:]:
        if changed:
            counts = dict(counts)
            for d, dd in delta.items():
                counts[d] = counts.get(d, 0) + dd
        shifted.append((m + 1, state, n_closed + moved, counts))
    # Marks made just before the old one are not worth keeping beside it.
    half = MARK_EVERY // 2
    track.marks = kept + [mk for mk in made if mk[0] <= i - half] + shifted
    return final


def _mark_index(mark: Mark) -> int:
    return mark[0]


def ends_near(track: AgentTrack, p: int) -> list[CallEnd]:
    """The call ends whose handling may depend on history entry ``p`` (just inserted).

    A decision reads the last entry before the end and the run of ``wrap_up`` entries
    from there (see :func:`decide_handling`): so only ends after the entry before the
    ``wrap_up`` run that reaches ``p`` and up to the entry after ``p`` can change.
    """
    ts = track.ts
    q = p
    while q > 0 and track.state_at(q - 1) == WRAP_UP:
        q -= 1
    ends = track.ends
    lo = bisect_right(ends, ts[q - 1], key=ended_at_of) if q > 0 else 0
    hi = bisect_right(ends, ts[p + 1], key=ended_at_of) if p + 1 < len(ts) else len(ends)
    return ends[lo:hi]


# ----------------------------------------------------------------------------- handling


def _wrap_end(track: AgentTrack, i: int) -> float | None:
    """End of the wrap_up spell that history entry ``i`` is in (None: still open)."""
    ts = track.ts
    for j in range(i + 1, len(ts)):
        if track.state_at(j) != WRAP_UP:
            return ts[j]
    return None


def advance_pending(track: AgentTrack, t: float, state: str) -> list[CallEnd]:
    """Update the undecided call ends after an ``agent_state`` at ``t`` was appended
    (no earlier than any other); returns those whose handling is now complete.

    The same decisions as :func:`decide_handling` on the longer history, in O(1) per
    end: an end after ``t`` takes the new state as the one current before it; an end
    at or before ``t`` is attached to a ``wrap_up`` spell that ``t`` either continues
    or ends, or, undecided, is decided by ``t`` as the next ``agent_state``.
    """
    done: list[CallEnd] = []
    wrap = state == WRAP_UP
    for end in track.pending:
        e = end.ended_at
        if t < e:
            end.attached = wrap
        elif end.attached:
            if not wrap:
                end.done_at = t
                done.append(end)
        elif wrap:
            end.attached = True
        else:
            end.done_at = e
            done.append(end)
    if done:
        track.pending = [end for end in track.pending if end.done_at is None]
    return done


def decide_handling(
    track: AgentTrack, ended_at: float, previous: tuple[float | None, bool] | None = None
) -> tuple[float | None, bool]:
    """When the handling of a call ended at ``ended_at`` completes, from the history.

    Returns ``(done_at, attached)``: ``done_at`` is None while unknown; ``attached``
    says a ``wrap_up`` spell is the call's after-call work. ``previous`` is the decision
    made before, for an end whose surroundings live retention folded into the base:
    nothing before the horizon moves any more, so it stands, unless it is attached to a
    ``wrap_up`` spell still running at the base, whose end the history now tells.
    """
    ts = track.ts
    i = bisect_left(ts, ended_at) - 1  # the last agent_state strictly before the end
    if i >= 0:
        current: str | None = track.state_at(i)
    else:
        base = track.base
        current = base.state if base.known else None
        if base.known and base.last_ts >= ended_at:
            if previous is None:
                return ended_at, False  # beyond the retained history: talk time only
            done, attached = previous
            if attached and base.state == WRAP_UP and (done is None or done > base.last_ts):
                return _first_not_wrap(track), True
            return previous
    if current == WRAP_UP:
        if i < 0:
            return _first_not_wrap(track), True
        return _wrap_end(track, i), True
    j = i + 1  # the agent's next agent_state at or after the end
    if j >= len(ts):
        return None, False
    if track.state_at(j) == WRAP_UP:
        return _wrap_end(track, j), True
    return ended_at, False


def _first_not_wrap(track: AgentTrack) -> float | None:
    """Time of the first history entry that is not wrap_up (None: none yet)."""
    ts = track.ts
    for j in range(len(ts)):
        if track.state_at(j) != WRAP_UP:
            return ts[j]
    return None


def add_carried(track: AgentTrack, answered_at: float, offered_at: float) -> None:
    """Note an answer at ``answered_at`` whose ring was at ``offered_at``."""
    at = track.carried_at
    i = bisect_right(at, answered_at)
    at.insert(i, answered_at)
    track.carried_from.insert(i, offered_at)
    gap = answered_at - offered_at
    if gap > track.carried_gap:
        track.carried_gap = gap


def take_carried(track: AgentTrack, answered_at: float, offered_at: float) -> None:
    """Forget one such answer (a late event showed it otherwise)."""
    at = track.carried_at
    i = bisect_left(at, answered_at)
    while i < len(at) and at[i] == answered_at:
        if track.carried_from[i] == offered_at:
            del at[i]
            del track.carried_from[i]
            return
        i += 1


def count_between(times: array[float], start: float, end: float) -> int:
    """How many of the ascending ``times`` lie in ``[start, end]``."""
    return bisect_right(times, end) - bisect_left(times, start)
