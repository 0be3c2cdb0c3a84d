"""Delivery of alert notifications: the outbox and the sinks (SPEC §5, §10).

- :mod:`~callfloor.sinks.alerts.outbox`: :class:`Outbox`, a bounded queue and a worker
  per sink, retries with capped exponential backoff and full jitter, deadlines, counters;
- :mod:`~callfloor.sinks.alerts.base`: :class:`AlertSink`, :class:`SinkConfig`,
  :class:`DeliveryError`;
- one module per sink kind: :mod:`alertmanager` (v2 API, kept alive while firing),
  :mod:`webhook` (JSON, HMAC-signed; Slack, Teams, DingTalk and WeCom bodies),
  :mod:`mqtt` (retained state per alert), :mod:`log`;
- :mod:`~callfloor.sinks.alerts.templates`: webhook bodies and summaries (en, zh-CN);
- :mod:`~callfloor.sinks.alerts.registry`: kinds by name, :func:`parse_sinks`,
  :func:`create_sinks`.
"""

from callfloor.sinks.alerts.base import AlertSink, DeliveryError, SinkConfig
from callfloor.sinks.alerts.outbox import Outbox, OutboxStats
from callfloor.sinks.alerts.registry import KINDS, create_sinks, parse_sinks

__all__ = [
    "KINDS",
    "AlertSink",
    "DeliveryError",
    "Outbox",
    "OutboxStats",
    "SinkConfig",
    "create_sinks",
    "parse_sinks",
]
