"""Former home of the whole simulator, split into specs, roster and the run loop.

Kept as a re-export so that imports written before the split keep working
(``callfloor.ingest.simulated`` reads ``SITE_CATALOGUE`` from here); new code
imports from :mod:`callfloor.simulator` or the module that owns the name.
"""

from callfloor.simulator.roster import AgentInfo, QueueInfo
from callfloor.simulator.run import Event, FloorSimulation
from callfloor.simulator.specs import (
    CHANNEL_NAMES,
    CHAT,
    DEFAULT_NOT_READY,
    DEFAULT_SITES,
    EMAIL,
    SITE_CATALOGUE,
    VOICE,
    ChannelSpec,
    NotReadySpec,
    SimulationSpec,
    SiteSpec,
    build_spec,
    default_sites,
)

__all__ = [
    "CHANNEL_NAMES",
    "CHAT",
    "DEFAULT_NOT_READY",
    "DEFAULT_SITES",
    "EMAIL",
    "SITE_CATALOGUE",
    "VOICE",
    "AgentInfo",
    "ChannelSpec",
    "Event",
    "FloorSimulation",
    "NotReadySpec",
    "QueueInfo",
    "SimulationSpec",
    "SiteSpec",
    "build_spec",
    "default_sites",
]
