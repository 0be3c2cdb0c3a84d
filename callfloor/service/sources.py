"""The configured ``[[sources]]`` as sources of a service (``callfloor serve``).

Each entry is built by its kind's factory in the source kit's registry
(:data:`callfloor.ingest.kinds.KINDS`): this module knows no kind by name. A source
that cannot be built stops the start with :class:`SourceSetupError` naming it: a source
in the configuration is never silently ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from callfloor.config import Config
from callfloor.ingest.kinds import KINDS, SourceContext, SourceSetupError
from callfloor.ingest.source import Source

if TYPE_CHECKING:
    from callfloor.service.floor import FloorService

__all__ = ["SourceSetupError", "configured_sources"]


def configured_sources(config: Config, service: FloorService) -> list[Source]:
    """One source per ``[[sources]]`` entry, counting into the service's stats."""
    sources: list[Source] = []
    context = SourceContext(config, service)
    for entry in config.sources:
        try:
            sources.append(KINDS[entry.kind].factory(entry, context))
        except SourceSetupError as exc:
            raise SourceSetupError(
                f"[[sources]] {entry.name!r} in {config.source}: {exc}"
            ) from None
    return sources
