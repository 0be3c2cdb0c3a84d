"""`callfloor replay` on the command line: the document, the summary, exit codes, input forms."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
from helpers import T0

from callfloor import replay as replay_module
from callfloor.cli import main
from callfloor.config import parse_config
from callfloor.replay import replay

ROOT = Path(__file__).resolve().parents[2]


def queued(ts: object, call: str, queue: object = "sales", **kw: Any) -> dict[str, Any]:
    return {"type": "call_queued", "ts": ts, "call_id": call, "queue": queue, **kw}


def answered(ts: float, call: str, agent: str = "a") -> dict[str, Any]:
    return {"type": "call_answered", "ts": ts, "call_id": call, "agent": agent}


def write_lines(path: Path, lines: list[dict[str, Any] | str]) -> Path:
    """NDJSON from events (dicts) and raw lines (str, written as they are)."""
    path.write_text(
        "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    )
    return path


def _events(tmp_path: Path) -> Path:
    return write_lines(tmp_path / "events.ndjson", [queued(T0, "c1"), answered(T0 + 4, "c1")])


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["replay", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def summary_of(err: str) -> str:
    """The summary line of a replay's stderr (the one that is not a warning)."""
    lines = [line for line in err.splitlines() if "warning" not in line]
    assert len(lines) == 1, err
    return lines[0]


# ---- the document on stdout -------------------------------------------------------------


def test_replay_prints_the_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The document goes to stdout as one JSON line; --at accepts RFC 3339."""
    code, out, _ = run_cli([str(_events(tmp_path)), "--at", "2026-11-21T22:26:50Z"], capsys)
    doc = json.loads(out)
    assert code == 0
    assert doc["as_of"] == T0 + 10
    assert doc["queues"]["sales"]["windows"]["15m"]["answered"] == 1


def test_stdout_is_exactly_the_library_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """stdout is the encoded document of the same replay and nothing else, even with rejections."""
    path = write_lines(
        tmp_path / "e.ndjson", [queued(T0, "c1"), "{not json", answered(T0 + 4, "c1")]
    )
    code, out, err = run_cli([str(path)], capsys)
    expected = msgspec.json.encode(replay([path], parse_config({})).view.document())
    assert code == 0
    assert out.encode() == expected + b"\n"
    assert err  # the summary went to stderr


def test_subprocess_keeps_stdout_for_the_document_and_stderr_for_people(tmp_path: Path) -> None:
    """Run as a process, stdout is one JSON line and stderr carries the summary line."""
    path = write_lines(tmp_path / "e.ndjson", [queued(T0, "c1"), '{"type": "nope", "ts": 1}'])
    proc = subprocess.run(
        [sys.executable, "-m", "callfloor", "replay", str(path)],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.count(b"\n") == 1
    assert json.loads(proc.stdout)["counters"]["rejected"] == 1
    err = proc.stderr.decode().splitlines()
    assert len(err) == 1 and err[0].startswith("callfloor replay: ")
    assert "unknown_type 1: line 2" in err[0]


def test_a_closed_stderr_still_gives_the_document_and_exit_0(tmp_path: Path) -> None:
    """`callfloor replay f 2>&-` (a cron job, a daemon without stderr): stdout is the
    document alone and the exit code 0; the summary, progress and warnings go nowhere
    (not into the document's stream). The progress reporter once asked the missing
    stderr whether it was a terminal and the replay ended with no document at all."""
    path = write_lines(tmp_path / "e.ndjson", [queued(T0, "c1"), '{"type": "nope", "ts": 1}'])
    for quiet in ([], ["--quiet"]):
        proc = subprocess.run(
            [sys.executable, "-m", "callfloor", "replay", str(path), *quiet],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            preexec_fn=lambda: os.close(2),
            timeout=60,
        )
        assert proc.returncode == 0, (quiet, proc.stdout[-500:])
        assert proc.stdout.count(b"\n") == 1, (quiet, proc.stdout[-500:])
        assert json.loads(proc.stdout)["counters"]["rejected"] == 1


# ---- the summary line ---------------------------------------------------------------------


def test_summary_names_rejections_by_reason_with_their_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each reason is listed with its count and the lines of its events."""
    path = write_lines(
        tmp_path / "e.ndjson",
        [
            queued(T0, "c1"),
            queued("yesterday", "c2"),
            {"type": "call_teleported", "ts": T0 + 1, "call_id": "c3"},
            queued(T0 + 2, "c4"),
            queued("not a time", "c5"),
        ],
    )
    code, out, err = run_cli([str(path)], capsys)
    line = summary_of(err)
    assert code == 0
    assert json.loads(out)["counters"]["rejected"] == 3
    assert "3 rejected (invalid_ts 2: lines 2, 5; unknown_type 1: line 3)" in line


def test_summary_counts_match_the_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Applied, duplicate and late counts in the summary are the document's counters."""
    path = write_lines(
        tmp_path / "e.ndjson",
        [
            queued(T0, "c1", id="x1"),
            queued(T0, "c1", id="x1"),  # a redelivery
            queued(T0 + 60, "c2"),
            queued(T0 + 30, "c3"),  # late: the clock is at T0 + 60
            queued(T0 + 90, "c4"),
        ],
    )
    _, out, err = run_cli([str(path)], capsys)
    counters = json.loads(out)["counters"]
    line = summary_of(err)
    assert counters["duplicates"] >= 1 and counters["late"] >= 1
    assert f"{counters['events']} events applied" in line
    assert f"{counters['duplicates']} duplicates" in line
    assert f"{counters['late']} late" in line
    assert f"as_of {T0 + 90!r}" in line


def test_summary_lists_at_most_three_lines_per_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Five bad lines of one reason show the first three and an ellipsis."""
    lines: list[dict[str, Any] | str] = [queued(T0, "c0")]
    lines += ["{broken"] * 5
    path = write_lines(tmp_path / "e.ndjson", lines)
    _, _, err = run_cli([str(path)], capsys)
    assert "invalid_json 5: lines 2, 3, 4, ..." in summary_of(err)


def test_limit_refusals_are_in_the_summary_with_their_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An event beyond [limits] is refused, counted and listed with its line."""
    cfg = tmp_path / "cfg.toml"
    cfg.write_text("[limits]\nmax_name_length = 8\n")
    path = write_lines(
        tmp_path / "e.ndjson",
        [
            queued(T0, "c1"),
            queued(T0 + 1, "c2", queue="a-very-long-queue-name"),
            queued(T0 + 2, "c3"),
        ],
    )
    code, out, err = run_cli([str(path), "--config", str(cfg)], capsys)
    assert code == 0
    assert json.loads(out)["counters"]["rejected"] == 1
    assert "1 rejected (name_too_long 1: line 2)" in summary_of(err)


def test_line_numbers_count_blank_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Blank lines are skipped but still counted, for refusals and rejections alike."""
    cfg = tmp_path / "cfg.toml"
    cfg.write_text("[limits]\nmax_name_length = 8\n")
    first = json.dumps(queued(T0, "c1"))
    long_queue = json.dumps(queued(T0 + 1, "c2", queue="a-very-long-queue-name"))
    last = json.dumps(queued(T0 + 2, "c3"))
    path = tmp_path / "e.ndjson"
    path.write_text(f"\n{first}\n\n   \n{long_queue}\n\n{last}\n")
    _, _, err = run_cli([str(path), "--config", str(cfg)], capsys)
    assert "name_too_long 1: line 5" in summary_of(err)
    path.write_text(f"\n{first}\n\n{{oops\n\n{long_queue}\n{last}\n")
    _, _, err = run_cli([str(path), "--config", str(cfg)], capsys)
    assert "invalid_json 1: line 4; name_too_long 1: line 6" in summary_of(err)


def test_line_numbers_hold_across_read_chunks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a file read in many small chunks, every position is still the file's line."""
    monkeypatch.setattr(replay_module, "CHUNK_BYTES", 100)
    cfg = tmp_path / "cfg.toml"
    cfg.write_text("[limits]\nmax_name_length = 8\n")
    lines: list[dict[str, Any] | str] = [queued(T0 + i, f"c{i}") for i in range(40)]
    lines[16] = "{oops"
    lines[29] = queued(T0 + 29, "c29", queue="a-very-long-queue-name")
    lines[33] = ""
    path = write_lines(tmp_path / "e.ndjson", lines)
    _, _, err = run_cli([str(path), "--config", str(cfg)], capsys)
    assert "invalid_json 1: line 17; name_too_long 1: line 30" in summary_of(err)


def test_positions_name_the_file_when_there_are_several(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With two files, each listed position says which file it is in."""
    a = write_lines(tmp_path / "a.ndjson", [queued(T0, "c1"), "{oops"])
    b = write_lines(tmp_path / "b.ndjson", ["{oops", queued(T0 + 5, "c2")])
    _, _, err = run_cli([str(a), str(b)], capsys)
    assert f"invalid_json 2: {a} line 2, {b} line 1" in summary_of(err)


def test_quiet_drops_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--quiet prints the document and nothing on stderr."""
    code, out, err = run_cli([str(_events(tmp_path)), "--quiet"], capsys)
    assert code == 0 and json.loads(out)["as_of"] == T0 + 4
    assert err == ""


def test_input_without_a_valid_event_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With no valid event the document is at the epoch and the summary says why."""
    path = write_lines(tmp_path / "e.ndjson", ["{oops"])
    code, out, err = run_cli([str(path)], capsys)
    assert code == 0 and json.loads(out)["as_of"] == 0.0
    assert "(1970-01-01T00:00:00.000Z, no valid event)" in summary_of(err)


# ---- --strict -----------------------------------------------------------------------------


def test_strict_exits_1_when_anything_was_rejected_and_still_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--strict with a rejected event exits 1 after printing the whole document."""
    path = write_lines(tmp_path / "e.ndjson", [queued(T0, "c1"), "{oops", queued(T0 + 1, "c2")])
    code, out, _ = run_cli([str(path), "--strict"], capsys)
    assert code == 1
    assert json.loads(out)["counters"]["rejected"] == 1


def test_strict_exits_0_on_clean_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--strict with nothing rejected exits 0."""
    code, _, _ = run_cli([str(_events(tmp_path)), "--strict"], capsys)
    assert code == 0


def test_strict_ignores_rejections_after_the_cut(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad event after --at never arrived, so --strict does not fail on it."""
    path = write_lines(tmp_path / "e.ndjson", [queued(T0, "c1"), queued(T0 + 99, "c2", queue=7)])
    code, out, err = run_cli([str(path), "--strict", "--at", str(T0 + 10)], capsys)
    assert code == 0
    assert json.loads(out)["counters"]["rejected"] == 0
    assert "1 after as_of left out" in summary_of(err)


# ---- as_of from a last line that jumps backwards ------------------------------------------


def test_last_line_jumping_backwards_warns_and_names_at(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """When an earlier event is later than the last one, one warning line names --at."""
    path = write_lines(
        tmp_path / "e.ndjson", [queued(T0, "c1"), queued(T0 + 500, "c2"), queued(T0 + 10, "c3")]
    )
    code, out, err = run_cli([str(path)], capsys)
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert code == 0
    assert json.loads(out)["as_of"] == T0 + 10
    assert len(warnings) == 1
    assert "line 3" in warnings[0] and "--at" in warnings[0] and repr(T0 + 500) in warnings[0]
    assert "1 after as_of left out" in summary_of(err)


def test_no_warning_with_at_or_in_order_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """In-order input, or an explicit --at, gives no warning."""
    jumpy = write_lines(
        tmp_path / "e.ndjson", [queued(T0, "c1"), queued(T0 + 500, "c2"), queued(T0 + 10, "c3")]
    )
    _, _, err = run_cli([str(_events(tmp_path))], capsys)
    assert "warning" not in err
    _, _, err = run_cli([str(jumpy), "--at", str(T0 + 10)], capsys)
    assert "warning" not in err


def test_a_trailing_rejected_event_is_left_out_without_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A later but invalid last line is after the cut: left out, and nothing jumped back."""
    path = write_lines(tmp_path / "e.ndjson", [queued(T0, "c1"), queued(T0 + 60, "c2", queue=7)])
    _, out, err = run_cli([str(path)], capsys)
    assert json.loads(out)["counters"]["rejected"] == 0
    assert "warning" not in err
    assert "1 after as_of left out" in summary_of(err)


# ---- JSON arrays --------------------------------------------------------------------------


def test_json_array_file_is_read_as_an_array(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file starting with '[' (after spaces) is one array of events, same result as NDJSON."""
    events = [queued(T0, "c1"), answered(T0 + 4, "c1")]
    array = tmp_path / "e.json"
    array.write_text("  \n" + json.dumps(events, indent=2))
    _, from_array, _ = run_cli([str(array)], capsys)
    _, from_lines, _ = run_cli([str(_events(tmp_path))], capsys)
    assert from_array == from_lines
    assert json.loads(from_array)["counters"]["events"] == 2


def test_json_array_rejections_are_reported_as_elements(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad elements of an array are rejected one by one and named by element index."""
    events: list[Any] = [queued(T0, "c1"), 42, queued("soon", "c2"), answered(T0 + 4, "c1")]
    array = tmp_path / "e.json"
    array.write_text(json.dumps(events))
    code, out, err = run_cli([str(array)], capsys)
    doc = json.loads(out)
    assert code == 0
    assert (doc["counters"]["events"], doc["counters"]["rejected"]) == (2, 2)
    assert "invalid_ts 1: element 2; not_an_object 1: element 1" in summary_of(err)


def test_deeply_nested_input_is_one_rejection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An element or line nested deeper than the decoder allows is one invalid_json item."""
    deep = '{"type": "call_queued", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    good = [json.dumps(queued(T0, "c1")), json.dumps(answered(T0 + 4, "c1"))]
    array = tmp_path / "e.json"
    array.write_text(f"[{good[0]}, {deep}, {good[1]}]")
    lines = write_lines(tmp_path / "e.ndjson", [good[0], deep, good[1]])
    for path, where in ((array, "element 1"), (lines, "line 2")):
        code, out, err = run_cli([str(path)], capsys)
        counters = json.loads(out)["counters"]
        assert code == 0
        assert (counters["events"], counters["rejected"]) == (2, 1)
        assert f"invalid_json 1: {where}" in summary_of(err)


def test_broken_json_array_is_exit_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An array that is not valid JSON cannot be replayed: exit 2, the file named."""
    array = tmp_path / "e.json"
    array.write_text(json.dumps([queued(T0, "c1")])[:-1])
    code, out, err = run_cli([str(array)], capsys)
    assert code == 2 and out == ""
    assert str(array) in err and "JSON array" in err


def test_format_ndjson_reads_a_bracket_line_as_a_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--format ndjson turns off the array detection: a '[' line is one rejected line."""
    path = write_lines(tmp_path / "e.ndjson", [json.dumps([queued(T0, "c1")]), queued(T0, "c2")])
    _, out, err = run_cli([str(path), "--format", "ndjson"], capsys)
    counters = json.loads(out)["counters"]
    assert (counters["events"], counters["rejected"]) == (1, 1)
    assert "not_an_object 1: line 1" in summary_of(err)


# ---- errors -------------------------------------------------------------------------------


def test_missing_file_is_exit_2_with_its_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that cannot be read is named on stderr with exit code 2."""
    with pytest.raises(SystemExit) as info:
        main(["replay", str(tmp_path / "nope.ndjson")])
    assert info.value.code == 2
    assert "nope.ndjson" in capsys.readouterr().err


def test_bad_config_is_exit_2_naming_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A configuration error stops the replay with file, key and problem on stderr."""
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[queues.sales]\nsl_threshold_s = 10\nshort_abandon_s = 12\n")
    code, out, err = run_cli([str(_events(tmp_path)), "--config", str(cfg)], capsys)
    assert code == 2 and out == ""
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
    path = write_lines(
        tmp_path / "events.ndjson",
        [queued(T0, "c1"), {"type": "agent_state", "ts": T0 + 60, "agent": "a", "state": "bogus"}],
    )
    code, out, err = run_cli([str(path)], capsys)
    doc = json.loads(out)
    assert code == 0
    assert (doc["as_of"], doc["counters"]["rejected"]) == (T0, 0)
    assert re.search(r"\b0 rejected\b", summary_of(err))
