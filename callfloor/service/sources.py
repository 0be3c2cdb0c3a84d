"""The configured ``[[sources]]`` as sources of a service (``callfloor serve``).

Only MQTT runs in this version. A configured source of another kind (``queue_log``,
``ami``) stops the start with :class:`SourceSetupError` naming it: a source in the
configuration is never silently ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from callfloor.config import Config
from callfloor.ingest.source import Source

if TYPE_CHECKING:
    from callfloor.service.floor import FloorService

RUNNABLE_KINDS = ("mqtt",)


class SourceSetupError(Exception):
    """A configured source cannot run (its kind is not available yet, or it is miswritten)."""


def configured_sources(config: Config, service: FloorService) -> list[Source]:
    """One source per ``[[sources]]`` entry, counting into the service's stats."""
    sources: list[Source] = []
    for entry in config.sources:
        if entry.kind not in RUNNABLE_KINDS:
            raise SourceSetupError(
                f"[[sources]] {entry.name!r} in {config.source}: kind {entry.kind!r} is not "
                f"available in this version (only {', '.join(RUNNABLE_KINDS)}); remove it"
            )
        from callfloor.ingest.mqtt import MqttSource, MqttSourceError  # aiomqtt only when used

        try:
            sources.append(
                MqttSource(
                    entry,
                    config.limits,
                    stats=service.stats,
                    not_after=service.not_after,
                    future=service.future,
                )
            )
        except MqttSourceError as exc:
            raise SourceSetupError(
                f"[[sources]] {entry.name!r} in {config.source}: {exc}"
            ) from None
    return sources
