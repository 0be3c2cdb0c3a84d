"""``callfloor replay``'s memory modes as a user sees them: the summary says which one
ran, an input too far out of order is named and replayed again keeping everything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import T0

import callfloor.replay as replay_module
from callfloor.cli import main

TOML = '[limits]\nmax_lateness = "10m"\n'


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """A few lines a batch: a short file folds between batches as a long log does."""
    monkeypatch.setattr(replay_module, "CHUNK_BYTES", 256)


def _write(tmp_path: Path, events: list[dict[str, Any]]) -> tuple[Path, Path]:
    data = tmp_path / "events.ndjson"
    data.write_text("".join(json.dumps(e) + "\n" for e in events))
    cfg = tmp_path / "floor.toml"
    cfg.write_text(TOML)
    return data, cfg


def _calls(starts: list[float]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for n, t in enumerate(starts):
        cid = f"c{n}"
        out.append({"type": "call_queued", "ts": t, "call_id": cid, "queue": "sales"})
        out.append({"type": "call_answered", "ts": t + 5, "call_id": cid, "agent": "a"})
        out.append({"type": "call_ended", "ts": t + 65, "call_id": cid, "agent": "a"})
    return out


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["replay", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_summary_says_history_was_folded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """In-order input: the summary ends with the folding it did and the lateness used."""
    data, cfg = _write(tmp_path, _calls([T0 + 600 * k for k in range(6)]))
    code, _, err = _run([str(data), "--config", str(cfg)], capsys)
    assert code == 0
    assert err.strip().endswith("history before max_lateness (10 min) folded"), err
    assert "warning" not in err


def test_keep_everything_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--keep-everything: the summary says every history was kept; the same document."""
    data, cfg = _write(tmp_path, _calls([T0 + 600 * k for k in range(6)]))
    _, folded, _ = _run([str(data), "--config", str(cfg)], capsys)
    code, out, err = _run([str(data), "--config", str(cfg), "--keep-everything"], capsys)
    assert code == 0
    assert err.strip().endswith("every history kept"), err
    assert out == folded


def test_an_input_out_of_order_is_named_and_replayed_keeping_everything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A call an hour before the ones above it (max_lateness 10 min): a warning names its
    line and the lateness, and the document is that of --keep-everything."""
    events = _calls([T0 + 3600 + 600 * k for k in range(6)]) + _calls([T0])
    events[-3]["call_id"] = events[-2]["call_id"] = events[-1]["call_id"] = "early"
    data, cfg = _write(tmp_path, events)
    code, out, err = _run([str(data), "--config", str(cfg), "--at", str(T0 + 7200)], capsys)
    _, whole, _ = _run(
        [str(data), "--config", str(cfg), "--at", str(T0 + 7200), "--keep-everything"], capsys
    )
    assert code == 0
    warning = next(line for line in err.splitlines() if "warning" in line)
    assert "line 19 " in warning and "max_lateness (10 min)" in warning, warning
    assert "replayed again keeping every history" in warning
    assert err.strip().endswith("every history kept")
    assert out == whole
