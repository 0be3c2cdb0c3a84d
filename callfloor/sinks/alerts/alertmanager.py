"""Prometheus Alertmanager sink: alerts posted to its v2 API, kept alive while firing.

Each notification becomes one alert in ``POST <url>/api/v2/alerts``:

- labels: ``alertname`` = the rule, ``severity``, ``site``, and ``queue`` or ``agent``
  (the scope, for rules on queues or agents), over the rule's extra labels (a label name
  Prometheus would refuse has its other characters replaced by ``_``);
- annotations: ``summary`` (in the sink's language), ``description``, and ``value``;
- ``startsAt`` = the alert's ``fired_at``; ``generatorURL`` when configured.

Alertmanager resolves an alert by itself once its ``endsAt`` has passed, so a firing
alert is posted with ``endsAt`` = now + 3 x ``refresh`` and posted again every
``refresh`` (one request for every alert this sink keeps alive) while it fires: an
Alertmanager that restarted gets it back within one period, and one callfloor that died
lets its alerts end on their own. A resolve (or a withdrawal) posts ``endsAt`` = the
moment the alert ended. An escalation changes the ``severity`` label, which makes it
another alert for Alertmanager: the one posted before is ended in the same request.

Posts are one at a time (a lock), so a refresh never lands after the resolve of an alert
it carried. Alerts firing at a restart are handed back through :meth:`resume`.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
from collections.abc import Callable, Collection, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp
import msgspec

from callfloor import __version__
from callfloor.alerts.notification import Notification, Transition
from callfloor.sinks.alerts.base import AlertSink, DeliveryError, SinkConfig
from callfloor.sinks.alerts.http_post import new_session, post
from callfloor.sinks.alerts.settings import Ctx, headers, http_url, redact_url
from callfloor.sinks.alerts.templates import format_value, summary_text

__all__ = ["KEYS", "AlertmanagerConfig", "AlertmanagerSink", "alert_labels", "parse"]

log = logging.getLogger("callfloor.alerts")

KEYS: Final[tuple[str, ...]] = (
    "url",
    "headers",
    "username",
    "password",
    "refresh",
    "generator_url",
)
ENDS_AFTER_REFRESHES: Final = 3  # endsAt = now + this x refresh while firing
BATCH: Final = 500  # alerts in one refresh request at most
API_PATH: Final = "/api/v2/alerts"
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ENDED: Final = (Transition.RESOLVED, Transition.WITHDRAWN)


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertmanagerConfig(SinkConfig):
    """``kind = "alertmanager"`` (or ``[alerts] alertmanager_url``)."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    username: str | None = None
    password: str | None = None
    refresh_s: float = 60.0
    generator_url: str | None = None


def parse(ctx: Ctx, table: Mapping[str, object], key: str, common: dict[str, Any]) -> SinkConfig:
    """A ``kind = "alertmanager"`` table."""
    if "url" not in table:
        raise ctx.error(f"{key}.url", "an alertmanager sink needs its URL (http://host:9093)")
    refresh = ctx.duration(table.get("refresh", 60.0), f"{key}.refresh")
    if refresh < 1:
        raise ctx.error(f"{key}.refresh", f"must be at least 1 s, got {refresh:g} s")
    username = ctx.secret(table["username"], f"{key}.username") if "username" in table else None
    password = ctx.secret(table["password"], f"{key}.password") if "password" in table else None
    if (username is None) != (password is None):
        missing = "password" if password is None else "username"
        raise ctx.error(f"{key}.{missing}", "basic auth needs both username and password")
    return AlertmanagerConfig(
        **common,
        url=http_url(ctx, table["url"], f"{key}.url"),
        headers=headers(ctx, table.get("headers", {}), f"{key}.headers"),
        username=username,
        password=password,
        refresh_s=refresh,
        generator_url=(
            http_url(ctx, table["generator_url"], f"{key}.generator_url")
            if "generator_url" in table
            else None
        ),
    )


def api_url(url: str) -> str:
    """The alerts endpoint of an Alertmanager base URL (or of the endpoint itself)."""
    base = url.rstrip("/")
    return base if base.endswith(API_PATH) else base + API_PATH


def rfc3339(ts: float) -> str:
    """An instant as Alertmanager reads it (UTC, milliseconds)."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _label_name(name: str) -> str:
    if _LABEL_NAME.fullmatch(name):
        return name
    cleaned = re.sub(r"[^a-zA-Z0-9_]", "_", name)
    return cleaned if cleaned[:1].isalpha() or cleaned[:1] == "_" else f"_{cleaned}"


def alert_labels(n: Notification) -> dict[str, str]:
    """The label set of ``n``'s alert: its identity in Alertmanager."""
    labels = {_label_name(k): v for k, v in n.labels.items()}
    labels.update(alertname=n.rule, severity=n.severity, site=n.site)
    if n.scope_kind in ("queue", "agent"):
        labels[n.scope_kind] = n.scope
    return labels


class AlertmanagerSink(AlertSink):
    """Posts alerts to one Alertmanager and keeps them alive (see the module docstring)."""

    def __init__(self, config: AlertmanagerConfig, *, clock: Callable[[], float] = time.time):
        super().__init__(config)
        self.am = config
        self._clock = clock
        self._url = api_url(config.url)
        self._shown = f"alertmanager {config.name} ({redact_url(config.url)})"
        self._session: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()
        # Alerts kept alive, by fingerprint: the alert as last posted (without endsAt),
        # and the site (forget() drops a partition's).
        self.active: dict[str, tuple[str, dict[str, Any]]] = {}
        # Alerts whose end is being posted (retries end the alert that was posted).
        self._ending: dict[str, dict[str, Any]] = {}

    def _alert(self, n: Notification) -> dict[str, Any]:
        annotations = {
            "summary": summary_text(n, self.am.language),
            "description": n.description,
        }
        if n.value is not None:
            annotations["value"] = format_value(n.rule, n.value, self.am.language)
        alert: dict[str, Any] = {
            "labels": alert_labels(n),
            "annotations": annotations,
            "startsAt": rfc3339(n.fired_at),
        }
        if self.am.generator_url is not None:
            alert["generatorURL"] = self.am.generator_url
        return alert

    def _ends_firing(self) -> str:
        return rfc3339(self._clock() + ENDS_AFTER_REFRESHES * self.am.refresh_s)

    async def start(self) -> None:
        """Open the sink's HTTP session."""
        if self._session is None:
            auth = {}
            if self.am.username is not None and self.am.password is not None:
                token = base64.b64encode(f"{self.am.username}:{self.am.password}".encode())
                auth["Authorization"] = "Basic " + token.decode()
            self._session = new_session(
                {"User-Agent": f"callfloor/{__version__}", **auth, **self.am.headers}
            )

    async def deliver(self, notification: Notification) -> None:
        """Post the alert's new state (firing with a lease, or ended)."""
        await self.start()
        n = notification
        alert = self._alert(n)
        async with self._lock:
            if n.transition in _ENDED:
                # Out of the refreshed set before the post: a resolve that is finally
                # dropped leaves the alert to lapse at its endsAt, never kept alive.
                posted = self.active.pop(n.fingerprint, None)
                ending = self._ending.setdefault(
                    n.fingerprint, posted[1] if posted is not None else alert
                )
                ends = rfc3339(n.ended_at if n.ended_at is not None else self._clock())
                await self._post([{**ending, "endsAt": ends}])
                self._ending.pop(n.fingerprint, None)
                return
            self._ending.pop(n.fingerprint, None)
            posted = self.active.get(n.fingerprint)
            alerts = [{**alert, "endsAt": self._ends_firing()}]
            if posted is not None and posted[1]["labels"] != alert["labels"]:
                # Another label set is another alert: end the one posted before.
                alerts.append({**posted[1], "endsAt": rfc3339(self._clock())})
            self.active[n.fingerprint] = (n.site, alert)
            await self._post(alerts)

    async def _post(self, alerts: list[dict[str, Any]]) -> None:
        assert self._session is not None
        body = msgspec.json.encode(alerts)
        await post(
            self._session,
            self._url,
            body,
            {"Content-Type": "application/json"},
            shown=self._shown,
        )

    async def refresh(self) -> None:
        """Post every alert kept alive again with a new ``endsAt`` (one request per 500)."""
        await self.start()
        async with self._lock:
            if not self.active:
                return
            ends = self._ends_firing()
            alerts = [{**alert, "endsAt": ends} for _, alert in self.active.values()]
            for start in range(0, len(alerts), BATCH):
                async with asyncio.timeout(self.am.timeout_s):
                    await self._post(alerts[start : start + BATCH])

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.am.refresh_s)
            try:
                await self.refresh()
            except (DeliveryError, TimeoutError) as exc:
                self.refresh_errors += 1
                log.warning("alertmanager_refresh_failed sink=%s error=%r", self.name, str(exc))
            except Exception:  # never the end of the loop: the alerts would lapse
                self.refresh_errors += 1
                log.exception("alertmanager_refresh_failed sink=%s", self.name)

    def background(self) -> Coroutine[Any, Any, None]:
        """The refresh loop."""
        return self._refresh_loop()

    def resume(self, firing: Iterable[Notification]) -> None:
        """Keep these firing alerts alive (restored engine state); nothing is sent now."""
        for n in firing:
            if n.state == "firing" and n.transition not in _ENDED:
                self.active[n.fingerprint] = (n.site, self._alert(n))

    def forget(self, sites: Collection[str]) -> None:
        """Stop refreshing the alerts of these sites (their new owner does)."""
        for fingerprint, (site, _) in list(self.active.items()):
            if site in sites:
                del self.active[fingerprint]

    async def close(self) -> None:
        """Close the HTTP session (the alerts lapse at their endsAt unless refreshed)."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def create(config: SinkConfig) -> AlertSink:
    """The sink of a parsed ``kind = "alertmanager"`` table."""
    assert isinstance(config, AlertmanagerConfig)
    return AlertmanagerSink(config)
