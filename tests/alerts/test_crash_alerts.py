"""A SIGKILL between firing and resolve, right after an acknowledgement: after the
restart exactly one firing and one resolve reach the receiver, and the ack holds."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from fixtures.process import free_port
from serving import ServeProcess, get_json

OPERATOR = "operator-token-0123456789"


class _Receiver:
    """A webhook receiver that records every notification body."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                outer.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of(self, transition: str) -> list[dict[str, Any]]:
        return [
            b for b in self.bodies if b["rule"] == "long_wait" and b["transition"] == transition
        ]


def _ack(base: str, fp: str) -> tuple[int, Any]:
    req = urllib.request.Request(
        f"{base}/api/v1/alerts/{fp}/ack",
        data=json.dumps({"comment": "calling the late shift"}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {OPERATOR}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _wait(check: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_sigkill_after_an_ack_sends_one_firing_and_one_resolve(tmp_path: Path) -> None:
    """Firing delivered, acknowledged, SIGKILL, restart, then the call answered: the
    receiver has one firing and one resolve, and the restarted service lists the ack."""
    receiver = _Receiver()
    config = tmp_path / "callfloor.toml"
    config.write_text(
        f"""
[sites.s]
timezone = "UTC"
[queues.q]
site = "s"
[store]
url = "file://{tmp_path / "store"}"
checkpoint_every = "1h"
[http]
operator_tokens = {{ ada = "{OPERATOR}" }}
[alerts]
default_rules = false
[alerts.sinks.hook]
kind = "webhook"
url = "http://127.0.0.1:{receiver.port}/hook"
[[alerts.rules]]
name = "long_wait"
when = [{{ metric = "longest_wait_s", op = ">", value = 60 }}]
repeat = "1m"
""",
        encoding="utf-8",
    )
    now = time.time()
    server = ServeProcess(config)
    try:
        server.wait_ready()
        server.post_all(
            [
                {
                    "type": "agent_state",
                    "ts": now - 300,
                    "id": "ag",
                    "site": "s",
                    "agent": "a",
                    "state": "available",
                    "queues": ["q"],
                },
                {
                    "type": "call_queued",
                    "ts": now - 200,
                    "id": "cq",
                    "site": "s",
                    "call_id": "c",
                    "queue": "q",
                },
            ]
        )
        _wait(lambda: len(receiver.of("firing")) == 1)
        [alert] = get_json(f"{server.base}/api/v1/alerts")["alerts"]
        status, _ = _ack(server.base, alert["fingerprint"])
        assert status == 200
    finally:
        server.kill()  # right after the ack's answer: no final checkpoint
    again = ServeProcess(config, server.port)
    try:
        again.wait_ready(timeout=20)
        [alert] = get_json(f"{again.base}/api/v1/alerts")["alerts"]
        assert (alert["state"], alert["acknowledged_by"]) == ("firing", "ada")
        time.sleep(2.5)  # ticks pass: nothing is sent again, and no repeat once acked
        assert len(receiver.of("firing")) == 1 and receiver.of("repeat") == []
        again.post_all(
            [
                {
                    "type": "call_answered",
                    "ts": time.time(),
                    "id": "ca",
                    "site": "s",
                    "call_id": "c",
                    "queue": "q",
                    "agent": "a",
                }
            ]
        )
        _wait(lambda: len(receiver.of("resolved")) >= 1)
        time.sleep(1.5)
    finally:
        again.stop()
    assert len(receiver.of("firing")) == 1
    assert len(receiver.of("resolved")) == 1
    receiver.server.shutdown()


def test_rules_test_prints_the_replays_alerts(tmp_path: Path) -> None:
    """`callfloor rules test --json` gives the alert list `callfloor replay` writes."""
    import subprocess
    import sys

    from serving import replay_cli

    config = tmp_path / "c.toml"
    config.write_text(
        '[queues.q]\nsite = "s"\n[alerts]\ndefault_rules = false\n[[alerts.rules]]\n'
        'name = "long_wait"\nwhen = [{ metric = "longest_wait_s", op = ">", value = 60 }]\n'
        'for = "30s"\n',
        encoding="utf-8",
    )
    t = 1_795_300_000.0
    events = [
        {"type": "call_queued", "ts": t, "id": "q1", "site": "s", "call_id": "c1", "queue": "q"},
        {
            "type": "call_abandoned",
            "ts": t + 200,
            "id": "x1",
            "site": "s",
            "call_id": "c1",
            "queue": "q",
        },
        {
            "type": "call_queued",
            "ts": t + 300,
            "id": "q2",
            "site": "s",
            "call_id": "c2",
            "queue": "q",
        },
    ]
    path = tmp_path / "e.ndjson"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    at = t + 500
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "callfloor",
            "rules",
            "test",
            str(config),
            str(path),
            "--at",
            str(at),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    listed = json.loads(done.stdout)
    replayed = replay_cli(config, path, at)["alerts"]
    assert listed == replayed
    assert [(a["state"], a["since"] - t, a["fired_at"] - t) for a in listed] == [
        ("resolved", 60.0, 90.0),
        ("firing", 360.0, 390.0),
    ]
