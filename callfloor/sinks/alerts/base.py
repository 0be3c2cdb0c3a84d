"""What every alert sink is: its configuration, its delivery contract and its errors.

A sink kind is one module that defines a :class:`SinkConfig` subclass (its own keys),
a parser for its ``[alerts.sinks.<name>]`` table and an :class:`AlertSink` subclass;
:mod:`callfloor.sinks.alerts.registry` maps the kind's name to them. The outbox
(:mod:`callfloor.sinks.alerts.outbox`) owns the queue, the retries, the deadline and
the counters; a sink only delivers one notification at a time and says whether a
failure is worth retrying.
"""

from __future__ import annotations

import abc
from collections.abc import Collection, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Final

from callfloor.alerts.notification import Notification

__all__ = [
    "DEFAULTS",
    "AlertSink",
    "DeliveryError",
    "SinkConfig",
]


class DeliveryError(Exception):
    """A delivery that failed; ``retryable`` says whether trying again may succeed.

    ``retry_after_s`` is the receiver's own hint (an HTTP ``Retry-After``): the outbox
    waits at least that long (within its backoff cap) before the next attempt.
    """

    def __init__(self, message: str, *, retryable: bool, retry_after_s: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True, kw_only=True)
class SinkConfig:
    """The keys every ``[alerts.sinks.<name>]`` table has (the outbox's policy).

    A kind's own configuration subclasses this with its keys (``url``, ``topic_prefix``...).
    """

    name: str
    kind: str
    language: str = "en"  # the summary's language where the sink renders text
    timeout_s: float = 10.0  # one attempt at most
    max_queue: int = 1000  # notifications waiting for this sink; the oldest is dropped beyond
    retry_max: int = 10  # attempts after the first
    backoff_s: float = 1.0  # the first retry's delay cap; doubles per retry (full jitter)
    backoff_max_s: float = 60.0
    deadline_s: float = 1800.0  # after emitted_at + this, a notification is dropped
    deliver_silenced: bool = False  # the log records silenced notifications; others skip them


DEFAULTS: Final = SinkConfig(name="", kind="")
"""The default policy (docs and parsers read the defaults here)."""


class AlertSink(abc.ABC):
    """One configured destination of notifications.

    The outbox calls :meth:`start` once before the first delivery, :meth:`deliver`
    one notification at a time (never concurrently for one sink) under its
    ``timeout_s``, and :meth:`close` once at the end. :meth:`background` may return a
    coroutine the outbox runs beside the deliveries (Alertmanager's refresh loop).
    """

    def __init__(self, config: SinkConfig) -> None:
        self.config = config
        self.name = config.name
        self.refresh_errors = 0  # failed background refreshes (Alertmanager), counted

    async def start(self) -> None:  # noqa: B027 (a sink without set-up needs nothing)
        """Set up what deliveries share (an HTTP session); connect lazily if possible."""

    @abc.abstractmethod
    async def deliver(self, notification: Notification) -> None:
        """Deliver one notification or raise :class:`DeliveryError`."""

    async def close(self) -> None:  # noqa: B027 (a sink without set-up has nothing to close)
        """Release connections; the sink is not used afterwards."""

    def background(self) -> Coroutine[Any, Any, None] | None:
        """A coroutine to run beside the deliveries until cancelled, or None."""
        return None

    def resume(self, firing: Iterable[Notification]) -> None:  # noqa: B027 (stateless sinks)
        """Alerts firing now, restored after a restart or adopted with a partition.

        A sink that keeps receivers' state alive (Alertmanager re-posts firing alerts
        before their ``endsAt`` lapses) takes these into that state without sending
        anything now; stateless sinks ignore them.
        """

    def forget(self, sites: Collection[str]) -> None:  # noqa: B027 (stateless sinks)
        """Stop keeping alive the alerts of these sites (their partition moved away)."""
