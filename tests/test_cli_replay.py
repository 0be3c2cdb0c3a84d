"""`callfloor replay` on the command line: output, and clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import T0

from callfloor.cli import main


def _events(tmp_path: Path) -> Path:
    path = tmp_path / "events.ndjson"
    path.write_text(
        json.dumps({"type": "call_queued", "ts": T0, "call_id": "c1", "queue": "sales"})
        + "\n"
        + json.dumps({"type": "call_answered", "ts": T0 + 4, "call_id": "c1", "agent": "a"})
        + "\n"
    )
    return path


def test_replay_prints_the_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The document goes to stdout as one JSON line; --at accepts RFC 3339."""
    code = main(["replay", str(_events(tmp_path)), "--at", "2026-11-21T22:26:50Z"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["as_of"] == T0 + 10
    assert doc["queues"]["sales"]["windows"]["15m"]["answered"] == 1


def test_missing_file_is_exit_2_with_its_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that cannot be read is named on stderr with exit code 2."""
    code = main(["replay", str(tmp_path / "nope.ndjson")])
    assert code == 2
    assert "nope.ndjson" in capsys.readouterr().err


def test_bad_config_is_exit_2_naming_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A configuration error stops the replay with file, key and problem on stderr."""
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[queues.sales]\nsl_threshold_s = 10\nshort_abandon_s = 12\n")
    code = main(["replay", str(_events(tmp_path)), "--config", str(cfg)])
    err = capsys.readouterr().err
    assert code == 2
    assert str(cfg) in err and "queues.sales.short_abandon_s" in err


def test_bad_at_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--at with a time without offset is refused by the argument parser (exit 2)."""
    with pytest.raises(SystemExit) as info:
        main(["replay", str(_events(tmp_path)), "--at", "2026-11-22T17:06:50"])
    assert info.value.code == 2
    assert "offset" in capsys.readouterr().err


def test_rejected_event_after_the_default_cut_is_not_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --at, an invalid event later than the last valid one never arrived."""
    path = tmp_path / "events.ndjson"
    path.write_text(
        json.dumps({"type": "call_queued", "ts": T0, "call_id": "c1", "queue": "sales"})
        + "\n"
        + json.dumps({"type": "agent_state", "ts": T0 + 60, "agent": "a", "state": "bogus"})
        + "\n"
    )
    assert main(["replay", str(path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["as_of"], doc["counters"]["rejected"]) == (T0, 0)
