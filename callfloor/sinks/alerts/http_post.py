"""One HTTP POST of a delivery, and what its answer means for the outbox.

2xx is delivered. 408, 425, 429 and 5xx, a refused or broken connection are worth
another try (``Retry-After`` honoured); any other answer (a 3xx is not followed, a
4xx) means the receiver will not take this notification: the outbox drops it.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Final

import aiohttp

from callfloor.sinks.alerts.base import DeliveryError

__all__ = ["RETRYABLE_STATUS", "new_session", "post", "retry_after"]

RETRYABLE_STATUS: Final[frozenset[int]] = frozenset({408, 425, 429})
ANSWER_BYTES: Final = 64 * 1024  # of an answer body read at most (errors quote its start)


def new_session(headers: Mapping[str, str] | None = None) -> aiohttp.ClientSession:
    """A session of one sink's own (its connections are nobody else's to wait for).

    No timeout of its own: the outbox bounds each attempt with the sink's ``timeout``.
    """
    return aiohttp.ClientSession(
        headers=dict(headers or {}),
        timeout=aiohttp.ClientTimeout(total=None),
        raise_for_status=False,
    )


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date), or None."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    shown: str,
) -> bytes:
    """POST ``body``; the answer body (its first 64 KiB) on 2xx, else :class:`DeliveryError`.

    ``shown`` names the receiver in errors (never the URL itself: it may hold a secret).
    """
    try:
        async with session.post(url, data=body, headers=dict(headers), allow_redirects=False) as r:
            answer = await r.content.read(ANSWER_BYTES)
            if 200 <= r.status < 300:
                return answer
            text = answer[:200].decode("utf-8", "replace")
            message = f"{shown} answered {r.status} {r.reason or ''}: {text}".rstrip(": ")
            retryable = r.status >= 500 or r.status in RETRYABLE_STATUS
            raise DeliveryError(
                message,
                retryable=retryable,
                retry_after_s=retry_after(r.headers.get("Retry-After")) if retryable else None,
            )
    except aiohttp.ClientError as exc:
        raise DeliveryError(f"{shown}: {type(exc).__name__}: {exc}", retryable=True) from None
    except OSError as exc:
        raise DeliveryError(f"{shown}: {type(exc).__name__}: {exc}", retryable=True) from None
