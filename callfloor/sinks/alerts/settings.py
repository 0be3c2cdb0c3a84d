"""Parsing helpers shared by the sink kinds: the common keys, URLs, headers.

Errors are :class:`~callfloor.config.ConfigError` naming the file, the key
(``alerts.sinks.<name>.<key>``) and the problem, as everywhere in the configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callfloor.config import _Ctx as Ctx
from callfloor.sinks.alerts.base import DEFAULTS
from callfloor.sinks.alerts.templates import LANGUAGES

__all__ = [
    "COMMON_KEYS",
    "Ctx",
    "common_settings",
    "headers",
    "http_url",
    "redact_url",
    "timezone",
]

COMMON_KEYS: Final[tuple[str, ...]] = (
    "kind",
    "language",
    "timeout",
    "max_queue",
    "retry_max",
    "backoff",
    "backoff_max",
    "deadline",
)
"""Keys every sink table may have (the outbox's policy)."""

# Headers callfloor sets itself on HTTP deliveries.
_OWN_HEADERS: Final[frozenset[str]] = frozenset(
    {"content-length", "x-callfloor-signature", "idempotency-key", "x-callfloor-key"}
)


def common_settings(ctx: Ctx, table: Mapping[str, object], key: str) -> dict[str, Any]:
    """The common keys as :class:`~callfloor.sinks.alerts.base.SinkConfig` arguments."""
    d = DEFAULTS
    out: dict[str, Any] = {
        "language": ctx.choice(table.get("language", d.language), f"{key}.language", LANGUAGES),
        "timeout_s": ctx.duration(table.get("timeout", d.timeout_s), f"{key}.timeout"),
        "max_queue": ctx.integer(table.get("max_queue", d.max_queue), f"{key}.max_queue", 1),
        "retry_max": ctx.integer(table.get("retry_max", d.retry_max), f"{key}.retry_max", 0),
        "backoff_s": ctx.duration(table.get("backoff", d.backoff_s), f"{key}.backoff"),
        "backoff_max_s": ctx.duration(
            table.get("backoff_max", d.backoff_max_s), f"{key}.backoff_max"
        ),
        "deadline_s": ctx.duration(table.get("deadline", d.deadline_s), f"{key}.deadline"),
    }
    if out["timeout_s"] <= 0:
        raise ctx.error(f"{key}.timeout", "must be longer than 0")
    if out["backoff_s"] <= 0:
        raise ctx.error(f"{key}.backoff", "must be longer than 0")
    if out["backoff_max_s"] < out["backoff_s"]:
        raise ctx.error(
            f"{key}.backoff_max",
            f"{out['backoff_max_s']:g} s is below backoff ({out['backoff_s']:g} s)",
        )
    if out["deadline_s"] <= 0:
        raise ctx.error(f"{key}.deadline", "must be longer than 0")
    return out


def redact_url(url: str) -> str:
    """``scheme://host:port`` of a URL: webhook paths and queries are often secrets."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def http_url(ctx: Ctx, value: object, key: str) -> str:
    """An ``http://`` or ``https://`` URL with a host (``"env:NAME"`` allowed: webhook
    URLs are often secrets themselves)."""
    url = ctx.secret(value, key)
    shown = url if url == value else f"the value of {value}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ctx.error(key, f"expected an http:// or https:// URL, got {shown!r}")
    if not parts.hostname:
        raise ctx.error(key, f"the URL has no host: {shown!r}")
    if parts.fragment:
        raise ctx.error(key, f"the URL has a #fragment: {shown!r}")
    if any(c.isspace() for c in url):
        raise ctx.error(key, f"the URL contains white space: {shown!r}")
    try:
        parts.port  # noqa: B018 (it raises on a bad port)
    except ValueError as exc:
        raise ctx.error(key, f"bad port in {shown!r}: {exc}") from None
    return url


def headers(ctx: Ctx, value: object, key: str) -> dict[str, str]:
    """Extra HTTP headers: a table of names to strings (``"env:NAME"`` allowed)."""
    out: dict[str, str] = {}
    for name, raw in ctx.table(value, key).items():
        if not name or any(c.isspace() or c in '()<>@,;:\\"/[]?={}' for c in name):
            raise ctx.error(f"{key}.{name}", "not a valid HTTP header name")
        if name.lower() in _OWN_HEADERS:
            raise ctx.error(f"{key}.{name}", "callfloor sets this header itself")
        text = ctx.secret(raw, f"{key}.{name}")
        if "\n" in text or "\r" in text:
            raise ctx.error(f"{key}.{name}", "a header value cannot contain a line break")
        out[name] = text
    return out


def timezone(ctx: Ctx, value: object, key: str) -> str:
    """An IANA time zone name (``"Asia/Shanghai"``)."""
    name = ctx.string(value, key)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ctx.error(key, f"unknown time zone {name!r}") from None
    return name
