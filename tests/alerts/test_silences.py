"""Silences are bounded: ended ones go, and no more than MAX_SILENCES are in force."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from serving import ServeProcess

from callfloor.alerts.engine import MAX_SILENCES, AlertEngine, Silence

OPERATOR = "operator-token-0123456789"


def _silence(i: int, starts: float, ends: float) -> Silence:
    return Silence(
        id=f"s{i}", rule="*", scope="*", starts_at=starts, ends_at=ends, created_by="ada"
    )


def test_a_new_silence_drops_those_ended_before_it() -> None:
    """Adding a silence forgets every silence that ended by its start, and keeps the
    others."""
    engine = AlertEngine(rules=())
    engine.add_silence(_silence(1, 0.0, 100.0))
    engine.add_silence(_silence(2, 0.0, 1000.0))
    engine.add_silence(_silence(3, 500.0, 600.0))
    assert sorted(engine.silences) == ["s2", "s3"]
    assert engine.silences_in_force(550.0) == 2


def _post(base: str, body: dict[str, str]) -> int:
    request = urllib.request.Request(
        base + "/api/v1/silences",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {OPERATOR}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as err:
        return err.code


def test_silences_beyond_the_limit_are_refused(tmp_path: Path) -> None:
    """The silence after MAX_SILENCES in force is answered 409 (10,000 posted used to be
    kept, matched against every notification and checkpointed with every command)."""
    config = tmp_path / "callfloor.toml"
    config.write_text(
        f'[sites.s]\ntimezone = "UTC"\n[queues.q]\nsite = "s"\n'
        f'[http]\noperator_tokens = {{ ada = "{OPERATOR}" }}\n',
        encoding="utf-8",
    )
    server = ServeProcess(config)
    try:
        server.wait_ready()
        statuses = [
            _post(server.base, {"rule": f"r{i}", "duration": "30d"})
            for i in range(MAX_SILENCES + 1)
        ]
    finally:
        server.stop()
    assert statuses[:MAX_SILENCES] == [201] * MAX_SILENCES
    assert statuses[MAX_SILENCES] == 409
