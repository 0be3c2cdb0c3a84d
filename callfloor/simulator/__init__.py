"""A realistic, deterministic call-floor simulator producing canonical SPEC §1 events.

- :mod:`~callfloor.simulator.specs`: what shapes a floor (sites, channels, breaks, the spec);
- :mod:`~callfloor.simulator.roster`: the built floor (queues, agents, skills, shifts, teams)
  and its configuration file;
- :mod:`~callfloor.simulator.run`: the run loop (arrivals, routing, agent flows, emission);
- :mod:`~callfloor.simulator.profile`: the daily demand profile and shift planning maths.
"""

from callfloor.simulator.profile import demand_intensity
from callfloor.simulator.roster import AgentInfo, QueueInfo, Roster, build_roster
from callfloor.simulator.run import FloorSimulation
from callfloor.simulator.specs import (
    CHAT,
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
    "CHAT",
    "DEFAULT_SITES",
    "EMAIL",
    "SITE_CATALOGUE",
    "VOICE",
    "AgentInfo",
    "ChannelSpec",
    "FloorSimulation",
    "NotReadySpec",
    "QueueInfo",
    "Roster",
    "SimulationSpec",
    "SiteSpec",
    "build_roster",
    "build_spec",
    "default_sites",
    "demand_intensity",
]
