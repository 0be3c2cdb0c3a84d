"""Alerts in `callfloor serve`: the live list equals replay for events a minute out of
order, a backfill's firing alert reaches a real Alertmanager, and acknowledgements need
an operator token."""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.alertmanager import Alertmanager
from serving import ServeProcess, get_json, replay_cli
from traces import write_ndjson

OPERATOR = "operator-token-0123456789"


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "callfloor.toml"
    path.write_text(
        f"""
[sites.s]
timezone = "UTC"
[queues.q]
site = "s"
sl_threshold_s = 20
[http]
operator_tokens = {{ ada = "{OPERATOR}" }}
[alerts]
default_rules = false
[[alerts.rules]]
name = "long_wait"
when = [{{ metric = "longest_wait_s", op = ">", value = 60 }}]
[[alerts.rules]]
name = "sl_low"
when = [{{ metric = "service_level", window = "15m", op = "<", value = 0.8 }}]
clear = 0.85
for = "1m"
min_volume = 5
{extra}
""",
        encoding="utf-8",
    )
    return path


def _floor(start: float) -> list[dict[str, Any]]:
    """Calls every 20 s for 20 minutes; the middle ones wait 45 s; one call still waiting."""
    out: list[dict[str, Any]] = [
        {
            "type": "agent_state",
            "ts": start - 30,
            "id": "ag0",
            "site": "s",
            "agent": "a",
            "state": "available",
            "queues": ["q"],
        }
    ]
    for i in range(60):
        t = start + 20.0 * i
        wait = 45.0 if 20 <= i < 40 else 4.0
        out.append(
            {
                "type": "call_queued",
                "ts": t,
                "id": f"q{i}",
                "site": "s",
                "call_id": f"c{i}",
                "queue": "q",
            }
        )
        out.append(
            {
                "type": "call_answered",
                "ts": t + wait,
                "id": f"ans{i}",
                "site": "s",
                "call_id": f"c{i}",
                "queue": "q",
                "agent": "a",
            }
        )
    out.append(
        {
            "type": "call_queued",
            "ts": start + 20.0 * 60,
            "id": "qz",
            "site": "s",
            "call_id": "cz",
            "queue": "q",
        }
    )
    return out


def _post(base: str, path: str, body: dict[str, Any], token: str | None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture
def am(tmp_path: Path) -> Iterator[Alertmanager]:
    with Alertmanager(tmp_path / "am") as running:
        yield running


def test_two_feeds_a_minute_apart_give_the_replays_alerts(tmp_path: Path) -> None:
    """Calls and answers posted as two feeds, answers a minute behind, list the alerts
    replay lists, with the same instants."""
    config = _config(tmp_path)
    start = time.time() - 1500
    events = _floor(start)
    queued = [e for e in events if e["type"] != "call_answered"]
    answers = [e for e in events if e["type"] == "call_answered"]
    arrival: list[dict[str, Any]] = []
    a = 0
    for e in queued:  # each answer posted after the calls of the minute that follows it
        while a < len(answers) and answers[a]["ts"] + 60 <= e["ts"]:
            arrival.append(answers[a])
            a += 1
        arrival.append(e)
    arrival += answers[a:]
    server = ServeProcess(config)
    try:
        server.wait_ready()
        for i in range(0, len(arrival), 7):
            server.post_all(arrival[i : i + 7])
        server.snapshot_after(len(arrival))
        deadline = time.monotonic() + 15
        while True:
            live = get_json(f"{server.base}/api/v1/snapshot")
            replayed = replay_cli(
                config, write_ndjson(tmp_path / "t.ndjson", events), live["as_of"]
            )
            if _instants(live) == _instants(replayed) or time.monotonic() > deadline:
                break
            time.sleep(1)
    finally:
        server.stop()
    assert {a["rule"] for a in replayed["alerts"]} == {"long_wait", "sl_low"}
    assert _instants(live) == _instants(replayed)


def _instants(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    return sorted(
        (a["rule"], a["scope"], a["state"], a["since"], a["fired_at"], a["ended_at"])
        for a in doc["alerts"]
    )


def test_a_backfill_firing_now_reaches_alertmanager_and_resolves(
    tmp_path: Path, am: Alertmanager
) -> None:
    """A call waiting since 5 minutes ago, posted now, is in Alertmanager within 10 s
    with its labels; answered, the alert resolves there."""
    config = _config(tmp_path, f'alertmanager_url = "{am.url}"'.replace("alertmanager_url", "# am"))
    text = config.read_text().replace("[alerts]\n", f'[alerts]\nalertmanager_url = "{am.url}"\n', 1)
    config.write_text(text)
    server = ServeProcess(config)
    now = time.time()
    try:
        server.wait_ready()
        server.post_all(
            [
                {
                    "type": "agent_state",
                    "ts": now - 400,
                    "id": "ag0",
                    "site": "s",
                    "agent": "a",
                    "state": "available",
                    "queues": ["q"],
                },
                {
                    "type": "call_queued",
                    "ts": now - 300,
                    "id": "q1",
                    "site": "s",
                    "call_id": "c1",
                    "queue": "q",
                },
            ]
        )
        posted = time.monotonic()
        found: list[dict[str, Any]] = []
        while time.monotonic() - posted < 10 and not found:
            found = [a for a in am.alerts() if a["labels"].get("alertname") == "long_wait"]
            time.sleep(0.2)
        assert found, "the alert did not reach Alertmanager within 10 s"
        labels = found[0]["labels"]
        assert (labels["severity"], labels["site"], labels["queue"]) == ("warning", "s", "q")
        # The acknowledgement needs the operator's token: a missing one is refused.
        [alert] = [
            a
            for a in get_json(f"{server.base}/api/v1/alerts")["alerts"]
            if a["rule"] == "long_wait"
        ]
        fp = alert["fingerprint"]
        status, _ = _post(
            server.base, f"/api/v1/alerts/{fp}/ack", {"comment": "on it"}, "wrong-token-0123456789"
        )
        assert status in (401, 403)
        status, answer = _post(
            server.base, f"/api/v1/alerts/{fp}/ack", {"comment": "on it"}, OPERATOR
        )
        assert status == 200 and answer["acknowledged_by"] == "ada"
        [alert] = [
            a
            for a in get_json(f"{server.base}/api/v1/alerts")["alerts"]
            if a["rule"] == "long_wait"
        ]
        assert (alert["acknowledged_by"], alert["ack_comment"]) == ("ada", "on it")
        server.post_all(
            [
                {
                    "type": "call_answered",
                    "ts": time.time(),
                    "id": "ans1",
                    "site": "s",
                    "call_id": "c1",
                    "queue": "q",
                    "agent": "a",
                }
            ]
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            active = [
                a
                for a in am.alerts()
                if a["labels"].get("alertname") == "long_wait" and a["status"]["state"] == "active"
            ]
            if not active:
                break
            time.sleep(0.3)
        assert not active, "the resolve did not reach Alertmanager"
    finally:
        server.stop()


def test_a_silence_needs_an_operator_and_lists(tmp_path: Path) -> None:
    """POST /api/v1/silences with the operator token answers 201 and lists it; a bad
    duration is a 400 naming it."""
    server = ServeProcess(_config(tmp_path))
    try:
        server.wait_ready()
        status, body = _post(
            server.base, "/api/v1/silences", {"rule": "sl_*", "duration": "2h"}, OPERATOR
        )
        assert status == 201 and body["created_by"] == "ada"
        listed = get_json(f"{server.base}/api/v1/silences")["silences"]
        assert [s["id"] for s in listed] == [body["id"]]
        status, body = _post(server.base, "/api/v1/silences", {"duration": "forever"}, OPERATOR)
        assert status == 400 and body["error"].startswith("duration:")
    finally:
        server.stop()


_ = random  # (kept for the arrival helpers' seeds)
