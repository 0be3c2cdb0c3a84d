"""Log sink: one structured line per notification on the ``callfloor.alerts`` logger.

``alert_notification key=... transition=firing rule=sl_low scope_kind=queue scope=sales
site=sh severity=warning state=firing value=0.72 since=... fired_at=... ended_at=None
summary='...'``, at WARNING for an alert firing at severity warning or above, INFO
otherwise. Unlike the other sinks it records silenced notifications too (``silenced=True``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from callfloor.alerts.notification import Notification, Transition
from callfloor.sinks.alerts.base import AlertSink, SinkConfig
from callfloor.sinks.alerts.settings import Ctx
from callfloor.sinks.alerts.templates import summary_text

__all__ = ["KEYS", "LogConfig", "LogSink", "parse"]

KEYS: Final[tuple[str, ...]] = ()
log = logging.getLogger("callfloor.alerts")
_QUIET: Final = frozenset({"info"})


@dataclass(frozen=True, slots=True, kw_only=True)
class LogConfig(SinkConfig):
    """``kind = "log"``: the common keys only."""

    deliver_silenced: bool = True


def parse(ctx: Ctx, table: Mapping[str, object], key: str, common: dict[str, Any]) -> SinkConfig:
    """A ``kind = "log"`` table."""
    return LogConfig(**common)


class LogSink(AlertSink):
    """Logs each notification (see the module docstring)."""

    def __init__(self, config: SinkConfig, logger: logging.Logger = log) -> None:
        super().__init__(config)
        self.logger = logger

    async def deliver(self, notification: Notification) -> None:
        """Write the line; a log never refuses."""
        n = notification
        loud = n.state == "firing" and n.transition is not Transition.WITHDRAWN
        level = logging.WARNING if loud and n.severity not in _QUIET else logging.INFO
        self.logger.log(
            level,
            "alert_notification key=%s transition=%s rule=%s scope_kind=%s scope=%r site=%r "
            "severity=%s state=%s value=%r since=%r fired_at=%r ended_at=%r "
            "acknowledged_by=%r silenced=%s summary=%r",
            n.key,
            n.transition,
            n.rule,
            n.scope_kind,
            n.scope,
            n.site,
            n.severity,
            n.state,
            n.value,
            n.since,
            n.fired_at,
            n.ended_at,
            n.acknowledged_by,
            n.silenced,
            summary_text(n, self.config.language),
        )


def create(config: SinkConfig) -> AlertSink:
    """The sink of a parsed ``kind = "log"`` table."""
    return LogSink(config)
