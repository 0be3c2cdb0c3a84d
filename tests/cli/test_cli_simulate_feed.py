"""`callfloor simulate --post`: simulated events fed to a real `callfloor serve` in batches."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from serving import Served, serve
from waiting import wait_until


def _simulate(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "callfloor", "simulate", "--agents", "8", "--queues", "4", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _events(served: Served) -> int:
    status, doc = served.get_json("/api/v1/snapshot")
    assert status == 200
    return int(doc["counters"]["events"])


def _busy_recent_start() -> int:
    """The latest whole hour at least 10 minutes ago when both simulated floors are open
    (08:00-14:00 UTC: London's morning, Shanghai's afternoon), less than a day ago: at
    night the last 10 minutes hold no call at all."""
    start = (int(time.time()) - 600) // 3600 * 3600
    while not 8 <= time.gmtime(start).tm_hour <= 14:
        start -= 3600
    return start


def test_a_recent_backfill_is_posted_and_taken_whole(tmp_path: Path) -> None:
    """Ten simulated minutes of the last day, posted in batches, are all accepted: the
    summary says so on stderr and the service's queues are the simulated ones."""
    start = _busy_recent_start()
    with serve(tmp_path) as served:
        done = _simulate(
            "--start", str(start), "--duration", "10m", "--post", served.base + "/api/v1/events"
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == ""
        assert " 0 rejected" in done.stderr and "accepted" in done.stderr
        posted = int(done.stderr.split("simulate: ")[1].split(" events")[0])
        assert posted > 0 and f"{posted} accepted" in done.stderr
        wait_until(lambda: _events(served) == posted, timeout=10)
        status, queues = served.get_json("/api/v1/queues")
    assert status == 200
    same = _simulate("--start", str(start), "--duration", "10m")  # the same events, as NDJSON
    offered = {e["queue"] for e in map(json.loads, same.stdout.splitlines()) if "queue" in e}
    assert offered and set(queues["queues"]) == offered


def test_a_past_day_posted_is_refused_with_the_reason_and_exit_1(tmp_path: Path) -> None:
    """The default start (a fixed past date) is older than max_lateness: every event is
    rejected, the summary names ts_too_old with its hint, and the exit code is 1."""
    with serve(tmp_path) as served:
        done = _simulate("--duration", "2m", "--post", served.base + "/api/v1/events")
    assert done.returncode == 1
    assert "0 accepted" in done.stderr
    assert "ts_too_old" in done.stderr and "callfloor replay" in done.stderr


def test_realtime_posts_as_events_fall_due_not_at_the_end(tmp_path: Path) -> None:
    """With --realtime the service has events while the simulator is still running."""
    with serve(tmp_path) as served:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "callfloor",
                "simulate",
                "--realtime",
                "--duration",
                "1h",
                "--post",
                served.base + "/api/v1/events",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            wait_until(lambda: _events(served) > 0, timeout=20)
            assert proc.poll() is None, "the simulator ended before the hour"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_speed_cannot_feed_a_live_service() -> None:
    """--speed with --post is refused (exit 2): the service would hold the future events."""
    done = _simulate("--realtime", "--speed", "10", "--post", "http://127.0.0.1:9/api/v1/events")
    assert done.returncode == 2
    assert "--speed cannot feed a live service" in done.stderr


def test_post_and_output_are_exclusive() -> None:
    """--post and --output together are a usage error (exit 2)."""
    done = _simulate("--output", "x.ndjson", "--post", "http://127.0.0.1:9/api/v1/events")
    assert done.returncode == 2 and "not allowed with" in done.stderr


def test_a_warmup_is_sent_at_once_from_that_far_back() -> None:
    """--realtime --warmup 5m begins five minutes ago and sends those minutes at once: a
    five-minute run ends without waiting, its events from now-300 s to now."""
    before = time.time()
    done = _simulate("--realtime", "--warmup", "5m", "--duration", "5m", timeout=30)
    after = time.time()
    assert done.returncode == 0, done.stderr
    stamps = [json.loads(line)["ts"] for line in done.stdout.splitlines()]
    assert stamps and after - before < 20
    # The simulator's "now" is between before and after (its start-up takes a while).
    assert before - 300.01 <= min(stamps) <= after - 299.99
    assert max(stamps) <= after


def test_warmup_needs_realtime() -> None:
    """--warmup without --realtime is a usage error (exit 2)."""
    done = _simulate("--warmup", "5m")
    assert done.returncode == 2 and "--warmup only applies with --realtime" in done.stderr
