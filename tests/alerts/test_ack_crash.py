"""SIGKILL right after an acknowledgement, with a file store: the restarted service still
shows it."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from serving import ServeProcess, get_json

OPERATOR = "operator-token-0123456789"


def _firing(base: str) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = get_json(f"{base}/api/v1/alerts")["alerts"]
    return [a for a in alerts if a["state"] == "firing"]


def test_an_acknowledgement_survives_a_sigkill_right_after_it(tmp_path: Path) -> None:
    """The answer to the acknowledgement, then SIGKILL at once: after the restart the alert
    is firing, acknowledged by the operator, with the comment."""
    config = tmp_path / "callfloor.toml"
    config.write_text(
        f"""
[sites.s]
timezone = "UTC"
[queues.q]
site = "s"
[store]
url = "file://{tmp_path / "store"}"
[http]
operator_tokens = {{ ada = "{OPERATOR}" }}
[alerts]
default_rules = false
[[alerts.rules]]
name = "long_wait"
when = [{{ metric = "longest_wait_s", op = ">", value = 60 }}]
""",
        encoding="utf-8",
    )
    now = time.time()
    server = ServeProcess(config)
    try:
        server.wait_ready()
        server.post_all(
            [{"type": "call_queued", "ts": now - 300, "id": "q1", "site": "s",
              "call_id": "c1", "queue": "q"}]
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not (firing := _firing(server.base)) and time.monotonic() < deadline:
            time.sleep(0.1)
        [alert] = firing
        request = urllib.request.Request(
            f"{server.base}/api/v1/alerts/{alert['fingerprint']}/ack",
            data=json.dumps({"comment": "on it 你好"}).encode(),
            headers={"Authorization": f"Bearer {OPERATOR}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
        server.kill()
    finally:
        server.stop()
    restarted = ServeProcess(config, port=server.port)
    try:
        restarted.wait_ready(30)
        [after] = _firing(restarted.base)
    finally:
        restarted.stop()
    assert (after["acknowledged_by"], after["ack_comment"]) == ("ada", "on it 你好")
