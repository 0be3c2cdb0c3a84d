"""What the alert engine hands to the delivery side: one :class:`Notification` per message.

Pure data, no I/O. The engine (``callfloor.alerts``) decides *which* notification to
send and when; the outbox (``callfloor.sinks.alerts``) delivers it to each sink, at
least once, and each notification carries an idempotency ``key`` for receivers that
deduplicate:

``f"{fingerprint}:{transition}:{fired_at}"`` (and ``f":{n}"`` for the n-th repeat, or
for an alert whose told resolve late events took back n times), so
a second firing of the same alert the same day (a new ``fired_at``) is a new key while
a notification sent again after a restart keeps its key. :func:`idempotency_key` builds
it.

Languages: ``summary`` is the engine's rendering of the rule's summary template (in the
rule's language, English for the default rules). ``summaries`` holds renderings in
other languages by BCP 47 tag (``"zh-CN"``) when the rule has a template for them; a
sink configured with ``language = "zh-CN"`` uses ``summaries["zh-CN"]`` when present
and otherwise the built-in zh-CN text that :mod:`callfloor.sinks.alerts.templates`
renders from the structured fields (rule, scope, severity, value). So the engine
need not fill ``summaries`` for the default rules.
"""

from __future__ import annotations

import enum

import msgspec

__all__ = ["SCOPE_KINDS", "SEVERITIES", "Notification", "Transition", "idempotency_key"]

SEVERITIES: tuple[str, ...] = ("info", "warning", "minor", "major", "critical")
"""Severities in increasing order."""

SCOPE_KINDS: tuple[str, ...] = ("queue", "site", "agent")


class Transition(enum.StrEnum):
    """Why a notification is sent: the alert's lifecycle step."""

    FIRING = "firing"  # the alert started firing
    RESOLVED = "resolved"  # its condition cleared
    REPEAT = "repeat"  # still firing after the rule's repeat interval (never once acknowledged)
    ESCALATED = "escalated"  # still firing, its severity raised by the rule's escalation
    WITHDRAWN = "withdrawn"  # late events showed it never should have fired


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    """One message about one alert (see the module docstring)."""

    key: str
    """Idempotency key: ``fingerprint:transition:fired_at`` (``:n`` for the n-th repeat)."""
    fingerprint: str
    """Stable: a function of rule and scope."""
    rule: str
    scope_kind: str
    """``"queue"``, ``"site"`` or ``"agent"``."""
    scope: str
    """The queue, site or agent name."""
    site: str
    severity: str
    """One of :data:`SEVERITIES`."""
    transition: Transition
    state: str
    """``"firing"`` or ``"resolved"``: what the alert is after this notification."""
    since: float
    """Event time the condition started holding."""
    fired_at: float
    ended_at: float | None
    value: float | None
    summary: str
    """Rendered by the engine from the rule's template."""
    description: str
    labels: dict[str, str]
    """The rule's extra labels."""
    sinks: tuple[str, ...] | None = None
    """The sinks to deliver to; ``None``: every configured sink."""
    emitted_at: float
    """The processor clock when the engine emitted it."""
    acknowledged_by: str | None = None
    silenced: bool = False
    summaries: dict[str, str] = {}
    """Summaries in other languages by BCP 47 tag (``"zh-CN"``), when the rule has them."""

    def summary_in(self, language: str) -> str | None:
        """The engine's summary in ``language`` (``summary`` for English), else None."""
        if language == "en":
            return self.summary
        return self.summaries.get(language)


def idempotency_key(
    fingerprint: str, transition: Transition, fired_at: float, repeat: int = 0
) -> str:
    """The key of a notification: ``fingerprint:transition:fired_at[:repeat]``.

    ``repeat`` is the ordinal of a :attr:`Transition.REPEAT` notification (1 for the
    first repeat); 0 leaves it out.
    """
    key = f"{fingerprint}:{transition}:{fired_at}"
    return f"{key}:{repeat}" if repeat else key
