"""A realistic, deterministic call-floor simulator producing canonical SPEC §1 events."""

from callfloor.simulator.model import (
    CHAT,
    DEFAULT_SITES,
    EMAIL,
    VOICE,
    AgentInfo,
    ChannelSpec,
    FloorSimulation,
    NotReadySpec,
    QueueInfo,
    SimulationSpec,
    SiteSpec,
    build_spec,
    default_sites,
)
from callfloor.simulator.profile import demand_intensity

__all__ = [
    "CHAT",
    "DEFAULT_SITES",
    "EMAIL",
    "VOICE",
    "AgentInfo",
    "ChannelSpec",
    "FloorSimulation",
    "NotReadySpec",
    "QueueInfo",
    "SimulationSpec",
    "SiteSpec",
    "build_spec",
    "default_sites",
    "demand_intensity",
]
