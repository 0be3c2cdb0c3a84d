"""The webhook sink against a real aiohttp receiver: bodies, signatures, answers."""

# ruff: noqa: RUF001 (Chinese text uses full-width punctuation)

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import msgspec
import pytest
from aiohttp import web
from sink_util import hang, notification, receiver, status
from waiting import until

from callfloor.alerts.notification import Notification
from callfloor.sinks.alerts.base import DeliveryError
from callfloor.sinks.alerts.outbox import Outbox
from callfloor.sinks.alerts.registry import create_sinks, parse_sinks
from callfloor.sinks.alerts.webhook import WebhookSink, verify_signature


def webhook(url: str, **table: Any) -> WebhookSink:
    """A webhook sink as the configuration builds it."""
    [sink] = create_sinks(parse_sinks({"hook": {"kind": "webhook", "url": url, **table}}))
    assert isinstance(sink, WebhookSink)
    return sink


async def deliver(sink: WebhookSink, n: Notification) -> None:
    try:
        await sink.deliver(n)
    finally:
        await sink.close()


async def test_the_json_body_is_the_notification_signed() -> None:
    """The default body decodes to the notification; the signature verifies with the secret."""
    n = notification()
    async with receiver() as rx:
        await deliver(webhook(rx.url, secret="s3cret"), n)
    [got] = rx.requests
    assert msgspec.json.decode(got.body, type=Notification) == n
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["Idempotency-Key"] == n.key
    signature = got.headers["X-Callfloor-Signature"]
    assert signature.startswith("sha256=")
    assert verify_signature("s3cret", got.body, signature)
    assert not verify_signature("other", got.body, signature)
    assert not verify_signature("s3cret", got.body + b" ", signature)
    # What docs/alerts.md tells receivers to compute, without callfloor's helper:
    expected = hmac.new(b"s3cret", got.body, hashlib.sha256).hexdigest()
    assert signature == f"sha256={expected}"


async def test_no_secret_no_signature() -> None:
    """Without a secret the request carries no signature header."""
    async with receiver() as rx:
        await deliver(webhook(rx.url), notification())
    assert "X-Callfloor-Signature" not in rx.requests[0].headers


async def test_configured_headers_are_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    """headers (env: secrets resolved) go with every request."""
    monkeypatch.setenv("HOOK_TOKEN", "Bearer abc")
    async with receiver() as rx:
        await deliver(webhook(rx.url, headers={"Authorization": "env:HOOK_TOKEN"}), notification())
    assert rx.requests[0].headers["Authorization"] == "Bearer abc"


async def test_slack_body() -> None:
    """slack: text and one coloured attachment with the facts."""
    async with receiver() as rx:
        await deliver(webhook(rx.url, template="slack"), notification())
    body = rx.requests[0].json()
    assert body["text"] == "[FIRING] Service level 0.72 on sales"
    [attachment] = body["attachments"]
    assert attachment["color"] == "#F2A900"
    assert {"title": "Scope", "value": "queue sales", "short": True} in attachment["fields"]


async def test_teams_body() -> None:
    """teams: a message with one Adaptive Card."""
    async with receiver() as rx:
        await deliver(webhook(rx.url, template="teams"), notification())
    body = rx.requests[0].json()
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["body"][0]["text"] == body["summary"]


async def test_wecom_body_in_chinese() -> None:
    """wecom with language zh-CN: a markdown robot message with the Chinese summary."""
    async with receiver() as rx:
        sink = webhook(rx.url, template="wecom", language="zh-CN", timezone="Asia/Shanghai")
        await deliver(sink, notification())
    body = rx.requests[0].json()
    assert body["msgtype"] == "markdown"
    content = body["markdown"]["content"]
    assert "队列 sales（站点 sh）服务水平过低" in content
    assert "2026-11-22 06:26:40 CST" in content  # fired_at in Shanghai time


async def test_dingtalk_signs_the_url_the_dingtalk_way() -> None:
    """dingtalk with a secret: timestamp and sign query parameters DingTalk can verify."""
    async with receiver(answer=lambda r: web.json_response({"errcode": 0})) as rx:
        await deliver(
            webhook(rx.url + "?access_token=t", template="dingtalk", secret="SEC"), notification()
        )
    got = rx.requests[0]
    assert got.query["access_token"] == "t"
    timestamp = got.query["timestamp"]
    assert abs(int(timestamp) / 1000 - time.time()) < 60
    digest = hmac.new(b"SEC", f"{timestamp}\nSEC".encode(), hashlib.sha256).digest()
    assert got.query["sign"] == base64.b64encode(digest).decode()
    assert got.json()["msgtype"] == "markdown"


@pytest.mark.parametrize(
    ("template", "code", "retryable"),
    [
        ("dingtalk", 130101, True),
        ("dingtalk", 310000, False),
        ("wecom", 45009, True),
        ("wecom", 93000, False),
    ],
)
async def test_robot_error_codes_fail_the_delivery(
    template: str, code: int, retryable: bool
) -> None:
    """A robot's 200 with a non-zero errcode is a failure; rate limits are retryable."""
    answer = {"errcode": code, "errmsg": "no"}
    async with receiver(answer=lambda r: web.json_response(answer)) as rx:
        with pytest.raises(DeliveryError) as failed:
            await deliver(webhook(rx.url, template=template), notification())
    assert failed.value.retryable is retryable
    assert str(code) in str(failed.value)


@pytest.mark.parametrize(
    ("code", "retryable"),
    [(500, True), (503, True), (429, True), (408, True), (400, False), (404, False), (301, False)],
)
async def test_answers_say_whether_to_retry(code: int, retryable: bool) -> None:
    """5xx, 408 and 429 are retryable; other non-2xx answers are refusals."""
    async with receiver(
        answer=status(code, "nope", {"Location": "/x"} if code == 301 else None)
    ) as rx:
        with pytest.raises(DeliveryError) as failed:
            await deliver(webhook(rx.url), notification())
    assert failed.value.retryable is retryable
    assert str(code) in str(failed.value)
    assert "/hook" not in str(failed.value)  # the URL's path (often a secret) is never shown


async def test_retry_after_is_read() -> None:
    """A 503 with Retry-After carries the receiver's delay."""
    async with receiver(answer=status(503, headers={"Retry-After": "7"})) as rx:
        with pytest.raises(DeliveryError) as failed:
            await deliver(webhook(rx.url), notification())
    assert failed.value.retry_after_s == 7.0


async def test_a_refused_connection_is_retryable() -> None:
    """Nobody listening is worth another try."""
    async with receiver() as rx:
        url = rx.url
    with pytest.raises(DeliveryError) as failed:
        await deliver(webhook(url), notification())
    assert failed.value.retryable


async def test_a_receiver_answering_500_gets_the_notification_on_recovery() -> None:
    """Through the outbox: 500 twice, then 200: delivered once, two retries counted."""
    answers = iter([500, 500, 200])

    def answer(request: web.Request) -> web.Response:
        return web.Response(status=next(answers))

    async with receiver(answer=answer) as rx:
        sink = webhook(rx.url, backoff="10ms", backoff_max="50ms")
        outbox = Outbox([sink])
        await outbox.start()
        try:
            outbox.submit(notification())
            await until(lambda: outbox.stats.sent_total["hook"] == 1, what="delivered")
        finally:
            await outbox.close()
    assert len(rx.requests) == 3
    assert outbox.stats.retries_total["hook"] == 2
    assert len({r.headers["Idempotency-Key"] for r in rx.requests}) == 1  # one key: dedupable


async def test_a_hanging_receiver_times_out() -> None:
    """A receiver that never answers costs timeout_s per attempt, then counts as a retry."""
    async with receiver(answer=hang) as rx:
        sink = webhook(rx.url, timeout="200ms", retry_max=1, backoff="10ms", backoff_max="10ms")
        outbox = Outbox([sink])
        await outbox.start()
        try:
            outbox.submit(notification())
            await until(
                lambda: outbox.stats.dropped_total[("hook", "retries_exhausted")] == 1,
                what="dropped after its retry",
            )
        finally:
            await outbox.close()
    assert len(rx.requests) == 2
    assert outbox.stats.retries_total["hook"] == 1
