"""The notification module is pure: the engine (pure core side) may import it freely."""

from __future__ import annotations

import subprocess
import sys


def test_the_notification_imports_no_io() -> None:
    """callfloor.alerts.notification loads no asyncio, HTTP, MQTT, Redis or sink module."""
    forbidden = ("asyncio", "aiohttp", "aiomqtt", "redis", "callfloor.sinks", "callfloor.service")
    code = (
        "import sys, callfloor.alerts.notification\n"
        f"print(','.join(m for m in {forbidden!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
