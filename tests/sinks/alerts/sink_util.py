"""What the alert sink tests share: notifications, a recording sink, real HTTP receivers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import web

from callfloor.alerts.notification import Notification, Transition, idempotency_key
from callfloor.sinks.alerts.base import AlertSink, DeliveryError, SinkConfig

FIRED = 1_795_300_000.0  # 2026-11-21 22:26:40 UTC


def notification(
    transition: Transition = Transition.FIRING,
    *,
    fingerprint: str = "fp-sales-sl",
    rule: str = "sl_low",
    scope_kind: str = "queue",
    scope: str = "sales",
    site: str = "sh",
    severity: str = "warning",
    fired_at: float = FIRED,
    value: float | None = 0.72,
    emitted_at: float | None = None,
    repeat: int = 0,
    **fields: Any,
) -> Notification:
    """A notification about one alert (``emitted_at`` now unless given)."""
    ended = transition in (Transition.RESOLVED, Transition.WITHDRAWN)
    defaults: dict[str, Any] = {
        "key": idempotency_key(fingerprint, transition, fired_at, repeat),
        "fingerprint": fingerprint,
        "rule": rule,
        "scope_kind": scope_kind,
        "scope": scope,
        "site": site,
        "severity": severity,
        "transition": transition,
        "state": "resolved" if ended else "firing",
        "since": fired_at - 120.0,
        "fired_at": fired_at,
        "ended_at": fired_at + 600.0 if ended else None,
        "value": value,
        "summary": f"Service level {value} on {scope}",
        "description": "The 15-minute service level is below its target.",
        "labels": {"team": "blue"},
        "emitted_at": time.time() if emitted_at is None else emitted_at,
    }
    defaults.update(fields)
    return Notification(**defaults)


def ended(
    n: Notification, transition: Transition = Transition.RESOLVED, **fields: Any
) -> Notification:
    """The notification that ends the alert ``n`` is about."""
    return msgspec.structs.replace(
        n,
        key=idempotency_key(n.fingerprint, transition, n.fired_at),
        transition=transition,
        state="resolved",
        ended_at=fields.pop("ended_at", time.time()),
        emitted_at=time.time(),
        **fields,
    )


def config(name: str = "test", **policy: Any) -> SinkConfig:
    """A sink configuration with fast retries unless told otherwise."""
    policy.setdefault("backoff_s", 0.01)
    policy.setdefault("backoff_max_s", 0.05)
    return SinkConfig(name=name, kind="test", **policy)


class RecordingSink(AlertSink):
    """A sink that keeps what it was given; ``failures`` are raised first, in order."""

    def __init__(self, cfg: SinkConfig, failures: list[BaseException] | None = None) -> None:
        super().__init__(cfg)
        self.delivered: list[Notification] = []
        self.attempts: list[tuple[float, str]] = []  # (monotonic, key)
        self.failures = list(failures or [])
        self.gate: asyncio.Event | None = None  # set: deliveries wait for it
        self.started = self.closed = False

    async def start(self) -> None:
        self.started = True

    async def deliver(self, notification: Notification) -> None:
        self.attempts.append((time.monotonic(), notification.key))
        if self.gate is not None:
            await self.gate.wait()
        if self.failures:
            raise self.failures.pop(0)
        self.delivered.append(notification)

    async def close(self) -> None:
        self.closed = True


def retryable(message: str = "busy", retry_after_s: float | None = None) -> DeliveryError:
    """A failure worth another try."""
    return DeliveryError(message, retryable=True, retry_after_s=retry_after_s)


@dataclass
class Received:
    """One request a receiver got."""

    at: float  # time.monotonic()
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body decoded."""
        return msgspec.json.decode(self.body)


@dataclass
class Receiver:
    """A real HTTP server on loopback that records requests and answers as told."""

    url: str
    requests: list[Received] = field(default_factory=list)
    # (request) -> response; the default answers 200 "ok".
    answer: Callable[[web.Request], Any] | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


@asynccontextmanager
async def receiver(
    answer: Callable[[web.Request], Any] | None = None, path: str = "/hook"
) -> AsyncIterator[Receiver]:
    """An aiohttp server on a free loopback port; ``answer`` may be async and may hang."""
    found = Receiver(url="")
    found.answer = answer

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        found.requests.append(
            Received(
                time.monotonic(), request.path, dict(request.query), dict(request.headers), body
            )
        )
        found.arrived.set()
        if found.answer is None:
            return web.Response(text="ok")
        result = found.answer(request)
        if asyncio.iscoroutine(result):
            result = await result
        assert isinstance(result, web.StreamResponse)
        return result

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    found.url = f"http://127.0.0.1:{port}{path}"
    try:
        yield found
    finally:
        await runner.cleanup()


async def hang(request: web.Request) -> web.Response:
    """An answer that never comes (until the server is stopped)."""
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def status(code: int, text: str = "", headers: dict[str, str] | None = None) -> Callable[..., Any]:
    """Always answer ``code``."""

    def answer(request: web.Request) -> web.Response:
        return web.Response(status=code, text=text, headers=headers)

    return answer
