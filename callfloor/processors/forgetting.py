"""Forgetting: queues, sites and agents that events created, once nothing is left of them.

``[limits] max_queues``, ``max_sites`` and ``max_agents`` bound what a faulty or hostile
producer can create. Without forgetting, 200 invented sites would lock out every new
site for good (``too_many_sites``). So a name that events created (never a configured
queue or site) is forgotten once it has had **no activity** for ``[limits]
forget_after`` (default 7 days, never less than ``max_lateness``) and has **no state
left**; its slot is free again, and an event naming it later creates it afresh.

- **Activity** is event time: a queue's last ``call_queued``, leg start or window
  record (an answer, an abandon, a miss, a handling completed); an agent's last
  ``agent_state``, last call event naming it, or last call it ended.
- **No state left** for a queue: not configured, no caller waiting, every window
  (rolling, interval, today) at zero, no logged-in agent serving it, no open call
  (a waiting leg or a conversation) naming it, and no call end naming it whose handling
  is undecided or was decided after the cut. For an agent: logged out (or never sent an
  ``agent_state``), no undecided handling, no open call naming it. For a site: not
  configured, not ``default``, and no queue and no agent on it.

It runs in the core on event time, at fixed boundaries (every seventh of
``forget_after``: daily by default) that the processor clock passes, in live
operation and in replay alike, so a replay forgets exactly what the live service
forgot. At each boundary ``B`` (cut ``B - forget_after``), before the names:

- calls with nothing open whose last event is at or before the cut are forgotten, and
  call ends decided at or before the cut are dropped (live retention dropped them long
  before; replay, which otherwise keeps every call, drops them here, so both see the
  same calls);
- a call with nothing open that still names a forgotten name is forgotten with it (a
  later event for it is an orphan, as after live retention): nothing refers to a
  forgotten name afterwards.

Forgotten names are counted in ``expired`` (``forgotten_queues``, ``forgotten_sites``,
``forgotten_agents``).
"""

from __future__ import annotations

from bisect import bisect_right
from typing import TYPE_CHECKING

from callfloor.processors.agents import LOGGED_OUT
from callfloor.processors.calls import QUEUED
from callfloor.processors.retention import DAY_S

if TYPE_CHECKING:
    from callfloor.processors.engine import FloorProcessor
    from callfloor.processors.queues import QueueState

DEFAULT_SITE = "default"


def forget(proc: FloorProcessor, boundary: float) -> None:
    """Forget what has been quiet since ``boundary - forget_after`` (see the module)."""
    cut = boundary - proc.limits.forget_after_s
    _forget_quiet_calls(proc, cut)
    _drop_decided_ends(proc, cut)
    queues = _quiet_queues(proc, cut, boundary)
    agents = _quiet_agents(proc, cut, boundary)
    changed = False
    if queues or agents:
        drop = _still_named(proc, cut, queues, agents)
        for name in sorted(queues):
            _drop_queue(proc, name)
        for name in sorted(agents):
            _drop_agent(proc, name)
        for cid, names_q, names_a in drop:
            if names_q & queues or names_a & agents:
                del proc.calls[cid]
        changed = bool(queues or agents)
    changed = _forget_sites(proc) or changed
    if changed:
        proc._version += 1  # readers' caches: the floor changed


def _forget_quiet_calls(proc: FloorProcessor, cut: float) -> None:
    calls = proc.calls
    quiet = [cid for cid, call in calls.items() if call.settled() and call.last_ts <= cut]
    for cid in quiet:
        del calls[cid]


def _drop_decided_ends(proc: FloorProcessor, cut: float) -> None:
    # As live retention does, an end dropped that ended within a day of the clock
    # stays in the agent's handled times (handled_today reads them).
    recent = proc.clock - DAY_S
    for track in proc.agents.values():
        ends = track.ends
        if ends and any(e.done_at is not None and e.done_at <= cut for e in ends):
            kept = []
            for end in ends:
                if end.done_at is None or end.done_at > cut:
                    kept.append(end)
                elif end.ended_at >= recent:
                    i = bisect_right(track.handled_at, end.ended_at)
                    track.handled_at.insert(i, end.ended_at)
                    track.handled_s.insert(i, end.handle_s())
            track.ends = kept


def _windows_empty(proc: FloorProcessor, q: QueueState, at: float) -> bool:
    """Every window of ``q`` reads zero at ``at`` (the reads the documents make)."""
    windows = q.windows
    windows.advance(at)
    cal = q.calendar
    reads = [windows.rolling(i) for i in range(len(proc.widths))]
    reads.append(windows.interval(cal.interval_start(at)))
    reads.append(windows.day(cal.day_start(at)))
    return all(max_us < 0 and not any(sums) for sums, max_us in reads)


def _served(proc: FloorProcessor, name: str) -> bool:
    """Whether a logged-in agent serves queue ``name`` now."""
    groups = proc.groups
    for group in proc.groups_by_queue.get(name, ()):
        counts = groups.get(group)
        if counts and any(n for state, n in counts.items() if state != LOGGED_OUT):
            return True
    return False


def _quiet(seen: dict[str, float], name: str, cut: float, boundary: float) -> bool:
    last = seen.get(name)
    if last is None:
        # No activity known (a checkpoint older than this rule): its time starts now.
        seen[name] = boundary
        return False
    return last <= cut


def _quiet_queues(proc: FloorProcessor, cut: float, boundary: float) -> set[str]:
    seen = proc.queue_seen
    out: set[str] = set()
    for name, q in proc.queues.items():
        if q.configured or q.open or not _quiet(seen, name, cut, boundary):
            continue
        if _windows_empty(proc, q, boundary) and not _served(proc, name):
            out.add(name)
    if out:
        # A call end naming the queue that is still kept (undecided, or decided after
        # the cut) may still count for it.
        for track in proc.agents.values():
            for end in track.ends:
                out.discard(end.queue)
    return out


def _quiet_agents(proc: FloorProcessor, cut: float, boundary: float) -> set[str]:
    seen = proc.agent_seen
    out: set[str] = set()
    for name, track in proc.agents.items():
        f = track.fold
        if (f.known and f.state != LOGGED_OUT) or track.ends or track.pending:
            continue
        if _quiet(seen, name, cut, boundary):
            out.add(name)
    return out


def _still_named(
    proc: FloorProcessor, cut: float, queues: set[str], agents: set[str]
) -> list[tuple[str, set[str], set[str]]]:
    """Take out of ``queues`` and ``agents`` the names an open call still names; the
    calls with nothing open that name one of them (forgotten with them)."""
    settled: list[tuple[str, set[str], set[str]]] = []
    keep_q: set[str] = set()
    keep_a: set[str] = set()
    for cid, call in proc.calls.items():
        events = call.events
        # A name quiet since the cut is named by no event after it.
        if not events or events[0][0] > cut:
            continue
        names_q: set[str] = set()
        names_a: set[str] = set()
        for _, _, kind, name, _ in events:
            if name is None:
                continue
            if kind == QUEUED:
                if name in queues:
                    names_q.add(name)
            elif name in agents:
                names_a.add(name)
        for conv in call.convs:
            if conv.queue in queues:
                names_q.add(conv.queue)
            if conv.agent in agents:
                names_a.add(conv.agent)
        for _, _, held in call.early:
            if held is not None and held in agents:
                names_a.add(held)
        if not names_q and not names_a:
            continue
        if call.settled():
            settled.append((cid, names_q, names_a))
        else:
            keep_q |= names_q
            keep_a |= names_a
    queues -= keep_q
    agents -= keep_a
    return settled


def _drop_queue(proc: FloorProcessor, name: str) -> None:
    del proc.queues[name]
    proc.queue_seen.pop(name, None)
    proc.policy_changes.pop(name, None)
    proc.tracker.queues.discard(name)
    proc.expired["forgotten_queues"] += 1


def _drop_agent(proc: FloorProcessor, name: str) -> None:
    track = proc.agents.pop(name)
    f = track.fold
    if f.known and f.state is not None:
        # Logged out: it still counted there as logged_out.
        if f.group:
            proc.groups[f.group][f.state] -= 1
        proc.site_counts[f.site][f.state] -= 1
    proc.agent_seen.pop(name, None)
    tracker = proc.tracker
    tracker.published.pop(name, None)
    tracker.due.pop(name, None)
    tracker.placed.pop(name, None)
    tracker.dirty.discard(name)
    tracker.agents.discard(name)
    proc.expired["forgotten_agents"] += 1


def _forget_sites(proc: FloorProcessor) -> bool:
    """Forget sites events created that no queue and no agent is on."""
    named = set(proc.config.named_sites())
    named.add(DEFAULT_SITE)
    candidates = [s for s in proc.sites if s not in named]
    if not candidates:
        return False
    used = {q.site for q in proc.queues.values()}
    used.update(track.fold.site for track in proc.agents.values())
    gone = [s for s in candidates if s not in used]
    for site in gone:
        del proc.sites[site]
        proc.site_counts.pop(site, None)
        proc.tracker.sites.discard(site)
        proc.expired["forgotten_sites"] += 1
    return bool(gone)
