"""Screenshots of the wallboard and the supervisor view from a running demo, for the README.

Run with ``.venv/bin/python scripts/screenshots.py`` (needs the dev extra's Playwright
and Debian's Chromium). Starts ``callfloor demo`` on a free port, waits for its floor,
and saves ``docs/wallboard.png`` (1920x1080) and ``docs/supervisor.png`` (1600x1000).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    port = _free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "callfloor", "demo", "--port", str(port), "--queues", "16",
         "--agents", "240"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        with sync_playwright() as pw:
            for path, out, width, height in (
                ("/wallboard", "wallboard.png", 1920, 1080),
                ("/supervisor", "supervisor.png", 1600, 1000),
            ):
                context = pw.chromium.launch_persistent_context(
                    tempfile.mkdtemp(),
                    executable_path="/usr/bin/chromium",
                    headless=True,
                    args=ARGS,
                    viewport={"width": width, "height": height},
                    locale="en-US",
                )
                page = context.new_page()
                page.goto(base + path)
                page.wait_for_timeout(4000)
                page.screenshot(path=str(ROOT / "docs" / out))
                context.close()
                print(f"saved docs/{out}")
    finally:
        demo.terminate()
        demo.wait(10)


if __name__ == "__main__":
    main()
