"""The source kit's registry: ``[[sources]] kind`` -> (its keys and their parser, its factory).

A feed is a pure mapper (:mod:`callfloor.feeds`) and a thin source around it. The
configuration and the service know sources only through :data:`KINDS`: the config
loader checks a ``[[sources]]`` table's keys against :attr:`SourceKind.keys` and lets
the kind's :attr:`SourceKind.parse` read them (errors name file, key and problem like
the rest of the configuration); ``callfloor serve`` builds each source with
:attr:`SourceKind.factory`. Adding a feed is one module (its options parser, its
source class and a factory) and one line here. See docs/sources.md.

The factories import their module only when called, so a configuration that uses no
MQTT never imports aiomqtt, and this module stays importable from ``callfloor.config``
(which imports it when it reads ``[[sources]]``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

if TYPE_CHECKING:
    from callfloor.config import Config, SourceConfig
    from callfloor.ingest.source import Source
    from callfloor.service.floor import FloorService

GENERIC_KEYS: Final[tuple[str, ...]] = ("kind", "name")
"""Keys every kind takes; the others are the kind's own (:attr:`SourceKind.keys`)."""


class KeyReader(Protocol):
    """What a kind's parser reads keys with (the config loader's context).

    Every method raises a configuration error naming file, key and problem.
    """

    def error(self, key: str, problem: str) -> Exception:
        """An error for ``key`` (raise it)."""
        ...

    def string(self, value: object, key: str) -> str:
        """A non-empty string."""
        ...

    def choice(self, value: object, key: str, allowed: tuple[str, ...]) -> str:
        """One of ``allowed``."""
        ...

    def secret(self, value: object, key: str) -> str:
        """A string, or ``env:NAME`` read from the environment."""
        ...

    def duration(self, value: object, key: str) -> float:
        """Seconds, from a number or ``"250ms"``, ``"5s"``, ..."""
        ...

    def integer(self, value: object, key: str, lo: int, hi: int | None = None) -> int:
        """An integer within bounds."""
        ...

    def size(self, value: object, key: str) -> int:
        """Bytes, from an integer or ``"1MiB"``, ``"64KB"``, ..."""
        ...

    def boolean(self, value: object, key: str) -> bool:
        """true or false."""
        ...


Parse = Callable[[KeyReader, Mapping[str, object], str], dict[str, Any]]
"""``parse(reader, table, key)``: the :class:`~callfloor.config.SourceConfig` fields the
kind sets from its table (``options`` holds a kind's own settings object)."""

Factory = Callable[["SourceConfig", "SourceContext"], "Source"]


class SourceSetupError(Exception):
    """A configured source cannot run as written (said with the source's name)."""


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What a factory may use of the service it is built for."""

    config: Config
    service: FloorService


@dataclass(frozen=True, slots=True)
class SourceKind:
    """One kind of ``[[sources]]`` entry (see the module docstring)."""

    name: str
    keys: tuple[str, ...]
    parse: Parse
    factory: Factory
    summary: str = ""


def _mqtt_parse(r: KeyReader, table: Mapping[str, object], key: str) -> dict[str, Any]:
    from callfloor.config import MQTT_PROTOCOLS

    raw_topics = table.get("topics", ["callfloor/+/events"])
    if not isinstance(raw_topics, list) or not raw_topics:
        raise r.error(f"{key}.topics", "expected a non-empty array of topic filters")
    topics = tuple(r.string(t, f"{key}.topics[{j}]") for j, t in enumerate(raw_topics))
    url = r.string(table.get("url", "mqtt://127.0.0.1:1883"), f"{key}.url")
    if not url.startswith(("mqtt://", "mqtts://")):
        raise r.error(f"{key}.url", f"expected mqtt://host:port or mqtts://host:port, got {url!r}")
    protocol = table.get("protocol", "5")
    protocol = str(protocol) if type(protocol) is int else protocol
    return {
        "url": url,
        "topics": topics,
        "protocol": r.choice(protocol, f"{key}.protocol", MQTT_PROTOCOLS),
    }


def _mqtt_factory(entry: SourceConfig, ctx: SourceContext) -> Source:
    from callfloor.ingest.mqtt import MqttSource, MqttSourceError  # aiomqtt only when used

    service = ctx.service
    try:
        return MqttSource(
            entry,
            ctx.config.limits,
            stats=service.stats,
            not_after=service.not_after,
            future=service.future,
        )
    except MqttSourceError as exc:
        raise SourceSetupError(str(exc)) from None


def _tail_parse(r: KeyReader, table: Mapping[str, object], key: str) -> dict[str, Any]:
    from callfloor.ingest.tail import parse_options

    return parse_options(r, table, key)


def _tail_factory(entry: SourceConfig, ctx: SourceContext) -> Source:
    from callfloor.ingest.tail import make_tail_source

    return make_tail_source(entry, ctx)


def _connect_parse(r: KeyReader, table: Mapping[str, object], key: str) -> dict[str, Any]:
    # Either a tailed file (path) or records posted to /api/v1/feeds/<name> (ingest).
    if "ingest" in table:
        if not r.boolean(table["ingest"], f"{key}.ingest"):
            raise r.error(f"{key}.ingest", "set ingest = true, or leave it out and give path")
        if "path" in table:
            raise r.error(f"{key}.path", "give path (a file to tail) or ingest = true, not both")
        extra = set(table) - {"kind", "name", "site", "ingest"}
        if extra:
            raise r.error(f"{key}.{sorted(extra)[0]}", "only site goes with ingest = true")
        return {"options": "ingest"}
    return _tail_parse(r, table, key)


def _connect_factory(entry: SourceConfig, ctx: SourceContext) -> Source:
    if entry.options == "ingest":
        from callfloor.ingest.posted import make_posted_source

        return make_posted_source(entry, ctx)
    return _tail_factory(entry, ctx)


def _ami_parse(r: KeyReader, table: Mapping[str, object], key: str) -> dict[str, Any]:
    from callfloor.ingest.ami import parse_options

    return parse_options(r, table, key)


def _ami_factory(entry: SourceConfig, ctx: SourceContext) -> Source:
    from callfloor.ingest.ami import make_ami_source

    return make_ami_source(entry, ctx)


_MQTT_KEYS: Final = ("url", "topics", "client_id", "username", "password", "ca_file", "protocol")
_TAIL_KEYS: Final = (
    "path",
    "site",
    "poll_interval",
    "start",
    "timezone",
    "dead_letters",
    "max_line_bytes",
)

KINDS: Final[dict[str, SourceKind]] = {
    "mqtt": SourceKind("mqtt", _MQTT_KEYS, _mqtt_parse, _mqtt_factory, "MQTT subscription"),
    "queue_log": SourceKind(
        "queue_log", _TAIL_KEYS, _tail_parse, _tail_factory, "tailed queue_log"
    ),
    "queue_log_csv": SourceKind(
        "queue_log_csv", _TAIL_KEYS, _tail_parse, _tail_factory, "tailed queue_log CSV export"
    ),
    "connect": SourceKind(
        "connect",
        (*_TAIL_KEYS, "ingest"),
        _connect_parse,
        _connect_factory,
        "Amazon Connect NDJSON: a tailed file, or posted to /api/v1/feeds/<name>",
    ),
    "ami": SourceKind(
        "ami",
        ("url", "username", "secret", "site", "auth", "ping_interval"),
        _ami_parse,
        _ami_factory,
        "Asterisk Manager Interface client",
    ),
}
"""Every source kind, by the ``kind`` value that names it."""
