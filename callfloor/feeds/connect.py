"""Amazon Connect: agent event stream records and contact events, as canonical events.

Input is NDJSON, one record a line, of either kind (mixed is fine):

- **Agent event stream** (Kinesis; ``EventType`` LOGIN, LOGOUT, STATE_CHANGE, HEART_BEAT
  with ``CurrentAgentSnapshot``): an ``agent_state`` from the current snapshot. Its
  contacts decide first: one CONNECTED or CONNECTED_ONHOLD is ``on_call``; else one
  CONNECTING, INCOMING or PENDING is ``ringing``; else one ENDED is ``wrap_up`` (the
  after-call work Connect shows as a contact in state ENDED); else MISSED, REJECTED or
  ERROR is ``not_ready`` with that reason (Connect keeps the agent out of routing until
  it clears them). Without contacts the agent status decides: routable (``Available``)
  is ``available``, ``Offline`` is ``logged_out``, any other status (Break, Lunch, ...)
  is ``not_ready`` with the status name as its reason. LOGOUT is ``logged_out``. The
  routing profile's inbound queues are the agent's ``queues``; a contact that became
  MISSED or REJECTED since the previous snapshot is also a ``call_missed``.
- **Contact events** (EventBridge ``detail-type`` "Amazon Connect Contact Event", or
  the bare ``detail``): QUEUED is ``call_queued``, CONNECTED_TO_AGENT ``call_answered``,
  DISCONNECTED ``call_ended`` when an agent took the contact, else ``call_abandoned``
  (the customer hung up while queued) or ``call_dequeued`` (the flow or Connect ended
  it). Contacts that never queue (outbound calls, monitoring) and the other event
  types (INITIATED, CONNECTED_TO_SYSTEM, CONTACT_DATA_UPDATED, COMPLETED, ...) are
  skipped.

Queues and agents are named by their id (the last part of the ARN) unless ``[connect]
queues`` / ``agents`` give a name for the ARN or the id: contact events carry only
ARNs, so names from the agent snapshots would not match them. Each record's events get
ids from its ``EventId`` (agent stream) or the EventBridge ``id``, so a record Kinesis
or EventBridge delivers twice is a duplicate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import msgspec

from callfloor.events import (
    MAX_TS,
    AgentState,
    AgentStateName,
    CallAbandoned,
    CallAnswered,
    CallDequeued,
    CallEnded,
    CallMissed,
    CallQueued,
    Channel,
    Event,
)
from callfloor.feeds.base import FeedOptions, MapResult, Rejected, conceal, event_id, redact_text
from callfloor.feeds.state import ConnectState

TAG: Final = "cn"

_JSON: Final = msgspec.json.Decoder()

AGENT_EVENTS: Final = ("LOGIN", "LOGOUT", "STATE_CHANGE", "HEART_BEAT")

_ON_CALL: Final = frozenset(("CONNECTED", "CONNECTED_ONHOLD"))
_RINGING: Final = frozenset(("CONNECTING", "INCOMING", "PENDING"))
_NOT_READY: Final = {"MISSED": "missed", "REJECTED": "rejected", "ERROR": "error"}
_CHANNELS: Final[dict[str, Channel]] = {
    "VOICE": "voice",
    "CHAT": "chat",
    "TASK": "other",
    "EMAIL": "email",
}
# Contacts that never wait in a queue for an agent.
_NOT_QUEUED: Final = frozenset(
    ("OUTBOUND", "EXTERNAL_OUTBOUND", "MONITOR", "AGENT_REPLY", "DISCONNECT")
)


def parse_time(value: object) -> float | None:
    """Epoch seconds of an RFC 3339 time with an offset (``...Z``); None otherwise."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    ts = parsed.timestamp()
    return ts if 0.0 <= ts <= MAX_TS else None


def _get(obj: object, name: str) -> Any:
    """``obj[name]``, also spelt with a capital first letter (Connect samples use both)."""
    if not isinstance(obj, dict):
        return None
    value = obj.get(name)
    if value is None:
        value = obj.get(name[:1].upper() + name[1:])
    return value


def _last(arn: str) -> str:
    """The id at the end of an ARN (``.../queue/abc`` -> ``abc``; agent queues keep ``agent/``)."""
    parts = arn.split("/")
    if len(parts) >= 2 and parts[-2] == "agent" and "/queue/" in arn:
        return f"agent/{parts[-1]}"
    return parts[-1]


class _Problem(Exception):
    """A record that cannot be mapped (caught in feed)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class ConnectMapper:
    """Connect NDJSON records to canonical events (pure; see the module docstring)."""

    tag: Final = TAG

    def __init__(self, options: FeedOptions | None = None) -> None:
        self.options = options or FeedOptions()
        self._keep = self.options.caller_ids == "keep"
        self._site_of = self.options.site_of

    def snapshot(self) -> ConnectState:
        """The (empty) state."""
        return ConnectState()

    def restore(self, state: msgspec.Struct) -> None:
        """Nothing to restore."""
        if not isinstance(state, ConnectState):
            raise TypeError(f"expected a ConnectState, got {type(state).__name__}")

    def finish(self, at: float | None = None) -> MapResult:
        """Nothing waits in this mapper: an empty result."""
        return MapResult()

    def queue_name(self, arn: str) -> str:
        """A queue's name: ``[connect] queues`` for its ARN or id, else its id."""
        names = self.options.connect_queues
        short = _last(arn)
        return names.get(arn) or names.get(short) or short

    def agent_name(self, arn: str) -> str:
        """An agent's name: ``[connect] agents`` for its ARN or id, else its id."""
        names = self.options.connect_agents
        short = _last(arn)
        return names.get(arn) or names.get(short) or short

    def _raw(self, line: bytes) -> str:
        text = line.decode("utf-8", "replace")
        return text if self._keep else redact_text(text)

    def truncated(self, line: bytes, position: int, index: int = 0) -> Rejected | None:
        """A last line without a newline: fine when it is a whole JSON object (None)."""
        try:
            _JSON.decode(line)
        except (msgspec.DecodeError, RecursionError):
            return Rejected(
                index,
                position,
                "truncated_line",
                "the last line has no newline and is not a whole JSON record",
                self._raw(line),
            )
        return None

    def feed(self, lines: Sequence[bytes], positions: Sequence[int]) -> MapResult:
        """Map NDJSON lines; ``positions`` are byte offsets (for records without ids)."""
        out = MapResult()
        events = out.events
        for index, line in enumerate(lines):
            try:
                record = _JSON.decode(line)
            except (msgspec.DecodeError, RecursionError) as exc:
                out.rejected.append(
                    Rejected(
                        index,
                        positions[index],
                        "invalid_json",
                        f"not a JSON record: {str(exc)[:200]}",
                        self._raw(line),
                    )
                )
                continue
            first = len(events)
            try:
                base, verb = self._record(record, line, positions[index], events, out)
            except _Problem as problem:
                del events[first:]
                out.rejected.append(
                    Rejected(
                        index,
                        positions[index],
                        problem.reason,
                        problem.message,
                        self._raw(line),
                        _verb(record),
                    )
                )
                continue
            made = len(events) - first
            if verb is not None:
                out.skip(verb)
            for k in range(made):
                events[first + k].id = f"{base}.{k}"
            out.origins.extend([index] * made)
        if not self._keep and out.rejected:
            conceal(out.rejected)
        return out

    def _record(
        self, record: object, line: bytes, position: int, events: list[Event], out: MapResult
    ) -> tuple[str, str | None]:
        """Map one record; returns its base id and, when it was skipped, its verb."""
        if not isinstance(record, dict):
            raise _Problem("malformed_line", "a Connect record is a JSON object")
        if "EventType" in record and ("AgentARN" in record or "CurrentAgentSnapshot" in record):
            event_id_ = record.get("EventId")
            base = (
                f"{TAG}-{event_id_}"
                if isinstance(event_id_, str) and event_id_
                else event_id(TAG, position, line)
            )
            return base, self._agent_event(record, events)
        if record.get("detail-type") == "Amazon Connect Contact Event" or (
            "detail" in record
            and isinstance(record.get("detail"), dict)
            and "eventType" in record["detail"]
        ):
            detail = record.get("detail")
            envelope = record.get("id")
            base = (
                f"{TAG}-{envelope}"
                if isinstance(envelope, str) and envelope
                else event_id(TAG, position, line)
            )
            return base, self._contact_event(detail, parse_time(record.get("time")), events)
        if _get(record, "eventType") is not None and _get(record, "contactId") is not None:
            return event_id(TAG, position, line), self._contact_event(record, None, events)
        raise _Problem(
            "unknown_verb",
            "neither an agent event stream record (EventType, AgentARN) nor a contact event "
            '(detail-type "Amazon Connect Contact Event", or eventType and contactId)',
        )

    # ---------------------------------------------------------------- agent events

    def _agent_event(self, record: dict[str, Any], events: list[Event]) -> str | None:
        kind = record.get("EventType")
        if kind not in AGENT_EVENTS:
            return str(kind)  # a kind added after this code: skipped, not an error
        ts = parse_time(record.get("EventTimestamp"))
        if ts is None:
            raise _Problem(
                "invalid_ts",
                f"`EventTimestamp`: not an RFC 3339 time: {record.get('EventTimestamp')!r}",
            )
        arn = record.get("AgentARN")
        if not isinstance(arn, str) or not arn:
            raise _Problem("missing_field", "`AgentARN`: missing")
        agent = self.agent_name(arn)
        current = record.get("CurrentAgentSnapshot")
        if kind != "LOGOUT" and not isinstance(current, dict):
            raise _Problem("missing_field", f"`CurrentAgentSnapshot`: {kind} needs it")
        snapshot: dict[str, Any] = current if isinstance(current, dict) else {}
        queues, team, name = self._configuration(snapshot.get("Configuration"))
        state: AgentStateName
        reason: str | None
        if kind == "LOGOUT":
            state, reason = "logged_out", None
        else:
            state, reason = agent_state(snapshot)
        site = self._site_of(queues[0]) if queues else self.options.default_site
        for call, queue, why in self._missed(snapshot, record.get("PreviousAgentSnapshot")):
            events.append(
                CallMissed(
                    ts=ts,
                    call_id=call,
                    agent=agent,
                    queue=queue,
                    reason=why,
                    site=self._site_of(queue) if queue else site,
                )
            )
        events.append(
            AgentState(
                ts=ts,
                agent=agent,
                state=state,
                reason=reason,
                queues=queues
                if queues or isinstance(snapshot.get("Configuration"), dict)
                else None,
                team=team,
                name=name,
                site=site,
            )
        )
        return None

    def _configuration(self, config: object) -> tuple[list[str], str | None, str | None]:
        """(inbound queues, team, display name) of a snapshot's Configuration."""
        if not isinstance(config, dict):
            return [], None, None
        queues: list[str] = []
        profile = config.get("RoutingProfile")
        inbound = profile.get("InboundQueues") if isinstance(profile, dict) else None
        for queue in inbound if isinstance(inbound, list) else []:
            arn = queue.get("ARN") if isinstance(queue, dict) else None
            if isinstance(arn, str) and arn and "/queue/agent/" not in arn:
                name = self.queue_name(arn)
                if name not in queues:
                    queues.append(name)
        team = None
        groups = config.get("AgentHierarchyGroups")
        if isinstance(groups, dict):
            for level in ("Level5", "Level4", "Level3", "Level2", "Level1"):
                group = groups.get(level)
                if isinstance(group, dict) and isinstance(group.get("Name"), str):
                    team = group["Name"]
                    break
        first, last = config.get("FirstName"), config.get("LastName")
        full = " ".join(p for p in (first, last) if isinstance(p, str) and p)
        username = config.get("Username")
        shown = full or (username if isinstance(username, str) and username else None)
        return queues, team, shown

    def _missed(
        self, current: dict[str, Any], previous: object
    ) -> list[tuple[str, str | None, str]]:
        """Contacts that became MISSED or REJECTED since the previous snapshot."""
        before: dict[str, object] = {}
        if isinstance(previous, dict):
            for contact in _contacts(previous):
                before[str(contact.get("ContactId"))] = contact.get("State")
        found = []
        for contact in _contacts(current):
            state = contact.get("State")
            cid = contact.get("ContactId")
            if (
                state in ("MISSED", "REJECTED")
                and isinstance(cid, str)
                and cid
                and before.get(cid) != state
            ):
                queue = contact.get("Queue")
                arn = queue.get("ARN") if isinstance(queue, dict) else None
                name = self.queue_name(arn) if isinstance(arn, str) and arn else None
                found.append((cid, name, "no_answer" if state == "MISSED" else "rejected"))
        return found

    # ---------------------------------------------------------------- contact events

    def _contact_event(
        self, detail: object, envelope_ts: float | None, events: list[Event]
    ) -> str | None:
        kind = _get(detail, "eventType")
        if not isinstance(kind, str):
            raise _Problem("missing_field", "`eventType`: missing")
        if kind not in ("QUEUED", "CONNECTED_TO_AGENT", "DISCONNECTED"):
            return kind
        contact = _get(detail, "contactId")
        if not isinstance(contact, str) or not contact:
            raise _Problem("missing_field", "`contactId`: missing")
        method = _get(detail, "initiationMethod")
        if method in _NOT_QUEUED:
            return kind
        queue_info = _get(detail, "queueInfo")
        queue_arn = _get(queue_info, "queueArn")
        queue = self.queue_name(queue_arn) if isinstance(queue_arn, str) and queue_arn else None
        agent_info = _get(detail, "agentInfo")
        agent_arn = _get(agent_info, "agentArn")
        site = self._site_of(queue)
        if kind == "QUEUED":
            if queue is None:
                raise _Problem("missing_field", "`queueInfo.queueArn`: QUEUED needs it")
            ts = parse_time(_get(queue_info, "enqueueTimestamp")) or envelope_ts
            channel: Channel = _CHANNELS.get(str(_get(detail, "channel")).upper(), "other")
            if method == "CALLBACK":
                channel = "callback"
            events.append(
                CallQueued(
                    ts=_need_ts(ts), call_id=contact, queue=queue, channel=channel, site=site
                )
            )
            return None
        if queue is None:
            return kind  # never queued (an IVR-only contact): nothing for the floor
        if kind == "CONNECTED_TO_AGENT":
            if not isinstance(agent_arn, str) or not agent_arn:
                raise _Problem("missing_field", "`agentInfo.agentArn`: CONNECTED_TO_AGENT needs it")
            ts = parse_time(_get(agent_info, "connectedToAgentTimestamp")) or envelope_ts
            events.append(
                CallAnswered(
                    ts=_need_ts(ts),
                    call_id=contact,
                    agent=self.agent_name(agent_arn),
                    queue=queue,
                    site=site,
                )
            )
            return None
        ts = _need_ts(parse_time(_get(detail, "disconnectTimestamp")) or envelope_ts)
        if (
            isinstance(agent_arn, str)
            and agent_arn
            and (_get(agent_info, "connectedToAgentTimestamp") is not None)
        ):
            events.append(
                CallEnded(ts=ts, call_id=contact, agent=self.agent_name(agent_arn), site=site)
            )
        elif _get(detail, "disconnectReason") in (None, "CUSTOMER_DISCONNECT"):
            events.append(CallAbandoned(ts=ts, call_id=contact, queue=queue, site=site))
        else:
            reason = "timeout" if _get(detail, "disconnectReason") == "EXPIRED" else "other"
            events.append(
                CallDequeued(ts=ts, call_id=contact, queue=queue, reason=reason, site=site)
            )
        return None


def agent_state(snapshot: Mapping[str, Any]) -> tuple[AgentStateName, str | None]:
    """The state (and reason) an agent snapshot shows; contacts first, then the status."""
    states = {c.get("State") for c in _contacts(snapshot)}
    if states & _ON_CALL:
        return "on_call", None
    if states & _RINGING:
        return "ringing", None
    if "ENDED" in states:
        return "wrap_up", None
    for state, reason in _NOT_READY.items():
        if state in states:
            return "not_ready", reason
    status = snapshot.get("AgentStatus")
    if not isinstance(status, dict):
        return "available", None
    kind, name = status.get("Type"), status.get("Name")
    if kind == "OFFLINE" or (kind is None and name == "Offline"):
        return "logged_out", None
    if kind == "ROUTABLE" or (kind is None and name == "Available"):
        return "available", None
    return "not_ready", name if isinstance(name, str) and name else None


def _contacts(snapshot: Mapping[str, Any]) -> list[dict[str, Any]]:
    contacts = snapshot.get("Contacts")
    if not isinstance(contacts, list):
        return []
    return [c for c in contacts if isinstance(c, dict)]


def _need_ts(ts: float | None) -> float:
    if ts is None:
        raise _Problem("invalid_ts", "no readable time (the event's timestamp or `time`)")
    return ts


def _verb(record: object) -> str | None:
    if isinstance(record, dict):
        kind = record.get("EventType") or _get(record.get("detail"), "eventType")
        kind = kind or _get(record, "eventType")
        return kind if isinstance(kind, str) else None
    return None
