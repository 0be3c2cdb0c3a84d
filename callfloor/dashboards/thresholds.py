"""Panel colours: the threshold steps a family's hint asks for, with the config's numbers.

A step is ``(value, colour)``: from ``value`` up the colour applies, the first step's
value is ``None`` (minus infinity). Service-level steps come from the queue's
``sl_target`` (red below it, amber within :data:`AMBER_BAND` of it, green from it);
wait steps from its ``sl_threshold_s`` (amber from half of it, red from it).
"""

from __future__ import annotations

from typing import Final

from callfloor.config import Config, QueuePolicy
from callfloor.metrics.catalogue import Thresholds

Step = tuple[float | None, str]

AMBER_BAND: Final = 0.05
"""Within five points below the target is amber: close, and worth watching."""

GREEN: Final = "green"
AMBER: Final = "orange"
RED: Final = "red"
NEUTRAL: Final = "text"

ZERO_LIMIT: Final = 1e-9
"""Anything above zero (a rate of errors, a count of refused events) turns red."""


def steps(kind: Thresholds, policy: QueuePolicy) -> list[Step]:
    """The steps of ``kind`` for a queue (or a site) with ``policy``."""
    if kind is Thresholds.SL_TARGET:
        target = round(policy.sl_target, 6)
        return [(None, RED), (round(max(target - AMBER_BAND, 0.0), 6), AMBER), (target, GREEN)]
    if kind is Thresholds.SL_THRESHOLD:
        limit = policy.sl_threshold_s
        return [(None, GREEN), (limit / 2, AMBER), (limit, RED)]
    if kind is Thresholds.HEALTH:
        return [(None, RED), (1.0, GREEN)]
    if kind is Thresholds.ZERO:
        return [(None, GREEN), (ZERO_LIMIT, RED)]
    return [(None, NEUTRAL)]


def default_policy(config: Config) -> QueuePolicy:
    """The policy of a queue known only from events (and of a site): the voice defaults."""
    return config.channel_defaults["voice"]


def per_queue(kind: Thresholds, config: Config) -> dict[str, list[Step]]:
    """Each configured queue's steps where they differ from the default's (sorted by name)."""
    if kind not in (Thresholds.SL_TARGET, Thresholds.SL_THRESHOLD):
        return {}
    default = steps(kind, default_policy(config))
    out = {}
    for name in sorted(config.queues):
        own = steps(kind, config.queues[name].policy)
        if own != default:
            out[name] = own
    return out
