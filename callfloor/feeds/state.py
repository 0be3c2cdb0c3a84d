"""The mappers' state, as msgspec Structs a live source checkpoints with its position.

``AsteriskState`` is the state of the queue_log, database export and AMI mappers;
``ConnectState`` that of the Connect mapper (which needs none). ``version`` is the
format of the Struct: a live source that finds another version in its checkpoint
starts its mapper afresh rather than misread it.
"""

from __future__ import annotations

import msgspec


class AgentMemo(msgspec.Struct, kw_only=True):
    """What the log implies about one agent (and what was last emitted for it)."""

    queues: list[str] = []
    logged_in: bool = False
    paused: list[str] = []  # queues it is paused in
    paused_all: bool = False  # PAUSEALL: paused in every queue, known or not
    reason: str | None = None  # the pause reason
    calls: list[str] = []  # queue calls in conversation
    outbound: list[str] = []  # outbound calls in progress (PBXware)
    busy_since: float = 0.0  # when the latest outbound call started
    device: str | None = None  # AMI device state; None: idle or unknown
    shown: str | None = None  # the state last emitted (None: nothing yet)
    shown_reason: str | None = None
    shown_queues: list[str] = []


class CallMemo(msgspec.Struct, array_like=True):
    """A call the log showed and whose end it has not shown yet."""

    queue: str | None
    agent: str | None  # the answering agent, while in conversation
    waiting: bool
    seen: float  # time of its latest record


class PendingLeave(msgspec.Struct, array_like=True):
    """AMI: a caller that left its queue, not yet known to be answered or abandoned."""

    ts: float
    queue: str | None
    id: str


class AsteriskState(msgspec.Struct, kw_only=True):
    """The whole state of an Asterisk mapper (checkpointed by a live source)."""

    version: int = 1
    agents: dict[str, AgentMemo] = {}
    calls: dict[str, CallMemo] = {}
    latest: float | None = None  # the latest record time seen
    swept: float = 0.0  # when forgotten calls were last looked for
    header: str | None = None  # database exports: the header line
    pending: dict[str, PendingLeave] = {}  # AMI: callers that left, by call id


class ConnectState(msgspec.Struct, kw_only=True):
    """The Connect mapper keeps no state: each record carries what it needs."""

    version: int = 1
