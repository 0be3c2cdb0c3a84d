"""Sink kinds by name, and ``[alerts.sinks.<name>]`` tables to configured sinks.

A fifth kind is one module (a :class:`~callfloor.sinks.alerts.base.SinkConfig`
subclass, ``KEYS``, ``parse`` and ``create``) plus one line in :data:`KINDS`.

``parse_sinks`` validates the tables (unknown kind or key, bad URL, missing secret:
:class:`~callfloor.config.ConfigError` naming the file, the key and the problem);
SPEC §10's ``[alerts] alertmanager_url = "..."`` is shorthand for a sink named
``alertmanager`` of kind ``alertmanager`` with that URL. ``create_sinks`` builds them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Final

from callfloor.sinks.alerts import alertmanager, log, mqtt, webhook
from callfloor.sinks.alerts.base import AlertSink, SinkConfig
from callfloor.sinks.alerts.settings import COMMON_KEYS, Ctx, common_settings

__all__ = ["KINDS", "SinkKind", "create_sinks", "parse_sinks"]

Parse = Callable[[Ctx, Mapping[str, object], str, dict[str, Any]], SinkConfig]


@dataclass(frozen=True, slots=True)
class SinkKind:
    """A kind of sink: its own keys, its table parser and its factory."""

    keys: tuple[str, ...]
    parse: Parse
    create: Callable[[SinkConfig], AlertSink]


def _kind(module: ModuleType) -> SinkKind:
    return SinkKind(module.KEYS, module.parse, module.create)


KINDS: Final[Mapping[str, SinkKind]] = {
    "alertmanager": _kind(alertmanager),
    "webhook": _kind(webhook),
    "mqtt": _kind(mqtt),
    "log": _kind(log),
}
"""Every sink kind by its ``kind`` value."""

SHORTHAND_NAME: Final = "alertmanager"


def parse_sink(ctx: Ctx, name: str, raw: object, key: str) -> SinkConfig:
    """One ``[alerts.sinks.<name>]`` table."""
    table = ctx.table(raw, key)
    if "kind" not in table:
        raise ctx.error(f"{key}.kind", f"missing (one of {', '.join(KINDS)})")
    kind_name = ctx.choice(table["kind"], f"{key}.kind", tuple(KINDS))
    kind = KINDS[kind_name]
    ctx.check_keys(table, (*COMMON_KEYS, *kind.keys), key)
    common = common_settings(ctx, table, key)
    return kind.parse(ctx, table, key, {"name": name, "kind": kind_name, **common})


def parse_sinks(
    table: Mapping[str, object],
    source: str = "<config>",
    *,
    alertmanager_url: object = None,
    prefix: str = "alerts.sinks",
) -> dict[str, SinkConfig]:
    """Validate the ``[alerts.sinks]`` table (sink name -> table) and the shorthand.

    ``alertmanager_url`` is ``[alerts] alertmanager_url`` when set (a sink named
    ``alertmanager`` then may not be configured as well).
    """
    ctx = Ctx(source)
    sinks = ctx.table(table, prefix)
    out: dict[str, SinkConfig] = {}
    if alertmanager_url is not None:
        if SHORTHAND_NAME in sinks:
            raise ctx.error(
                "alerts.alertmanager_url",
                f"a sink named {SHORTHAND_NAME!r} is configured too ({prefix}.{SHORTHAND_NAME}):"
                " keep one of them",
            )
        url_ctx = _Renamed(source, f"{prefix}.{SHORTHAND_NAME}.url", "alerts.alertmanager_url")
        out[SHORTHAND_NAME] = parse_sink(
            url_ctx,
            SHORTHAND_NAME,
            {"kind": "alertmanager", "url": alertmanager_url},
            f"{prefix}.{SHORTHAND_NAME}",
        )
    for name, raw in sinks.items():
        key = f"{prefix}.{name}"
        if not name or any(c.isspace() or c in ",=\"'{}" for c in name):
            raise ctx.error(key, "a sink name is letters, digits, '-', '_' or '.'")
        out[name] = parse_sink(ctx, name, raw, key)
    return out


class _Renamed(Ctx):
    """Errors about the shorthand name the key the user wrote."""

    def __init__(self, source: str, internal: str, written: str) -> None:
        super().__init__(source)
        self._internal = internal
        self._written = written

    def error(self, key: str, problem: str) -> Any:
        return super().error(self._written if key == self._internal else key, problem)


def create_sinks(configs: Mapping[str, SinkConfig]) -> list[AlertSink]:
    """One sink per configuration, by its kind's factory."""
    return [KINDS[config.kind].create(config) for config in configs.values()]
