"""Feeding a live service with simulated events: batches over HTTP or MQTT.

``callfloor simulate --post URL`` POSTs NDJSON batches to ``/api/v1/events`` (with a
bearer token); ``--mqtt URL`` publishes them at QoS 1 on ``callfloor/<site>/events``.
With ``--realtime`` a batch goes out as soon as its events are due, so the service
sees the floor live; without it, as fast as the service takes them (a backfill).

Delivery is at least once, as the service expects of any client: a batch the service
did not acknowledge (503 while its store is down, a lost connection) is sent again
whole, and the service recognises it as a resend.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Final, Protocol

import msgspec

BATCH_MAX: Final = 1000
"""Events per POST or MQTT message at most (the service's body limit is far above)."""

RETRY_STATUSES: Final = frozenset({429, 502, 503, 504})
RETRY_MAX_S: Final = 30.0
"""A batch is retried until acknowledged, waiting at most this long between tries."""


class FeedError(RuntimeError):
    """The service refused a batch for good (a wrong token, a wrong URL): what it said."""


class Feed(Protocol):
    """Where batches of events go."""

    def send(self, batch: list[dict[str, object]]) -> None:
        """Deliver one batch (blocking until it is acknowledged)."""

    def close(self) -> None:
        """Release the connection."""

    def summary(self) -> str:
        """What was sent and taken, for the closing line on stderr."""


def paced(
    events: Iterator[dict[str, object]],
    *,
    start: float,
    realtime: bool,
    speed: float = 1.0,
    shift: float = 0.0,
    batch_max: int = BATCH_MAX,
) -> Iterator[list[dict[str, object]]]:
    """The events in batches of at most ``batch_max``.

    In real time an event is due when the wall clock reaches its (scaled) offset from
    ``start``: what is due goes out before each sleep. ``shift`` moves every ``ts``
    (a ``--start`` in the past played from now).
    """
    wall_start = time.monotonic()
    pending: list[dict[str, object]] = []
    for event in events:
        if realtime:
            ts = event["ts"]
            assert isinstance(ts, float | int)
            delay = wall_start + (ts - start) / speed - time.monotonic()
            if delay > 0:
                if pending:
                    yield pending
                    pending = []
                time.sleep(delay)
            if shift:
                # A new dict: the generator may still re-send this one as a duplicate.
                event = {**event, "ts": round(ts + shift, 3)}
        pending.append(event)
        if len(pending) >= batch_max:
            yield pending
            pending = []
    if pending:
        yield pending


def _site(event: dict[str, object]) -> str:
    site = event.get("site")
    return site if isinstance(site, str) and site else "default"


class HttpFeed:
    """POSTs each batch as NDJSON; retries what the service did not acknowledge."""

    def __init__(self, url: str, token: str | None, *, timeout_s: float = 30.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.headers = {"Content-Type": "application/x-ndjson"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self._encode = msgspec.json.Encoder().encode_lines
        self.sent = 0
        self.accepted = 0
        self.retries = 0
        self.rejected: Counter[str] = Counter()
        self.first_rejection: dict[str, str] = {}

    def send(self, batch: list[dict[str, object]]) -> None:
        """POST ``batch`` until the service acknowledges it (202, or 400 with every event
        rejected); :class:`FeedError` when it refuses it for good."""
        body = self._encode(batch)
        wait = 0.5
        while True:
            status, text, retry_after = self._post(body)
            if status in (200, 202) or (status == 400 and '"rejected"' in text):
                self._tally(len(batch), text)
                return
            if status is not None and status not in RETRY_STATUSES:
                raise FeedError(f"POST {self.url}: {status}: {text.strip()[:500]}")
            self.retries += 1
            time.sleep(retry_after if retry_after is not None else wait)
            wait = min(wait * 2, RETRY_MAX_S)

    def _post(self, body: bytes) -> tuple[int | None, str, float | None]:
        req = urllib.request.Request(self.url, data=body, method="POST", headers=self.headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return int(resp.status), resp.read().decode("utf-8", "replace"), None
        except urllib.error.HTTPError as err:
            text = err.read().decode("utf-8", "replace")
            after = err.headers.get("Retry-After")
            try:
                retry_after = min(float(after), RETRY_MAX_S) if after else None
            except ValueError:
                retry_after = None
            return err.code, text, retry_after
        except (urllib.error.URLError, OSError):
            return None, "", None  # not reached, or the answer was lost: send it again

    def _tally(self, count: int, text: str) -> None:
        self.sent += count
        try:
            answer = json.loads(text)
        except ValueError:
            self.accepted += count
            return
        self.accepted += int(answer.get("accepted", 0))
        for item in answer.get("rejected", []):
            reason = str(item.get("reason", "?"))
            self.rejected[reason] += 1
            self.first_rejection.setdefault(reason, str(item.get("message", "")))
        listed = sum(1 for _ in answer.get("rejected", []))
        extra = int(answer.get("rejected_total", listed)) - listed
        if extra > 0:
            self.rejected["(not listed)"] += extra

    def close(self) -> None:
        """Nothing to release: one request per batch."""

    def summary(self) -> str:
        """Events sent, accepted and rejected by reason, with each reason's first message."""
        lines = [
            f"{self.sent} events posted to {self.url}: {self.accepted} accepted, "
            f"{sum(self.rejected.values())} rejected, {self.retries} batches sent again"
        ]
        for reason, n in sorted(self.rejected.items()):
            lines.append(f"  {reason}: {n} (first: {self.first_rejection.get(reason, '')})")
        return "\n".join(lines)


class MqttFeed:
    """Publishes each batch at QoS 1, one NDJSON message per site on ``<prefix>/<site>/events``,
    waiting for the broker's PUBACK."""

    def __init__(
        self, url: str, *, client_id: str, prefix: str = "callfloor", timeout_s: float = 30.0
    ) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise FeedError(f"--mqtt {url}: expected mqtt://HOST[:PORT] or mqtts://")
        self.url = url
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        if parts.username:
            self.client.username_pw_set(
                urllib.parse.unquote(parts.username),
                urllib.parse.unquote(parts.password) if parts.password else None,
            )
        if parts.scheme == "mqtts":
            self.client.tls_set()
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        try:
            self.client.connect(parts.hostname, port)
        except OSError as exc:
            raise FeedError(f"--mqtt {url}: cannot connect: {exc}") from None
        self.client.loop_start()
        self._encode = msgspec.json.Encoder().encode_lines
        self.sent = 0
        self.messages = 0

    def send(self, batch: list[dict[str, object]]) -> None:
        """Publish ``batch`` by site; return once the broker has every message."""
        by_site: dict[str, list[dict[str, object]]] = {}
        for event in batch:
            by_site.setdefault(_site(event), []).append(event)
        infos = [
            self.client.publish(f"{self.prefix}/{site}/events", self._encode(events), qos=1)
            for site, events in sorted(by_site.items())
        ]
        for info in infos:
            info.wait_for_publish(timeout=self.timeout_s)
            if not info.is_published():
                raise FeedError(f"--mqtt {self.url}: the broker did not acknowledge in time")
        self.sent += len(batch)
        self.messages += len(infos)

    def close(self) -> None:
        """Disconnect from the broker."""
        self.client.disconnect()
        self.client.loop_stop()

    def summary(self) -> str:
        """Events and messages published."""
        return f"{self.sent} events published to {self.url} in {self.messages} messages"
