"""Generic webhook sink: a JSON POST per notification, signed when a secret is set.

The body is the sink's ``template`` (:mod:`~callfloor.sinks.alerts.templates`): the
notification as JSON, or a Slack, Microsoft Teams, DingTalk or WeCom message. Every
request carries ``Idempotency-Key`` (the notification's key) and, when ``secret`` is
set, ``X-Callfloor-Signature: sha256=<hex HMAC-SHA256 of the body with the secret>``;
:func:`verify_signature` is how a receiver checks it.

DingTalk robots with the "sign" security setting check their own signature instead: with
``template = "dingtalk"`` the secret also signs the URL the DingTalk way (``timestamp``
and ``sign`` query parameters: base64 HMAC-SHA256 of ``"<ms>\\n<secret>"``). DingTalk and
WeCom answer 200 with an ``errcode`` in the body: anything but 0 is a failure (their
rate limits, 130101 and 45009, are retried; the rest is refused for good).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote_plus

import aiohttp
import msgspec

from callfloor import __version__
from callfloor.alerts.notification import Notification
from callfloor.sinks.alerts.base import AlertSink, DeliveryError, SinkConfig
from callfloor.sinks.alerts.http_post import new_session, post
from callfloor.sinks.alerts.settings import Ctx, headers, http_url, redact_url, timezone
from callfloor.sinks.alerts.templates import TEMPLATES, Rendering, render_body

__all__ = ["KEYS", "WebhookConfig", "WebhookSink", "parse", "sign", "verify_signature"]

SIGNATURE_HEADER: Final = "X-Callfloor-Signature"
KEYS: Final[tuple[str, ...]] = ("url", "secret", "template", "headers", "timezone")

# Robot error codes that mean "too many messages now": worth another try later.
_ROBOT_RATE_LIMITS: Final[Mapping[str, frozenset[int]]] = {
    "dingtalk": frozenset({130101}),
    "wecom": frozenset({45009, -1}),  # -1: WeCom's "system busy"
}


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookConfig(SinkConfig):
    """``kind = "webhook"``."""

    url: str
    secret: str | None = None
    template: str = "json"
    headers: Mapping[str, str] = field(default_factory=dict)
    timezone: str = "UTC"  # times in chat messages


def parse(ctx: Ctx, table: Mapping[str, object], key: str, common: dict[str, Any]) -> SinkConfig:
    """A ``kind = "webhook"`` table."""
    if "url" not in table:
        raise ctx.error(f"{key}.url", "a webhook sink needs the receiver's URL")
    return WebhookConfig(
        **common,
        url=http_url(ctx, table["url"], f"{key}.url"),
        secret=ctx.secret(table["secret"], f"{key}.secret") if "secret" in table else None,
        template=ctx.choice(table.get("template", "json"), f"{key}.template", tuple(TEMPLATES)),
        headers=headers(ctx, table.get("headers", {}), f"{key}.headers"),
        timezone=timezone(ctx, table.get("timezone", "UTC"), f"{key}.timezone"),
    )


def sign(secret: str, body: bytes) -> str:
    """The ``X-Callfloor-Signature`` value of ``body``: ``sha256=<hex HMAC>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` (the received ``X-Callfloor-Signature``) signs ``body``."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


def dingtalk_signed_url(url: str, secret: str, now_ms: int) -> str:
    """``url`` with DingTalk's ``timestamp`` and ``sign`` parameters."""
    to_sign = f"{now_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), to_sign, hashlib.sha256).digest()
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}timestamp={now_ms}&sign={quote_plus(base64.b64encode(digest))}"


def _robot_errcode(template: str, answer: bytes, shown: str) -> None:
    """Raise when a DingTalk or WeCom robot's 200 answer carries an error code."""
    try:
        decoded = msgspec.json.decode(answer) if answer else {}
    except msgspec.DecodeError:
        return  # not the robot's JSON (a proxy's page): the 200 is all we know
    code = decoded.get("errcode", 0) if isinstance(decoded, dict) else 0
    if code in (0, None):
        return
    message = decoded.get("errmsg", "") if isinstance(decoded, dict) else ""
    raise DeliveryError(
        f"{shown} answered errcode {code}: {message}",
        retryable=code in _ROBOT_RATE_LIMITS[template],
    )


class WebhookSink(AlertSink):
    """POSTs each notification to one URL (see the module docstring)."""

    def __init__(self, config: WebhookConfig, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(config)
        self.webhook = config
        self._clock = clock
        self._rendering = Rendering(config.language, config.timezone)
        self._shown = f"webhook {config.name} ({redact_url(config.url)})"
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the sink's HTTP session."""
        if self._session is None:
            self._session = new_session(
                {"User-Agent": f"callfloor/{__version__}", **self.webhook.headers}
            )

    def body(self, notification: Notification) -> bytes:
        """The request body of ``notification`` (its template, in the sink's language)."""
        return render_body(self.webhook.template, notification, self._rendering)

    async def deliver(self, notification: Notification) -> None:
        """POST one notification; :class:`DeliveryError` unless the receiver took it."""
        await self.start()
        assert self._session is not None
        cfg = self.webhook
        body = self.body(notification)
        request_headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": notification.key,
        }
        url = cfg.url
        if cfg.secret is not None:
            request_headers[SIGNATURE_HEADER] = sign(cfg.secret, body)
            if cfg.template == "dingtalk":
                url = dingtalk_signed_url(url, cfg.secret, int(self._clock() * 1000))
        answer = await post(self._session, url, body, request_headers, shown=self._shown)
        if cfg.template in _ROBOT_RATE_LIMITS:
            _robot_errcode(cfg.template, answer, self._shown)

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def create(config: SinkConfig) -> AlertSink:
    """The sink of a parsed ``kind = "webhook"`` table."""
    assert isinstance(config, WebhookConfig)
    return WebhookSink(config)
