"""The wallboard and the supervisor view in a real browser (headless Chromium).

Each test runs ``callfloor serve`` as a subprocess with the real clock, posts events
stamped now, and drives the pages in Chromium. Nothing is mocked: the numbers a test
reads are the ones the page rendered from the service's pushes.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from browser import browser, now, post_events
from playwright.async_api import Page, expect
from serving import free_port, request

SITE = "sh"
QUEUES = ("sales", "support", "billing")
READ = "read-token-0123456789abcdef"
WRITE = "write-token-0123456789abcdef"


def _config(queues: tuple[str, ...] = QUEUES, extra: str = "") -> str:
    text = f'[sites.{SITE}]\ntimezone = "Asia/Shanghai"\ninterval_minutes = 30\n'
    for q in queues:
        text += f'\n[queues.{q}]\nsite = "{SITE}"\nchannel = "voice"\n'
    return text + extra


@contextmanager
def _serve(tmp_path: Path, config: str, port: int | None = None) -> Iterator[str]:
    """``callfloor serve`` on ``port`` (a free one by default); yields its base URL."""
    port = port or free_port()
    cfg = tmp_path / "callfloor.toml"
    cfg.write_text(config)
    proc = subprocess.Popen(
        [sys.executable, "-m", "callfloor", "serve", "--config", str(cfg), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if request(base + "/healthz", timeout=1)[0] == 200:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"serve did not start: {proc.communicate()[0].decode()}")
        time.sleep(0.05)
    try:
        yield base
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def _answered_calls(queue: str, t: float, n: int, wait_s: float = 5.0) -> list[dict[str, object]]:
    """``n`` calls of ``queue`` queued and answered within the service level before ``t``."""
    events: list[dict[str, object]] = []
    for i in range(n):
        start = t - 120 + i
        call = f"{queue}-c{i}"
        events.append({"type": "call_queued", "ts": start, "call_id": call, "queue": queue})
        events.append(
            {
                "type": "call_answered",
                "ts": start + wait_s,
                "call_id": call,
                "queue": queue,
                "agent": f"{queue}-a",
            }
        )
    return events


async def _open_board(page: Page, base: str, path: str = "/wallboard?site=sh") -> None:
    await page.goto(base + path)
    await expect(page.locator(".tile").first).to_be_visible(timeout=10_000)


async def test_the_wallboard_renders_every_queue_with_its_service_level(tmp_path: Path) -> None:
    """Every configured queue has a tile whose service level is the one its calls give."""
    with _serve(tmp_path, _config()) as base:
        t = now()
        post_events(base, _answered_calls("sales", t, 4) + _answered_calls("support", t, 2, 30))
        async with browser() as context:
            page = await context.new_page()
            await _open_board(page, base)
            await expect(page.locator(".tile")).to_have_count(len(QUEUES))
            names = await page.locator(".tile .tile-name").all_inner_texts()
            assert sorted(names) == sorted(QUEUES)
            sales = page.locator('.tile[data-queue="sales"] .sl')
            support = page.locator('.tile[data-queue="support"] .sl')
            await expect(sales).to_have_text("100%")
            await expect(support).to_have_text("0%")  # answered after 30 s: outside 20 s
            await expect(page.locator('.tile[data-queue="billing"] .sl')).to_have_text("\u2013")
            assert await support.get_attribute("data-level") == "warn"
            assert await sales.get_attribute("data-level") == "ok"


async def test_a_number_changes_within_2s_of_an_event_stamped_now(tmp_path: Path) -> None:
    """A call queued now shows as waiting on the open page within 2 s, without a reload
    (the service clock's 1 s hold included)."""
    with _serve(tmp_path, _config()) as base:
        async with browser() as context:
            page = await context.new_page()
            await _open_board(page, base)
            waiting = page.locator('.tile[data-queue="sales"] .waiting')
            await expect(waiting).to_have_text("0")
            await page.evaluate(
                "window.__loads = performance.getEntriesByType('navigation').length"
            )
            posted = time.monotonic()
            t = now()
            post_events(base, [{"type": "call_queued", "ts": t, "call_id": "x", "queue": "sales"}])
            await expect(waiting).to_have_text("1", timeout=2_000)
            assert time.monotonic() - posted <= 2.0
            # No reload: the same document is still loaded.
            assert await page.evaluate("performance.getEntriesByType('navigation').length") == 1


async def test_the_longest_wait_grows_while_nothing_arrives(tmp_path: Path) -> None:
    """A waiting caller's longest wait counts up every second with no event posted."""
    with _serve(tmp_path, _config()) as base:
        post_events(
            base, [{"type": "call_queued", "ts": now() - 5, "call_id": "w", "queue": "sales"}]
        )
        async with browser() as context:
            page = await context.new_page()
            await _open_board(page, base)
            longest = page.locator('.tile[data-queue="sales"] .longest')
            await expect(longest).not_to_have_text("0:00")
            first = _seconds(await longest.inner_text())
            await page.wait_for_timeout(3_000)
            second = _seconds(await longest.inner_text())
            assert second >= first + 2, (first, second)


def _seconds(mss: str) -> int:
    minutes, seconds = mss.split(":")
    return int(minutes) * 60 + int(seconds)


async def test_the_stale_banner_shows_while_the_server_is_down_and_clears_after(
    tmp_path: Path,
) -> None:
    """When the service stops the page says since when its data is stale; when it is back
    the page reconnects by itself and the banner goes."""
    port = free_port()
    config = _config()
    async with browser() as context:
        page = await context.new_page()
        stale = page.locator("#stale")
        with _serve(tmp_path, config, port) as base:
            await _open_board(page, base)
            await expect(stale).to_be_hidden()
        await expect(stale).to_be_visible(timeout=8_000)
        await expect(stale).to_contain_text("Data stale since")
        assert re.search(r"\d\d:\d\d:\d\d", await stale.inner_text())
        with _serve(tmp_path, config, port):
            await expect(stale).to_be_hidden(timeout=10_000)
            await expect(page.locator(".tile")).to_have_count(len(QUEUES))


async def test_lang_zh_cn_renders_chinese_labels(tmp_path: Path) -> None:
    """?lang=zh-CN, and a browser whose language is Chinese, show the labels in Chinese."""
    with _serve(tmp_path, _config()) as base:
        async with browser() as context:
            page = await context.new_page()
            await _open_board(page, base, "/wallboard?site=sh&lang=zh-CN")
            labels = await page.locator('.tile[data-queue="sales"] .side dt').all_inner_texts()
            assert labels[0] == "排队中"
            assert await page.evaluate("document.documentElement.lang") == "zh-CN"
        async with browser(locale="zh-CN") as context:
            page = await context.new_page()
            await _open_board(page, base)
            await expect(page.locator('.tile[data-queue="sales"] .side dt').first).to_have_text(
                "排队中"
            )


def _agents(t: float) -> list[dict[str, object]]:
    """Four agents of two teams: states, and answered calls to sort by."""
    out: list[dict[str, object]] = []
    for i, (agent, team, state, answered) in enumerate(
        [
            ("a1", "red", "available", 3),
            ("a2", "blue", "on_call", 1),
            ("a3", "red", "not_ready", 0),
            ("a4", "blue", "available", 2),
        ]
    ):
        out.append(
            {
                "type": "agent_state",
                "ts": t - 300,
                "agent": agent,
                "state": "available",
                "site": SITE,
                "team": team,
                "name": f"Agent {agent}",
                "queues": ["sales"],
            }
        )
        for k in range(answered):
            call = f"{agent}-{k}"
            start = t - 250 + i * 20 + k * 5
            out.append({"type": "call_queued", "ts": start, "call_id": call, "queue": "sales"})
            out.append(
                {
                    "type": "call_answered",
                    "ts": start + 1,
                    "call_id": call,
                    "queue": "sales",
                    "agent": agent,
                }
            )
        extra: dict[str, object] = {"reason": "break"} if state == "not_ready" else {}
        out.append(
            {
                "type": "agent_state",
                "ts": t - 60,
                "agent": agent,
                "state": state,
                "site": SITE,
                "team": team,
                "queues": ["sales"],
                **extra,
            }
        )
    out.sort(key=lambda e: float(e["ts"]))  # type: ignore[arg-type]
    return out


async def test_the_supervisor_table_sorts_and_filters(tmp_path: Path) -> None:
    """Clicking a column sorts by it (again: the other way); the team and state filters
    keep the matching agents only."""
    with _serve(tmp_path, _config()) as base:
        post_events(base, _agents(now()))
        async with browser(width=1600, height=1000) as context:
            page = await context.new_page()
            await page.goto(base + "/supervisor?site=sh")
            rows = page.locator("#agents tbody tr")
            await expect(rows).to_have_count(4, timeout=10_000)
            await page.locator('th[data-key="answered"]').click()
            assert await page.locator("#agents tbody td.answered").all_inner_texts() == [
                "0",
                "1",
                "2",
                "3",
            ]
            await page.locator('th[data-key="answered"]').click()
            assert await page.locator("#agents tbody td.answered").all_inner_texts() == [
                "3",
                "2",
                "1",
                "0",
            ]
            await page.locator("#f-team").select_option("blue")
            await expect(rows).to_have_count(2)
            assert sorted(await rows.evaluate_all("rs => rs.map(r => r.dataset.agent)")) == [
                "a2",
                "a4",
            ]
            await page.locator("#f-team").select_option("")
            await page.locator("#f-state").select_option("not_ready")
            await expect(rows).to_have_count(1)
            await expect(rows.first.locator("td.reason")).to_have_text("break")
            assert "Agent a3" in await rows.first.locator("td.name").inner_text()


async def test_with_read_tokens_the_page_needs_the_token_exchange(tmp_path: Path) -> None:
    """With read tokens a page without a session is sent to the login page and its stream
    refused; after the token is exchanged the wallboard works, and a signed link works on
    a fresh screen without leaving the link in its address."""
    tokens = f'\n[http]\nread_tokens = ["{READ}"]\nwrite_tokens = ["{WRITE}"]\n'
    with _serve(tmp_path, _config(extra=tokens)) as base:
        post_events(base, _answered_calls("sales", now(), 2), token=WRITE)
        async with browser() as context:
            page = await context.new_page()
            await page.goto(base + "/wallboard?site=sh")
            assert page.url.startswith(base + "/login?next=")
            answer = await page.request.get(base + "/api/v1/wallboard/stream?site=sh")
            assert answer.status == 401
            await page.fill("#token", "wrong-token-0123456789")
            await page.click("button[type=submit]")
            await expect(page.locator("#error")).to_contain_text("wrong token")
            await page.fill("#token", READ)
            await page.click("button[type=submit]")
            await page.wait_for_url(base + "/wallboard?site=sh")
            await expect(page.locator('.tile[data-queue="sales"] .sl')).to_have_text("100%")
            cookies = {c["name"]: c for c in await context.cookies()}
            assert cookies["callfloor_read"]["httpOnly"]
            assert cookies["callfloor_read"]["sameSite"] == "Strict"
            assert READ not in json.dumps(list(cookies.values()))
        link = urllib.request.Request(
            base + "/api/v1/session/links",
            data=json.dumps({"path": "/wallboard?site=sh&lang=en"}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {READ}"},
        )
        with urllib.request.urlopen(link, timeout=10) as answer:
            url = json.loads(answer.read())["url"]
        async with browser() as context:
            page = await context.new_page()
            await page.goto(base + url)
            await page.wait_for_url(base + "/wallboard?site=sh&lang=en")
            await expect(page.locator('.tile[data-queue="sales"] .sl')).to_have_text("100%")
            assert "access=" not in page.url


async def test_a_page_under_a_foreign_host_gets_nothing(tmp_path: Path) -> None:
    """A page reached by a name that is not the service's (DNS rebinding) is refused: no
    page, no stream, no number."""
    with _serve(tmp_path, _config()) as base:
        post_events(base, _answered_calls("sales", now(), 2))
        port = base.rsplit(":", 1)[1]
        async with browser(extra_args=["--host-resolver-rules=MAP rebind.test 127.0.0.1"]) as ctx:
            page = await ctx.new_page()
            answer = await page.goto(f"http://rebind.test:{port}/wallboard?site=sh")
            assert answer is not None and answer.status == 421
            assert await page.locator(".tile").count() == 0
            stream = await page.evaluate(
                "fetch('/api/v1/wallboard/stream?site=sh').then(r => r.status)"
            )
            assert stream == 421
            assert "100%" not in await page.content()


@pytest.mark.parametrize(("width", "height"), [(1920, 1080), (3840, 2160)])
async def test_sixteen_queues_fit_without_scrolling_readable_at_distance(
    tmp_path: Path, width: int, height: int
) -> None:
    """16 tiles fit the screen without scrolling; the service level is at least 120 px tall
    at 1920x1080 (twice that at 3840x2160), labels at least 28 px, contrast at least 7:1."""
    queues = tuple(f"q{i:02d}" for i in range(16))
    scale = height / 1080
    with _serve(tmp_path, _config(queues)) as base:
        t = now()
        post_events(base, [e for q in queues for e in _answered_calls(q, t, 1)])
        async with browser(width=width, height=height) as context:
            page = await context.new_page()
            await _open_board(page, base)
            await expect(page.locator(".tile")).to_have_count(16)
            sizes = await page.evaluate(SIZES_JS)
            assert sizes["scroll"] <= 0 and sizes["scrollX"] <= 0, sizes
            assert sizes["bottom"] <= height and sizes["right"] <= width, sizes
            assert sizes["sl"] >= 120 * scale, sizes
            assert sizes["labels"] >= 28 * scale - 0.5, sizes
            pairs = await page.evaluate(COLOURS_JS)
            worst = min(_contrast(fg, bg) for fg, bg in pairs)
            assert worst >= 7.0, worst


SIZES_JS = """() => {
  const px = (el) => parseFloat(getComputedStyle(el).fontSize);
  const all = (q) => [...document.querySelectorAll(q)];
  const tiles = all('.tile').map(t => t.getBoundingClientRect());
  return {
    scroll: document.scrollingElement.scrollHeight - innerHeight,
    scrollX: document.scrollingElement.scrollWidth - innerWidth,
    bottom: Math.max(...tiles.map(r => r.bottom)),
    right: Math.max(...tiles.map(r => r.right)),
    sl: Math.min(...all('.sl').map(e => e.getBoundingClientRect().height)),
    labels: Math.min(...all('.tile .label, .tile-name, .strip .label').map(px)),
  };
}"""

# Every text of the board with the background it is drawn on (the nearest painted one).
COLOURS_JS = """() => [...document.querySelectorAll(
    '.tile .label, .tile .value, .sl, .tile-name, .strip .value, .strip .label, .legend')]
  .map(e => {
    let b = e;
    let bg = 'rgba(0, 0, 0, 0)';
    while (b && (bg = getComputedStyle(b).backgroundColor) === 'rgba(0, 0, 0, 0)') {
      b = b.parentElement;
    }
    return [getComputedStyle(e).color, bg];
  })"""


def _rgb(css: str) -> tuple[float, float, float]:
    r, g, b = (int(v) for v in re.findall(r"\d+", css)[:3])
    return r / 255, g / 255, b / 255


def _contrast(fg: str, bg: str) -> float:
    def lum(c: tuple[float, float, float]) -> float:
        lin = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in c]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((lum(_rgb(fg)), lum(_rgb(bg))), reverse=True)
    return (hi + 0.05) / (lo + 0.05)
