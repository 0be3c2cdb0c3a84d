"""docker-compose.yml and `make stack` (callfloor.devstack.TOPOLOGY) describe one topology:
the same services, profiles, deploy files, ports and commands; a change to one without
the other fails here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from callfloor import devstack

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml's services."""
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return dict(data["services"])


def _deploy_mounts(service: dict[str, Any]) -> set[str]:
    mounts = set()
    for volume in service.get("volumes", []):
        source = str(volume).split(":", 1)[0]
        if source.startswith("./deploy/"):
            mounts.add(source.removeprefix("./deploy/").rstrip("/"))
    return mounts


def _container_ports(service: dict[str, Any]) -> set[int]:
    return {int(str(p).rsplit(":", 1)[1]) for p in service.get("ports", [])}


def test_the_same_services_and_profiles(compose: dict[str, Any]) -> None:
    """Every compose service is in TOPOLOGY with its profile, and nothing else is."""
    assert set(compose) == set(devstack.SERVICES)
    for name, service in compose.items():
        profiles = service.get("profiles", [])
        expected = [devstack.SERVICES[name].profile] if devstack.SERVICES[name].profile else []
        assert profiles == expected, name


def test_the_same_deploy_files(compose: dict[str, Any]) -> None:
    """Each service is configured by the same files under deploy/ (and they exist)."""
    for name, service in compose.items():
        assert _deploy_mounts(service) == set(devstack.SERVICES[name].deploy), name
        for path in devstack.SERVICES[name].deploy:
            assert (devstack.DEPLOY / path).exists(), path


def test_published_ports_are_the_services_ports(compose: dict[str, Any]) -> None:
    """A port compose publishes is the port TOPOLOGY says the service serves on."""
    for name, service in compose.items():
        published = _container_ports(service)
        assert published <= {devstack.SERVICES[name].port}, name


def test_the_deploy_files_name_the_compose_addresses_make_stack_rewrites() -> None:
    """The host:port names devstack rewrites to local ports are those the deploy files use
    (a rewrite that matches nothing would leave a local process pointed at compose)."""
    callfloor_toml = (devstack.DEPLOY / "callfloor.toml").read_text(encoding="utf-8")
    assert f"//{devstack.COMPOSE_REDIS}" in callfloor_toml
    assert f"//{devstack.COMPOSE_MQTT}" in callfloor_toml
    prometheus = (devstack.DEPLOY / "prometheus.yml").read_text(encoding="utf-8")
    assert devstack.COMPOSE_TARGET in prometheus
    assert devstack.COMPOSE_ALERTMANAGER in prometheus
    assert devstack.COMPOSE_RULES in prometheus
    datasource = devstack.DEPLOY / "grafana/provisioning/datasources/prometheus.yml"
    assert f"//{devstack.COMPOSE_PROMETHEUS}" in datasource.read_text(encoding="utf-8")
    provider = devstack.DEPLOY / "grafana/provisioning/dashboards/callfloor.yml"
    assert devstack.COMPOSE_DASHBOARDS in provider.read_text(encoding="utf-8")


def test_compose_mounts_where_the_deploy_files_say(compose: dict[str, Any]) -> None:
    """The rules folder and the boards are mounted where prometheus.yml and the Grafana
    provider look for them."""
    prometheus = {v.split(":")[1] for v in compose["prometheus"]["volumes"]}
    assert devstack.COMPOSE_RULES.rstrip("/") in prometheus
    grafana = {v.split(":")[1] for v in compose["grafana"]["volumes"]}
    assert devstack.COMPOSE_DASHBOARDS in grafana


def test_the_simulator_runs_the_same_command(compose: dict[str, Any]) -> None:
    """Compose's simulator is devstack's SIMULATOR_ARGS publishing to compose's Mosquitto."""
    expected = [*devstack.SIMULATOR_ARGS, "--mqtt", f"mqtt://{devstack.COMPOSE_MQTT}"]
    assert compose["simulator"]["command"] == expected


def test_callfloor_serves_the_mounted_config_on_its_port(compose: dict[str, Any]) -> None:
    """Compose's callfloor runs `serve` with the mounted deploy/callfloor.toml on its port."""
    command = compose["callfloor"]["command"]
    mounted = {v.split(":")[1] for v in compose["callfloor"]["volumes"] if "callfloor.toml" in v}
    assert command[0] == "serve"
    assert command[command.index("--config") + 1] in mounted
    assert int(command[command.index("--port") + 1]) == devstack.SERVICES["callfloor"].port
