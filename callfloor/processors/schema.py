"""The checkpoint schema: the processor state as msgspec Structs, and the envelope.

Every state Struct is ``array_like`` (fields by position: compact and fast to encode),
so a field is only ever added at the end, with a default, or the format version changes
(see :mod:`callfloor.processors.state` for versions and migrations). The envelope is a
map, and new state goes into a section of its own rather than into these Structs.
"""

from __future__ import annotations

import msgspec

from callfloor.processors.views import ViolationChange


class PolicyS(msgspec.Struct, array_like=True, frozen=True):
    """A queue's service-level policy."""

    sl_threshold_s: float
    sl_target: float
    short_abandon_s: float
    sl_formula: str
    default_aht_s: float


class LegS(msgspec.Struct, array_like=True):
    """An open queue leg."""

    queue: str
    start: float
    seq: int
    threshold: float
    short: float
    missed: bool


class ConversationS(msgspec.Struct, array_like=True):
    """An answered call not yet ended."""

    agent: str
    queue: str
    answered_at: float


CallEventS = tuple[float, int, int, str | None, bool]


class OpenCallS(msgspec.Struct, array_like=True):
    """What is open on a call (most calls have nothing open and no entry)."""

    leg: LegS | None
    convs: list[ConversationS]
    early: list[tuple[float, int, str | None]]


class ViolationS(msgspec.Struct, array_like=True):
    """A materialised violation."""

    kind: str
    severity: str
    started_at: float
    ended_at: float | None
    value: float


class NRDayS(msgspec.Struct, array_like=True):
    """Non-exempt not-ready time of one day from closed spells."""

    start: float
    end: float
    closed_s: float
    crossings: list[float]


class FoldS(msgspec.Struct, array_like=True):
    """An agent's fold state."""

    known: bool
    state: str | None
    reason: str | None
    since: float
    last_ts: float
    site: str
    group: tuple[str, ...]
    team: str | None
    display: str | None
    closed: list[ViolationS]
    nr_days: list[NRDayS]


# What one agent_state said: (state, reason, site, queue list or None, team, display).
PayloadS = tuple[str, str | None, str, tuple[str, ...] | None, str | None, str | None]


class CallEndS(msgspec.Struct, array_like=True):
    """A call an agent ended and its handling decision."""

    call_id: str
    queue: str
    answered_at: float
    ended_at: float
    done_at: float | None
    attached: bool


class AgentS(msgspec.Struct, array_like=True):
    """One agent: history (packed doubles and codes), folds, answers, misses, call ends."""

    name: str
    ts: bytes
    codes: bytes
    payloads: list[PayloadS]
    base: FoldS | None  # None: the empty fold (nothing pruned into it)
    fold: FoldS
    answers: bytes
    misses: bytes
    ends: list[CallEndS]
    # Absent in checkpoints written before offers were kept (decoded as none).
    offers: bytes = b""
    carried_at: bytes = b""
    carried_from: bytes = b""
    handled_at: bytes = b""
    handled_s: bytes = b""


class WindowsS(msgspec.Struct, array_like=True):
    """A queue's window sums."""

    now: float
    times: bytes  # array('d')
    cums: bytes  # array('q'), NFIELDS per record
    base: list[int]
    maxq: list[tuple[float, int]]
    wait_x: bytes  # array('d')
    wait_us: bytes  # array('q')
    day_start: float
    day_sums: list[int]
    day_max_us: int


class QueueS(msgspec.Struct, array_like=True):
    """One queue."""

    name: str
    site: str
    site_fixed: bool
    channel: str
    configured: bool
    listed: bool
    policy: PolicyS
    windows: WindowsS
    totals: list[int]
    bounds: list[float]
    hist_answered: list[int]
    hist_abandoned: list[int]
    answered_wait_us: int
    abandoned_wait_us: int


class TrackerS(msgspec.Struct, array_like=True):
    """What readers were told about violations, and lifetime counts."""

    published: dict[str, list[ViolationS]]
    started: list[tuple[str, str, int]]
    retracted: list[tuple[str, str, int]]
    due: dict[str, float]
    dirty: list[str]
    # Not drained yet: what changed, and violation changes already computed.
    queues: list[str] = []
    sites: list[str] = []
    agents: list[str] = []
    groups: list[tuple[str, ...]] = []
    pending: list[ViolationChange] = []
    placed: dict[str, tuple[tuple[str, ...], str]] = {}


class FloorState(msgspec.Struct):
    """The processor state."""

    clock: float
    seq: int
    version: int
    next_prune: float
    queues: list[QueueS]
    call_ids: list[str]
    call_events: list[list[CallEventS]]  # each call's history, in call_ids order
    open_calls: dict[str, OpenCallS]
    agents: list[AgentS]
    timers: list[tuple[float, int, int, int, str, float]]
    ids_current: list[str]
    ids_previous: list[str]
    ids_rotate_at: float
    counters: dict[str, int]
    rejected_by_reason: dict[str, int]
    events_by_type: dict[str, int]
    expired: dict[str, int]
    policy_changes: dict[str, list[tuple[int, PolicyS]]]
    tracker: TrackerS
    # Forgetting (processors/forgetting.py); absent from older checkpoints.
    queue_seen: dict[str, float] = {}
    agent_seen: dict[str, float] = {}
    next_forget: float = float("-inf")


class Envelope(msgspec.Struct):
    """Format 3's envelope, after the fixed header: what wrote it, and its sections.

    A map (fields by name, unlike the Structs above), so a header field a later version
    adds is ignored by this one rather than refused. Each section is kept as its
    encoded MessagePack (decoded by the section's registered type, see
    :func:`callfloor.processors.state.register_section`), so a section this version does
    not know is carried as bytes, not a decoding error.
    """

    callfloor_version: str
    config_fingerprint: str
    tzdata_version: str
    sections: dict[str, msgspec.Raw]
