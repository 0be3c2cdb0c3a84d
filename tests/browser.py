"""Helpers for real-browser tests: the system's Chromium driven by Playwright.

Chromium is Debian's ``/usr/bin/chromium`` (``scripts/ensure-system-deps`` installs it);
Playwright's own browser download is never used. A test that needs Chromium fails when
it is missing: it never skips.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, async_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """The system Chromium; an AssertionError (a failure, not a skip) when it is missing."""
    found = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    assert found, "chromium is not installed: run scripts/ensure-system-deps (Debian: chromium)"
    return found


@asynccontextmanager
async def browser(
    *,
    width: int = 1920,
    height: int = 1080,
    locale: str = "en-US",
    extra_args: Sequence[str] = (),
) -> AsyncIterator[BrowserContext]:
    """A fresh Chromium profile (its own --user-data-dir) with one viewport size."""
    profile = tempfile.mkdtemp(prefix="callfloor-chromium-")
    try:
        async with async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                profile,
                executable_path=chromium_path(),
                headless=True,
                args=[*ARGS, *extra_args],
                viewport={"width": width, "height": height},
                locale=locale,
            )
            try:
                yield context
            finally:
                await context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def post_events(base: str, events: list[dict[str, Any]], token: str | None = None) -> int:
    """POST events as NDJSON; the status."""
    body = "".join(json.dumps(e) + "\n" for e in events).encode()
    headers = {"Content-Type": "application/x-ndjson"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"{base}/api/v1/events", data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as answer:
        return int(answer.status)


def now() -> float:
    """The wall clock, as a producer stamps events."""
    return round(time.time(), 3)
