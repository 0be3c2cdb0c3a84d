"""Configuration (SPEC §8): a TOML file whose every key is optional.

``load_config`` reads and validates a file; ``parse_config`` validates an
already-parsed mapping. Any problem raises :class:`ConfigError` with a message that
names the file, the key and the problem, and start-up stops there: a monitoring
process that silently ignores a typo in a threshold shows supervisors wrong numbers.

The resulting :class:`Config` is immutable plain data; processors read it and never
the file.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callfloor.alerts.rules import AlertsConfig, default_rules, parse_alerts
from callfloor.events import CHANNELS

SL_FORMULAS: Final[tuple[str, ...]] = (
    "abandoned_negative",
    "ignore_abandoned",
    "abandoned_positive",
)

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?", re.IGNORECASE)
# Binary multiples either way: "16MB" is the 16 MiB that HTTP body limits usually mean.
_SIZE_UNITS: Final[dict[str, int]] = {
    "b": 1,
    "kb": 1024,
    "kib": 1024,
    "mb": 1024**2,
    "mib": 1024**2,
    "gb": 1024**3,
    "gib": 1024**3,
}
# Bounds on what would be absurd (docs/decisions.md, "The HTTP edge").
MAX_NAME_LENGTH_BOUND: Final = 4096  # [limits] max_name_length
MIN_CHECKPOINT_EVERY_S: Final = 0.1  # [store] checkpoint_every
MIN_TOKEN_LENGTH: Final = 16  # shorter bearer tokens are logged as weak at start-up
# A bearer token is one word of printable ASCII (RFC 6750): a space or a control
# character could never arrive intact in an Authorization header.
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")
# A host name or an IP address as allowed_hosts lists them ("*." before a name: any name
# under it).
_LABEL = r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?"
_HOST_NAME = re.compile(rf"(\*\.)?{_LABEL}(\.{_LABEL})*")

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_S: Final[dict[str, float]] = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class ConfigError(ValueError):
    """A configuration problem; the message names the file, the key and the problem."""


def parse_duration(value: object) -> float:
    """Seconds from a number or a string such as ``"90s"``, ``"15m"``, ``"2h"``, ``"1h30m"``.

    Raises ``ValueError`` (without file or key context) when the value is not a duration.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            pos = 0
            seconds = 0.0
            for match in _DURATION_PART.finditer(text):
                if match.start() != pos:
                    break
                seconds += float(match.group(1)) * _UNIT_S[match.group(2)]
                pos = match.end()
            if pos != len(text) or not text:
                raise ValueError(
                    f'expected a duration such as "90s", "15m" or "2h", got {value!r}'
                ) from None
    else:
        raise ValueError(f"expected a duration, got {type(value).__name__}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"expected a non-negative duration, got {value!r}")
    return seconds


def parse_size(value: object) -> int:
    """Bytes from an integer or a string such as ``"16MB"``, ``"512KiB"``.

    Units are binary (``MB`` = ``MiB`` = 2^20 bytes). Raises ``ValueError`` when the
    value is not a size.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a size, got {value!r}")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str):
        match = _SIZE.fullmatch(value.strip())
        if match is None:
            raise ValueError(f'expected a size such as "16MB" or "512KiB", got {value!r}')
        unit = (match.group(2) or "b").lower()
        size = int(float(match.group(1)) * _SIZE_UNITS[unit])
    else:
        raise ValueError(f"expected a size, got {type(value).__name__}")
    if size < 1:
        raise ValueError(f"expected a positive size, got {value!r}")
    return size


@dataclass(frozen=True, slots=True)
class QueuePolicy:
    """Service-level settings of one queue (a channel's defaults with the queue's overrides)."""

    sl_threshold_s: float = 20.0
    sl_target: float = 0.8
    short_abandon_s: float = 5.0
    sl_formula: str = "abandoned_negative"
    default_aht_s: float = 180.0


def _channel_defaults() -> dict[str, QueuePolicy]:
    base = QueuePolicy()
    out = {channel: base for channel in CHANNELS}
    out["chat"] = QueuePolicy(sl_threshold_s=30.0)
    out["email"] = QueuePolicy(sl_threshold_s=14400.0, sl_target=0.9)
    return out


@dataclass(frozen=True, slots=True)
class SiteConfig:
    """A call floor: its IANA time zone, interval length and roll-up formula."""

    name: str
    timezone: str = "UTC"
    interval_minutes: int = 15
    sl_formula: str = "abandoned_negative"


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """A configured queue: its site, channel and resolved policy."""

    name: str
    site: str | None
    channel: str
    policy: QueuePolicy


@dataclass(frozen=True, slots=True)
class AgentRules:
    """Limits for idle-time violations (SPEC §4)."""

    not_ready_max_s: float = 600.0
    not_ready_reason_max_s: Mapping[str, float] = field(default_factory=dict)
    exempt_reasons: frozenset[str] = frozenset()
    daily_not_ready_s: tuple[float, ...] = (1800.0, 2700.0)
    wrap_up_max_s: float = 120.0
    missed_calls_max: int = 3
    missed_calls_window_s: float = 3600.0
    stale_after_s: float = 4 * 3600.0

    def not_ready_limit(self, reason: str | None) -> float:
        """The spell limit for a not-ready reason (the general limit when none is set)."""
        if reason is None:
            return self.not_ready_max_s
        return self.not_ready_reason_max_s.get(reason, self.not_ready_max_s)


WEEKDAYS: Final[tuple[str, ...]] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Shift:
    """One roster row (SPEC §4): an agent's shift on a date or on every such weekday.

    Times are minutes after the agent's site-local midnight; an ``end_min`` at or before
    ``start_min`` is on the next day (a shift across midnight). ``off`` marks a dated row
    that gives the agent no shift that date (leave), overriding its weekday rows.
    """

    agent: str
    date: str | None  # YYYY-MM-DD
    weekday: int | None  # 0 = Monday
    start_min: int
    end_min: int
    off: bool = False


@dataclass(frozen=True, slots=True)
class RosterConfig:
    """``[roster]``: shifts and the grace before ``late_login`` / ``early_logout``."""

    grace_login_s: float = 300.0
    grace_logout_s: float = 120.0
    severity: str = "warning"
    shifts: tuple[Shift, ...] = ()


# Severity of the n-th daily not-ready limit; SPEC gives minor then major.
DAILY_SEVERITIES: Final[tuple[str, ...]] = ("minor", "major", "critical")


@dataclass(frozen=True, slots=True)
class IngestConfig:
    """Duplicate detection memory: how long and how many event identities are kept."""

    dedup_window_s: float = 6 * 3600.0
    dedup_max_entries: int = 1_000_000


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """Prometheus exposition options."""

    per_agent_series: bool = False
    # Queues created by events alone (not configured) exposed per queue, first seen first:
    # a faulty or hostile producer cannot blow up every scrape with invented queues.
    max_unconfigured_queues: int = 100


DEAD_LETTER_MAX_BYTES: Final = 1024 * 1024  # the most [limits] dead_letter_max may keep


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """Limits that protect the floor from a faulty or hostile producer (SPEC §9)."""

    max_name_length: int = 128
    max_queues: int = 2000
    max_sites: int = 200
    max_agents: int = 50_000
    max_lateness_s: float = 24 * 3600.0
    max_body_bytes: int = 16 * 1024 * 1024
    max_pending_events: int = 1_000_000
    max_request_events: int = 100_000  # events in one request body or message
    # Bytes of request bodies being read or decoded at once, over every connection: a
    # body beyond it is refused with 503 before it is read.
    max_inflight_body_bytes: int = 256 * 1024 * 1024
    # Calls waiting in a queue at once (open legs): a real floor has hundreds; a writer
    # inventing calls must not grow memory until they expire (max_lateness).
    max_open_calls: int = 100_000
    # Events ahead of the server clock held per source: one producer with a fast clock
    # must not fill max_pending_events and lock every producer out.
    max_future_events: int = 10_000
    # Queues, sites and agents created by events are forgotten after this long with no
    # activity and nothing left open (never configured ones); default max(7 days, max_lateness).
    forget_after_s: float = 7 * 24 * 3600.0
    # How much of a payload (or of each invalid item) a dead letter keeps.
    dead_letter_max_bytes: int = 4096


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """Where the HTTP server listens, and who may write and read (SPEC §9)."""

    host: str = "127.0.0.1"
    port: int = 8080
    # Bearer tokens (secrets resolved). No write token: writes only from loopback.
    write_tokens: tuple[str, ...] = ()
    # No read token: reads are open (per-agent data beyond loopback excepted).
    read_tokens: tuple[str, ...] = ()
    # Host names a request without a token may name besides the bound address and the
    # loopback names (lower case; "*.example.com" covers the names under example.com).
    allowed_hosts: tuple[str, ...] = ()
    # Reverse proxies (addresses and networks, as ipaddress networks' text) whose
    # X-Forwarded-For / Forwarded say who the client is.
    trusted_proxies: tuple[str, ...] = ()
    # TLS served directly: a PEM certificate chain and its private key (both or neither).
    tls_cert: str | None = None
    tls_key: str | None = None
    # Operators acknowledge alerts and silence them: (name, token); the name is who
    # acted, recorded with the command.
    operator_tokens: tuple[tuple[str, str], ...] = ()


STORE_KINDS: Final[tuple[str, ...]] = ("memory", "file", "redis")


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Where accepted events and checkpoints are kept (SPEC §9 ``[store]``).

    ``memory:`` keeps nothing (the demo); ``file:///path`` an append-only log and a
    checkpoint file on one machine; ``redis://`` a stream per site and checkpoints in
    Redis, shared by several processes. ``partitions`` says how the floor is split
    between processes with a Redis store: ``None`` (``"all"``): one partition, one
    owner, the others standing by; ``"site"``: each site on its own; or explicit
    groups of sites that share agents.
    """

    url: str = "memory:"
    kind: str = "memory"
    path: str | None = None  # file: the directory
    checkpoint_every_s: float = 5.0
    lease_ttl_s: float = 10.0
    partitions: str | tuple[tuple[str, ...], ...] | None = None
    key_prefix: str = "callfloor"


# The source kinds and their keys are in callfloor.ingest.kinds.KINDS (the source kit).
HTTP_SOURCE: Final = "http"  # the built-in ingest route's source name (reserved)
MQTT_PROTOCOLS: Final[tuple[str, ...]] = ("5", "3.1.1")


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One configured source (SPEC §9 ``[[sources]]``); secrets already resolved."""

    kind: str
    name: str
    url: str | None = None
    topics: tuple[str, ...] = ()
    client_id: str | None = None
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None  # mqtts://: trust this CA instead of the system's
    protocol: str = "5"  # mqtt: "5" or "3.1.1"
    path: str | None = None
    site: str | None = None
    secret: str | None = None
    # The kind's own settings (a queue_log's poll interval, AMI's auth...), as its parser
    # in callfloor.ingest.kinds made them; None for kinds without any.
    options: Any = None


CALLER_ID_MODES: Final[tuple[str, ...]] = ("redact", "keep")


@dataclass(frozen=True, slots=True)
class PrivacyConfig:
    """What callfloor may keep of callers (``[privacy]``).

    ``caller_ids = "redact"`` (the default): caller numbers read from a feed (a
    queue_log's ENTERQUEUE, PBXware's ``param1``, AMI's CallerIDNum) never reach dead
    letters, summaries or logs; ``"keep"`` keeps them there.
    """

    caller_ids: str = "redact"


@dataclass(frozen=True, slots=True)
class AsteriskConfig:
    """How Asterisk feeds (queue_log, its database exports, AMI) name agents and read times.

    ``aliases`` maps an agent as the log writes it (``"Local/1127@callback-agent"``) or
    as it reads once stripped (``"1127"``) to one name; with ``strip_technology`` a name
    loses its technology prefix and ``@context`` (``Agent/1127`` -> ``1127``).
    ``timezone`` is the zone of database exports whose times are local text (default:
    the source's site's zone).
    """

    aliases: Mapping[str, str] = field(default_factory=dict)
    strip_technology: bool = True
    timezone: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectConfig:
    """Names for Amazon Connect queues and agents, by ARN or id (``[connect]``)."""

    queues: Mapping[str, str] = field(default_factory=dict)
    agents: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated configuration."""

    sites: Mapping[str, SiteConfig] = field(default_factory=dict)
    channel_defaults: Mapping[str, QueuePolicy] = field(default_factory=_channel_defaults)
    queues: Mapping[str, QueueConfig] = field(default_factory=dict)
    rolling_windows: tuple[tuple[str, float], ...] = (("15m", 900.0), ("60m", 3600.0))
    agents: AgentRules = field(default_factory=AgentRules)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    sources: tuple[SourceConfig, ...] = ()
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    asterisk: AsteriskConfig = field(default_factory=AsteriskConfig)
    connect: ConnectConfig = field(default_factory=ConnectConfig)
    alerts: AlertsConfig = field(default_factory=lambda: AlertsConfig(rules=default_rules("15m")))
    roster: RosterConfig = field(default_factory=RosterConfig)
    source: str = "<defaults>"
    # What is weak but works (a short token, ...): logged at start-up, one line each,
    # naming file and key like an error.
    warnings: tuple[str, ...] = ()

    def site(self, name: str) -> SiteConfig:
        """The configured site, or one with the defaults."""
        found = self.sites.get(name)
        return found if found is not None else SiteConfig(name=name)

    def named_sites(self) -> list[str]:
        """Every site the configuration names: the ``[sites]`` table, the queues' sites
        and the sites of ``[store] partitions`` groups (sorted; a shared store registers
        them at start, so each has an owner before any of its events arrives)."""
        names = set(self.sites)
        names.update(q.site for q in self.queues.values() if q.site is not None)
        if isinstance(self.store.partitions, tuple):
            names.update(site for group in self.store.partitions for site in group)
        return sorted(names)

    def for_sites(self, sites: frozenset[str]) -> Config:
        """This configuration with only ``sites`` and their queues (a partition's part)."""
        return replace(
            self,
            sites={name: site for name, site in self.sites.items() if name in sites},
            queues={name: q for name, q in self.queues.items() if q.site in sites},
        )

    def queue_policy(self, name: str, channel: str) -> QueuePolicy:
        """The configured policy, else the channel's defaults (a queue seen only in events)."""
        queue = self.queues.get(name)
        if queue is not None:
            return queue.policy
        return self.channel_defaults.get(channel, self.channel_defaults["voice"])


# ---------------------------------------------------------------------------- parsing


class _Ctx:
    """Carries the file name so every error names file, key and problem."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.warnings: list[str] = []

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: {key}: {problem}")

    def warn(self, key: str, problem: str) -> None:
        self.warnings.append(f"{self.source}: {key}: {problem}")

    def table(self, value: object, key: str) -> Mapping[str, object]:
        if not isinstance(value, dict):
            raise self.error(key, f"expected a table, got {_kind(value)}")
        return value

    def check_keys(self, table: Mapping[str, object], allowed: tuple[str, ...], key: str) -> None:
        for name in table:
            if name not in allowed:
                where = f"{key}.{name}" if key else name
                raise self.error(where, f"unknown key (allowed: {', '.join(allowed)})")

    def size(self, value: object, key: str) -> int:
        try:
            return parse_size(value)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

    def duration(self, value: object, key: str) -> float:
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

    def number(self, value: object, key: str, lo: float, hi: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"expected a number, got {_kind(value)}")
        if not lo <= float(value) <= hi:
            raise self.error(key, f"must be between {lo:g} and {hi:g}, got {value!r}")
        return float(value)

    def integer(self, value: object, key: str, lo: int, hi: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer, got {_kind(value)}")
        if value < lo:
            raise self.error(key, f"must be at least {lo}, got {value}")
        if hi is not None and value > hi:
            raise self.error(key, f"must be at most {hi}, got {value}")
        return value

    def string(self, value: object, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.error(key, f"expected a non-empty string, got {_kind(value)}")
        return value

    def choice(self, value: object, key: str, allowed: tuple[str, ...]) -> str:
        text = self.string(value, key)
        if text not in allowed:
            raise self.error(key, f"must be one of {', '.join(allowed)}, got {text!r}")
        return text

    def secret(self, value: object, key: str) -> str:
        """A string, or ``"env:NAME"`` read from the environment (SPEC §9)."""
        text = self.string(value, key)
        if text.startswith("env:"):
            name = text.removeprefix("env:")
            found = os.environ.get(name)
            if not found:
                raise self.error(key, f"environment variable {name} is not set (or empty)")
            return found
        return text

    def secrets(self, value: object, key: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.error(key, f"expected an array of strings, got {_kind(value)}")
        return tuple(self.secret(item, f"{key}[{i}]") for i, item in enumerate(value))

    def boolean(self, value: object, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {_kind(value)}")
        return value


def _kind(value: object) -> str:
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, bool):
        return f"boolean {value}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return f"{type(value).__name__} {value!r}"


_POLICY_KEYS: Final[tuple[str, ...]] = (
    "sl_threshold_s",
    "sl_target",
    "short_abandon_s",
    "sl_formula",
    "default_aht_s",
)


def _policy(ctx: _Ctx, table: Mapping[str, object], key: str, base: QueuePolicy) -> QueuePolicy:
    threshold = base.sl_threshold_s
    target = base.sl_target
    short = base.short_abandon_s
    formula = base.sl_formula
    aht = base.default_aht_s
    if "sl_threshold_s" in table:
        threshold = ctx.duration(table["sl_threshold_s"], f"{key}.sl_threshold_s")
    if "sl_target" in table:
        target = ctx.number(table["sl_target"], f"{key}.sl_target", 0.0, 1.0)
        if target <= 0:
            raise ctx.error(f"{key}.sl_target", "must be above 0")
    if "short_abandon_s" in table:
        short = ctx.duration(table["short_abandon_s"], f"{key}.short_abandon_s")
    if "sl_formula" in table:
        formula = ctx.choice(table["sl_formula"], f"{key}.sl_formula", SL_FORMULAS)
    if "default_aht_s" in table:
        aht = ctx.duration(table["default_aht_s"], f"{key}.default_aht_s")
        if aht <= 0:
            raise ctx.error(f"{key}.default_aht_s", "must be above 0")
    if short > threshold:
        name = "short_abandon_s" if "short_abandon_s" in table else "sl_threshold_s"
        raise ctx.error(
            f"{key}.{name}",
            f"short-abandon threshold {short:g} s is above the service-level threshold "
            f"{threshold:g} s",
        )
    return QueuePolicy(threshold, target, short, formula, aht)


def parse_config(data: Mapping[str, object], source: str = "<config>") -> Config:
    """Validate a parsed TOML document; raise :class:`ConfigError` on the first problem."""
    ctx = _Ctx(source)
    ctx.check_keys(
        data,
        (
            "sites",
            "defaults",
            "queues",
            "windows",
            "agents",
            "ingest",
            "metrics",
            "http",
            "limits",
            "store",
            "sources",
            "privacy",
            "asterisk",
            "connect",
            "alerts",
            "roster",
        ),
        "",
    )

    sites: dict[str, SiteConfig] = {}
    for name, raw in ctx.table(data.get("sites", {}), "sites").items():
        key = f"sites.{name}"
        table = ctx.table(raw, key)
        ctx.check_keys(table, ("timezone", "interval_minutes", "sl_formula"), key)
        tz = ctx.string(table.get("timezone", "UTC"), f"{key}.timezone")
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ctx.error(f"{key}.timezone", f"unknown time zone {tz!r}") from None
        interval = table.get("interval_minutes", 15)
        if interval not in (15, 30) or isinstance(interval, bool):
            raise ctx.error(f"{key}.interval_minutes", f"must be 15 or 30, got {interval!r}")
        assert isinstance(interval, int)
        formula = ctx.choice(
            table.get("sl_formula", "abandoned_negative"), f"{key}.sl_formula", SL_FORMULAS
        )
        sites[name] = SiteConfig(
            name=name, timezone=tz, interval_minutes=interval, sl_formula=formula
        )

    channel_defaults = _channel_defaults()
    for channel, raw in ctx.table(data.get("defaults", {}), "defaults").items():
        key = f"defaults.{channel}"
        if channel not in CHANNELS:
            raise ctx.error(key, f"unknown channel (allowed: {', '.join(CHANNELS)})")
        table = ctx.table(raw, key)
        ctx.check_keys(table, _POLICY_KEYS, key)
        channel_defaults[channel] = _policy(ctx, table, key, channel_defaults[channel])

    queues: dict[str, QueueConfig] = {}
    for name, raw in ctx.table(data.get("queues", {}), "queues").items():
        key = f"queues.{name}"
        table = ctx.table(raw, key)
        ctx.check_keys(table, ("site", "channel", *_POLICY_KEYS), key)
        site = ctx.string(table["site"], f"{key}.site") if "site" in table else None
        channel = ctx.choice(table.get("channel", "voice"), f"{key}.channel", CHANNELS)
        policy = _policy(ctx, table, key, channel_defaults[channel])
        queues[name] = QueueConfig(name=name, site=site, channel=channel, policy=policy)

    rolling: tuple[tuple[str, float], ...] = (("15m", 900.0), ("60m", 3600.0))
    windows = ctx.table(data.get("windows", {}), "windows")
    ctx.check_keys(windows, ("rolling",), "windows")
    if "rolling" in windows:
        raw_list = windows["rolling"]
        if not isinstance(raw_list, list):
            raise ctx.error("windows.rolling", f"expected an array, got {_kind(raw_list)}")
        seen: list[tuple[str, float]] = []
        for i, item in enumerate(raw_list):
            seconds = ctx.duration(item, f"windows.rolling[{i}]")
            if seconds <= 0:
                raise ctx.error(f"windows.rolling[{i}]", "a window must be longer than 0")
            label = item if isinstance(item, str) else f"{item:g}"
            if any(label == existing for existing, _ in seen):
                raise ctx.error(f"windows.rolling[{i}]", f"window {label!r} is listed twice")
            seen.append((label, seconds))
        rolling = tuple(seen)

    agents = _agent_rules(ctx, ctx.table(data.get("agents", {}), "agents"))

    ingest_t = ctx.table(data.get("ingest", {}), "ingest")
    ctx.check_keys(ingest_t, ("dedup_window", "dedup_max_entries"), "ingest")
    ingest = IngestConfig(
        dedup_window_s=ctx.duration(ingest_t.get("dedup_window", "6h"), "ingest.dedup_window"),
        dedup_max_entries=ctx.integer(
            ingest_t.get("dedup_max_entries", 1_000_000), "ingest.dedup_max_entries", 1
        ),
    )

    metrics_t = ctx.table(data.get("metrics", {}), "metrics")
    ctx.check_keys(metrics_t, ("per_agent_series", "max_unconfigured_queues"), "metrics")
    metrics = MetricsConfig(
        per_agent_series=ctx.boolean(
            metrics_t.get("per_agent_series", False), "metrics.per_agent_series"
        ),
        max_unconfigured_queues=ctx.integer(
            metrics_t.get("max_unconfigured_queues", 100), "metrics.max_unconfigured_queues", 0
        ),
    )

    http = _http(ctx, ctx.table(data.get("http", {}), "http"))
    limits = _limits(ctx, ctx.table(data.get("limits", {}), "limits"))
    store = _store(ctx, ctx.table(data.get("store", {}), "store"))
    if store.partitions is not None:
        # Each partition runs its sites' queues: a queue must say which site it is in.
        for name, q in queues.items():
            if q.site is None:
                raise ctx.error(
                    f"queues.{name}.site",
                    "with [store] partitions every configured queue needs its site",
                )
    sources = _sources(ctx, data.get("sources", []))

    return Config(
        sites=sites,
        channel_defaults=channel_defaults,
        queues=queues,
        rolling_windows=rolling,
        agents=agents,
        ingest=ingest,
        metrics=metrics,
        http=http,
        limits=limits,
        store=store,
        sources=sources,
        privacy=_privacy(ctx, ctx.table(data.get("privacy", {}), "privacy")),
        asterisk=_asterisk(ctx, ctx.table(data.get("asterisk", {}), "asterisk")),
        connect=_connect(ctx, ctx.table(data.get("connect", {}), "connect")),
        alerts=parse_alerts(
            ctx, ctx.table(data.get("alerts", {}), "alerts"), [label for label, _ in rolling]
        ),
        roster=_roster(ctx, ctx.table(data.get("roster", {}), "roster")),
        source=source,
        warnings=tuple(ctx.warnings),
    )


def _http(ctx: _Ctx, table: Mapping[str, object]) -> HttpConfig:
    ctx.check_keys(
        table,
        (
            "host",
            "port",
            "write_tokens",
            "read_tokens",
            "allowed_hosts",
            "trusted_proxies",
            "tls_cert",
            "tls_key",
            "operator_tokens",
        ),
        "http",
    )
    write = _tokens(ctx, table.get("write_tokens", []), "http.write_tokens")
    read = _tokens(ctx, table.get("read_tokens", []), "http.read_tokens")
    for i, token in enumerate(read):
        if token in write:
            ctx.warn(
                f"http.read_tokens[{i}]",
                "the same token is in write_tokens: its holder reads and writes, so the "
                "two lists are not kept apart; give readers their own token",
            )
    cert = _readable(ctx, table.get("tls_cert"), "http.tls_cert")
    key = _readable(ctx, table.get("tls_key"), "http.tls_key")
    if (cert is None) != (key is None):
        missing = "http.tls_key" if key is None else "http.tls_cert"
        raise ctx.error(missing, "TLS needs both tls_cert and tls_key (or neither)")
    operators: list[tuple[str, str]] = []
    for name, raw in ctx.table(table.get("operator_tokens", {}), "http.operator_tokens").items():
        okey = f"http.operator_tokens.{name}"
        if not re.match(r"^[A-Za-z0-9_.@-]{1,64}$", name):
            raise ctx.error(okey, "an operator name is 1-64 letters, digits, '_', '.', '@' or '-'")
        token = ctx.secret(raw, okey)
        if len(token) < 16:
            raise ctx.error(okey, "an operator token needs at least 16 characters")
        if token in write or token in read or any(token == t for _, t in operators):
            raise ctx.error(
                okey,
                "an operator token must be its own (not a read, write or another operator's token)",
            )
        operators.append((name, token))
    return HttpConfig(
        operator_tokens=tuple(operators),
        host=ctx.string(table.get("host", "127.0.0.1"), "http.host"),
        port=ctx.integer(table.get("port", 8080), "http.port", 1, 65535),
        write_tokens=write,
        read_tokens=read,
        allowed_hosts=_allowed_hosts(ctx, table.get("allowed_hosts", []), "http.allowed_hosts"),
        trusted_proxies=_networks(ctx, table.get("trusted_proxies", []), "http.trusted_proxies"),
        tls_cert=cert,
        tls_key=key,
    )


def _tokens(ctx: _Ctx, value: object, key: str) -> tuple[str, ...]:
    """Bearer tokens: refused when they could never match, warned about when weak."""
    tokens = ctx.secrets(value, key)
    for i, token in enumerate(tokens):
        where = f"{key}[{i}]"
        if not _TOKEN_CHARS.fullmatch(token):
            raise ctx.error(
                where,
                f"the token has {_unsendable(token)}: a bearer token is one word of printable "
                "ASCII (RFC 6750), or no Authorization header could carry it intact",
            )
        if len(token) < MIN_TOKEN_LENGTH:
            ctx.warn(
                where,
                f"the token is {len(token)} character{'' if len(token) == 1 else 's'} long, "
                f"fewer than {MIN_TOKEN_LENGTH}: it can be guessed; use a random one "
                "(e.g. openssl rand -hex 32)",
            )
        if token in tokens[:i]:
            ctx.warn(where, "the same token is listed twice")
    return tokens


def _unsendable(token: str) -> str:
    """What in ``token`` no client can send (for the error; the token is not shown)."""
    if any(c in " \t" for c in token):
        return "a space"
    if any(c in "\r\n" for c in token):
        return "a line break (a file read into the variable with its newline?)"
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in token):
        return "a control character"
    return "a non-ASCII character"


def _readable(ctx: _Ctx, value: object, key: str) -> str | None:
    """A path to a file this process can read (``None`` when the key is absent)."""
    if value is None:
        return None
    path = ctx.string(value, key)
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ctx.error(key, f"cannot read {path!r}: {exc.strerror}") from None
    return path


def _allowed_hosts(ctx: _Ctx, value: object, key: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ctx.error(key, f"expected an array of host names, got {_kind(value)}")
    out: list[str] = []
    for i, item in enumerate(value):
        where = f"{key}[{i}]"
        text = ctx.string(item, where).strip().lower().rstrip(".")
        try:
            out.append(str(ipaddress.ip_address(text.strip("[]"))))
            continue
        except ValueError:
            pass
        if not _HOST_NAME.fullmatch(text):
            raise ctx.error(
                where,
                f"expected a host name or an IP address without scheme, port or path "
                f'(e.g. "floor.example.com" or "*.example.com"), got {item!r}',
            )
        out.append(text)
    return tuple(out)


def _networks(ctx: _Ctx, value: object, key: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ctx.error(key, f"expected an array of addresses or networks, got {_kind(value)}")
    out: list[str] = []
    for i, item in enumerate(value):
        where = f"{key}[{i}]"
        text = ctx.string(item, where).strip()
        try:
            network = ipaddress.ip_network(text.strip("[]"))
        except ValueError as exc:
            raise ctx.error(
                where,
                f'expected an IP address or a network such as "10.0.0.0/8" ({exc})',
            ) from None
        if network.prefixlen == 0:
            # Every client could then name any address, loopback included.
            raise ctx.error(where, f"{text!r} trusts every address to say who the client is")
        out.append(str(network))
    return tuple(out)


def _names(ctx: _Ctx, value: object, key: str) -> dict[str, str]:
    """A table of names to names (aliases)."""
    table = ctx.table(value, key)
    return {name: ctx.string(alias, f"{key}.{name}") for name, alias in table.items()}


def _privacy(ctx: _Ctx, table: Mapping[str, object]) -> PrivacyConfig:
    ctx.check_keys(table, ("caller_ids",), "privacy")
    return PrivacyConfig(
        caller_ids=ctx.choice(
            table.get("caller_ids", "redact"), "privacy.caller_ids", CALLER_ID_MODES
        )
    )


def _asterisk(ctx: _Ctx, table: Mapping[str, object]) -> AsteriskConfig:
    ctx.check_keys(table, ("aliases", "strip_technology", "timezone"), "asterisk")
    zone: str | None = None
    if "timezone" in table:
        zone = ctx.string(table["timezone"], "asterisk.timezone")
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ctx.error("asterisk.timezone", f"unknown time zone {zone!r}") from None
    return AsteriskConfig(
        aliases=_names(ctx, table.get("aliases", {}), "asterisk.aliases"),
        strip_technology=ctx.boolean(
            table.get("strip_technology", True), "asterisk.strip_technology"
        ),
        timezone=zone,
    )


def _connect(ctx: _Ctx, table: Mapping[str, object]) -> ConnectConfig:
    ctx.check_keys(table, ("queues", "agents"), "connect")
    return ConnectConfig(
        queues=_names(ctx, table.get("queues", {}), "connect.queues"),
        agents=_names(ctx, table.get("agents", {}), "connect.agents"),
    )


def _limits(ctx: _Ctx, table: Mapping[str, object]) -> LimitsConfig:
    ctx.check_keys(
        table,
        (
            "max_name_length",
            "max_queues",
            "max_sites",
            "max_agents",
            "max_lateness",
            "max_body",
            "max_pending_events",
            "max_request_events",
            "max_inflight_body",
            "max_open_calls",
            "max_future_events",
            "forget_after",
            "dead_letter_max",
        ),
        "limits",
    )
    d = LimitsConfig()
    lateness = ctx.duration(table.get("max_lateness", d.max_lateness_s), "limits.max_lateness")
    if lateness < 60:
        raise ctx.error("limits.max_lateness", f"must be at least 60 s, got {lateness:g} s")
    # Forgetting relies on nothing before the live horizon changing any more.
    forget_after = max(d.forget_after_s, lateness)
    if "forget_after" in table:
        forget_after = ctx.duration(table["forget_after"], "limits.forget_after")
        if forget_after < lateness:
            raise ctx.error(
                "limits.forget_after",
                f"must be at least limits.max_lateness ({lateness:g} s), got {forget_after:g} s",
            )
    body = ctx.size(table.get("max_body", d.max_body_bytes), "limits.max_body")
    # Unset, a small max_body lowers it too; set, it must fit.
    letter = min(d.dead_letter_max_bytes, body)
    if "dead_letter_max" in table:
        letter = ctx.size(table["dead_letter_max"], "limits.dead_letter_max")
    if letter > min(DEAD_LETTER_MAX_BYTES, body):
        raise ctx.error(
            "limits.dead_letter_max",
            f"must be at most {min(DEAD_LETTER_MAX_BYTES, body)} bytes (1 MB and "
            f"limits.max_body), got {letter}",
        )
    inflight = ctx.size(
        table.get("max_inflight_body", d.max_inflight_body_bytes), "limits.max_inflight_body"
    )
    if inflight < body:
        # A body of max_body would never fit: every one would be refused with a 503.
        where = "limits.max_inflight_body" if "max_inflight_body" in table else "limits.max_body"
        raise ctx.error(
            where,
            f"[limits] max_inflight_body ({inflight} bytes) is smaller than [limits] max_body "
            f"({body} bytes): a body of max_body could never be read",
        )
    return LimitsConfig(
        max_name_length=ctx.integer(
            table.get("max_name_length", d.max_name_length),
            "limits.max_name_length",
            1,
            MAX_NAME_LENGTH_BOUND,
        ),
        max_queues=ctx.integer(table.get("max_queues", d.max_queues), "limits.max_queues", 1),
        max_sites=ctx.integer(table.get("max_sites", d.max_sites), "limits.max_sites", 1),
        max_agents=ctx.integer(table.get("max_agents", d.max_agents), "limits.max_agents", 1),
        max_lateness_s=lateness,
        max_body_bytes=body,
        max_inflight_body_bytes=inflight,
        max_pending_events=ctx.integer(
            table.get("max_pending_events", d.max_pending_events), "limits.max_pending_events", 1
        ),
        max_request_events=ctx.integer(
            table.get("max_request_events", d.max_request_events), "limits.max_request_events", 1
        ),
        max_open_calls=ctx.integer(
            table.get("max_open_calls", d.max_open_calls), "limits.max_open_calls", 1
        ),
        max_future_events=ctx.integer(
            table.get("max_future_events", d.max_future_events), "limits.max_future_events", 1
        ),
        forget_after_s=forget_after,
        dead_letter_max_bytes=letter,
    )


def _store(ctx: _Ctx, table: Mapping[str, object]) -> StoreConfig:
    ctx.check_keys(
        table, ("url", "checkpoint_every", "lease_ttl", "partitions", "key_prefix"), "store"
    )
    d = StoreConfig()
    url = ctx.string(table.get("url", d.url), "store.url")
    path: str | None = None
    if url == "memory:":
        kind = "memory"
    elif url.startswith("file://"):
        kind = "file"
        path = url.removeprefix("file://")
        if not path.startswith("/"):
            raise ctx.error(
                "store.url",
                f"a file store needs an absolute path (file:///var/lib/...), got {url!r}",
            )
    elif url.startswith(("redis://", "rediss://", "unix://")):
        kind = "redis"
    else:
        raise ctx.error(
            "store.url",
            f'expected "memory:", "file:///path" or "redis://host:port/db", got {url!r}',
        )
    every = ctx.duration(
        table.get("checkpoint_every", d.checkpoint_every_s), "store.checkpoint_every"
    )
    if every < MIN_CHECKPOINT_EVERY_S:
        # A checkpoint of a large floor takes about a tenth of a second: more often, the
        # writer would do little else.
        raise ctx.error(
            "store.checkpoint_every",
            f"must be at least {MIN_CHECKPOINT_EVERY_S * 1000:g} ms, got {every * 1000:g} ms",
        )
    ttl = ctx.duration(table.get("lease_ttl", d.lease_ttl_s), "store.lease_ttl")
    if ttl < 1:
        raise ctx.error("store.lease_ttl", f"must be at least 1 s, got {ttl:g} s")
    raw = table.get("partitions", "all")
    partitions: str | tuple[tuple[str, ...], ...] | None
    if raw == "all":
        partitions = None
    elif raw == "site":
        partitions = "site"
    elif isinstance(raw, list) and all(
        isinstance(group, list) and group and all(isinstance(s, str) and s for s in group)
        for group in raw
    ):
        partitions = tuple(tuple(group) for group in raw)
        seen: set[str] = set()
        for group in partitions:
            for site in group:
                if site in seen:
                    raise ctx.error("store.partitions", f"site {site!r} is in two partitions")
                seen.add(site)
    else:
        raise ctx.error(
            "store.partitions",
            f'expected "all", "site" or a list of lists of site names, got {_kind(raw)}',
        )
    if partitions is not None and kind != "redis":
        raise ctx.error(
            "store.partitions", "partitions need a redis:// store (shared by processes)"
        )
    return StoreConfig(
        url=url,
        kind=kind,
        path=path,
        checkpoint_every_s=every,
        lease_ttl_s=ttl,
        partitions=partitions,
        key_prefix=ctx.string(table.get("key_prefix", d.key_prefix), "store.key_prefix"),
    )


_SHARED_SOURCE_KEYS: Final = (
    ("client_id", False),
    ("username", True),
    ("password", True),
    ("ca_file", False),
    ("path", False),
    ("site", False),
    ("secret", True),
    ("url", False),
)


def _sources(ctx: _Ctx, raw: object) -> tuple[SourceConfig, ...]:
    from callfloor.ingest.kinds import GENERIC_KEYS, KINDS  # the kit imports this module

    if not isinstance(raw, list):
        raise ctx.error("sources", f"expected an array of tables ([[sources]]), got {_kind(raw)}")
    out: list[SourceConfig] = []
    names: set[str] = set()
    for i, item in enumerate(raw):
        key = f"sources[{i}]"
        table = ctx.table(item, key)
        kind = ctx.choice(table.get("kind"), f"{key}.kind", tuple(KINDS))
        spec = KINDS[kind]
        ctx.check_keys(table, (*GENERIC_KEYS, *spec.keys), key)
        name = ctx.string(
            table.get("name", kind if kind not in names else f"{kind}-{i}"), f"{key}.name"
        )
        if name in names:
            raise ctx.error(f"{key}.name", f"two sources are named {name!r}")
        if name == HTTP_SOURCE:
            # Its counters, its /readyz entry and its readiness would be the built-in one's.
            raise ctx.error(f"{key}.name", f"{name!r} is the built-in HTTP ingest's name")
        names.add(name)
        # The keys several kinds share; a kind's parser reads its own (and may override).
        fields: dict[str, Any] = {}
        for field_name, secret in _SHARED_SOURCE_KEYS:
            if field_name in table:
                where, value = f"{key}.{field_name}", table[field_name]
                fields[field_name] = (
                    ctx.secret(value, where) if secret else ctx.string(value, where)
                )
        fields.update(spec.parse(ctx, table, key))
        out.append(SourceConfig(kind=kind, name=name, **fields))
    return tuple(out)


def _agent_rules(ctx: _Ctx, table: Mapping[str, object]) -> AgentRules:
    ctx.check_keys(
        table,
        (
            "not_ready_max",
            "not_ready_reason_max",
            "exempt_reasons",
            "daily_not_ready",
            "wrap_up_max",
            "missed_calls_max",
            "stale_after",
        ),
        "agents",
    )
    rules = AgentRules()
    reason_max: dict[str, float] = {}
    for reason, value in ctx.table(
        table.get("not_ready_reason_max", {}), "agents.not_ready_reason_max"
    ).items():
        reason_max[reason] = ctx.duration(value, f"agents.not_ready_reason_max.{reason}")
    exempt_raw = table.get("exempt_reasons", [])
    if not isinstance(exempt_raw, list):
        raise ctx.error("agents.exempt_reasons", f"expected an array, got {_kind(exempt_raw)}")
    exempt = frozenset(
        ctx.string(item, f"agents.exempt_reasons[{i}]") for i, item in enumerate(exempt_raw)
    )
    daily_raw = table.get("daily_not_ready", ["30m", "45m"])
    if not isinstance(daily_raw, list):
        raise ctx.error("agents.daily_not_ready", f"expected an array, got {_kind(daily_raw)}")
    daily = tuple(
        ctx.duration(item, f"agents.daily_not_ready[{i}]") for i, item in enumerate(daily_raw)
    )
    if list(daily) != sorted(daily) or len(set(daily)) != len(daily):
        raise ctx.error("agents.daily_not_ready", "limits must be listed in increasing order")
    return AgentRules(
        not_ready_max_s=ctx.duration(
            table.get("not_ready_max", rules.not_ready_max_s), "agents.not_ready_max"
        ),
        not_ready_reason_max_s=reason_max,
        exempt_reasons=exempt,
        daily_not_ready_s=daily,
        wrap_up_max_s=ctx.duration(
            table.get("wrap_up_max", rules.wrap_up_max_s), "agents.wrap_up_max"
        ),
        missed_calls_max=ctx.integer(
            table.get("missed_calls_max", rules.missed_calls_max), "agents.missed_calls_max", 0
        ),
        stale_after_s=ctx.duration(
            table.get("stale_after", rules.stale_after_s), "agents.stale_after"
        ),
    )


_CLOCK = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_OFF: Final = ("off", "leave")
ROSTER_SEVERITIES: Final[tuple[str, ...]] = ("info", "warning", "minor", "major", "critical")


def _roster(ctx: _Ctx, table: Mapping[str, object]) -> RosterConfig:
    """``[roster]``: grace periods, a CSV ``file`` and/or inline ``[[roster.shifts]]``."""
    ctx.check_keys(table, ("grace_login", "grace_logout", "severity", "file", "shifts"), "roster")
    defaults = RosterConfig()
    grace_login = ctx.duration(table.get("grace_login", "5m"), "roster.grace_login")
    grace_logout = ctx.duration(table.get("grace_logout", "2m"), "roster.grace_logout")
    severity = ctx.choice(
        table.get("severity", defaults.severity), "roster.severity", ROSTER_SEVERITIES
    )
    shifts: list[Shift] = []
    if "file" in table:
        path = ctx.string(table["file"], "roster.file")
        shifts += _roster_file(ctx, path)
    raw = table.get("shifts", [])
    if not isinstance(raw, list):
        raise ctx.error("roster.shifts", f"expected an array of tables, got {_kind(raw)}")
    for i, item in enumerate(raw):
        key = f"roster.shifts[{i}]"
        row = ctx.table(item, key)
        ctx.check_keys(row, ("agent", "date", "weekday", "start", "end"), key)
        if ("date" in row) == ("weekday" in row):
            raise ctx.error(key, "give exactly one of date (YYYY-MM-DD) and weekday (mon..sun)")
        day_key = "date" if "date" in row else "weekday"
        fields = [
            ctx.string(row.get("agent"), f"{key}.agent"),
            ctx.string(row.get(day_key), f"{key}.{day_key}"),
            ctx.string(row.get("start"), f"{key}.start"),
            "" if "end" not in row else ctx.string(row["end"], f"{key}.end"),
        ]
        try:
            shifts.append(parse_shift(fields))
        except ValueError as exc:
            raise ctx.error(key, str(exc)) from None
    return RosterConfig(
        grace_login_s=grace_login,
        grace_logout_s=grace_logout,
        severity=severity,
        shifts=tuple(shifts),
    )


def _roster_file(ctx: _Ctx, path: str) -> list[Shift]:
    """Shifts from a CSV file (agent, date or weekday, start HH:MM, end HH:MM); a
    relative path is relative to the configuration file. A header row whose first
    field is ``agent`` and lines starting with ``#`` are skipped."""
    import csv

    resolved = Path(path)
    if not resolved.is_absolute() and Path(ctx.source).is_file():
        resolved = Path(ctx.source).parent / resolved
    try:
        with open(resolved, encoding="utf-8", newline="") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise ctx.error("roster.file", f"cannot read {path!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ctx.error("roster.file", f"{path!r} is not UTF-8 text") from None
    shifts: list[Shift] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in next(csv.reader([line]))]
        if n == 1 and fields and fields[0].lower() == "agent":
            continue  # a header
        try:
            shifts.append(parse_shift(fields))
        except ValueError as exc:
            raise ConfigError(f"{resolved}: line {n}: {exc}") from None
    return shifts


def parse_shift(fields: list[str]) -> Shift:
    """One roster row from its fields; ``ValueError`` names what is wrong."""
    if len(fields) not in (3, 4):
        raise ValueError(
            f"expected 4 fields (agent, date or weekday, start HH:MM, end HH:MM), got {len(fields)}"
        )
    agent, day, start = fields[0], fields[1].lower(), fields[2].lower()
    end = fields[3].lower() if len(fields) == 4 else ""
    if not agent:
        raise ValueError("the agent is empty")
    date: str | None = None
    weekday: int | None = None
    if day in WEEKDAYS:
        weekday = WEEKDAYS.index(day)
    elif _DATE.fullmatch(day):
        from datetime import date as _date

        try:
            _date.fromisoformat(day)
        except ValueError:
            raise ValueError(f"{fields[1]!r} is not a real date") from None
        date = day
    else:
        raise ValueError(f"expected a date (YYYY-MM-DD) or a weekday (mon..sun), got {fields[1]!r}")
    if start in _OFF:
        if date is None:
            raise ValueError("only a dated row can be off (leave)")
        if end not in ("", *_OFF):
            raise ValueError(f"an off row has no end time, got {fields[3]!r}")
        return Shift(agent, date, None, 0, 0, off=True)
    start_min = _clock_min(start, "shift start")
    end_min = _clock_min(end, "shift end")
    return Shift(agent, date, weekday, start_min, end_min)


def _clock_min(text: str, what: str) -> int:
    match = _CLOCK.fullmatch(text)
    if match is None:
        raise ValueError(f"{what}: expected HH:MM (00:00 to 23:59), got {text!r}")
    return int(match.group(1)) * 60 + int(match.group(2))


def load_config(path: str | Path | None) -> Config:
    """Read and validate a TOML file; ``None`` gives the embedded defaults."""
    if path is None:
        return Config()
    source = str(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{source}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{source}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start}); TOML files are UTF-8"
        ) from None
    return parse_config(data, source)
