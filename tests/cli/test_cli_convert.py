"""`callfloor convert`: a feed to canonical NDJSON, the summary, the rejects file, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from callfloor.cli import main
from callfloor.config import parse_config
from callfloor.events import Event
from callfloor.replay import replay_document

T0 = 1_795_424_400
LOG = f"""\
{T0}|NONE|sales|SIP/100|ADDMEMBER|
{T0 + 1}|c1|sales|NONE|ENTERQUEUE||5551234567|1
{T0 + 2}|NONE|NONE|NONE|CONFIGRELOAD|
{T0 + 3}|c1|sales|NONE|BEAM|5551234567
{T0 + 5}|c1|sales|SIP/100|CONNECT|4|c1.9|2
oops|c2|sales|NONE|ENTERQUEUE||5559876543|1
{T0 + 65}|c1|sales|SIP/100|COMPLETECALLER|4|60|1
"""


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["convert", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_convert_writes_canonical_events_and_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """stdout is NDJSON of valid canonical events; stderr one line: events, skipped by verb,
    rejected by reason with their lines."""
    path = tmp_path / "queue_log"
    path.write_text(LOG)
    code, out, err = run_cli(["--from", "queue_log", str(path)], capsys)
    events = [msgspec.json.decode(line, type=Event) for line in out.splitlines()]
    assert code == 0
    assert [type(e).__name__ for e in events] == [
        "AgentState",
        "CallQueued",
        "CallAnswered",
        "AgentState",
        "CallEnded",
        "AgentState",
    ]
    assert err.strip() == (
        "callfloor convert: 6 events written, 1 skipped (CONFIGRELOAD 1), "
        "2 rejected (invalid_ts 1: line 6; unknown_verb 1: line 4)"
    )


def test_rejects_go_to_a_file_without_caller_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--rejects writes each rejected record with its line, reason and redacted raw text;
    --strict makes them exit 1."""
    path = tmp_path / "queue_log"
    path.write_text(LOG)
    rejects = tmp_path / "rejects.ndjson"
    code, _, _ = run_cli(
        ["--from", "queue_log", str(path), "--rejects", str(rejects), "--strict", "--quiet"], capsys
    )
    rows = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert code == 1
    assert [(r["line"], r["reason"], r["raw"]) for r in rows] == [
        (4, "unknown_verb", f"{T0 + 3}|c1|sales|NONE|BEAM|[redacted]"),
        (6, "invalid_ts", "oops|c2|sales|NONE|ENTERQUEUE||[redacted]|1"),
    ]
    assert "555" not in rejects.read_text()


def test_converted_events_replay_to_the_same_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """convert and replay --format share the mapping: replaying convert's NDJSON gives the
    document of replaying the log itself (rejections aside)."""
    path = tmp_path / "queue_log"
    path.write_text(
        LOG.replace(f"{T0 + 3}|c1|sales|NONE|BEAM|5551234567\n", "").replace(
            "oops|c2|sales|NONE|ENTERQUEUE||5559876543|1\n", ""
        )
    )
    _, out, _ = run_cli(["--from", "queue_log", str(path)], capsys)
    ndjson = tmp_path / "events.ndjson"
    ndjson.write_text(out)
    cfg = parse_config({})
    assert replay_document([ndjson], cfg) == replay_document([path], cfg, fmt="queue_log")


def test_convert_reads_standard_input_as_it_comes(tmp_path: Path) -> None:
    """Without FILE (or with -) standard input is read, e.g. from `tail -f`."""
    for args in ([], ["-"]):
        done = subprocess.run(
            [sys.executable, "-m", "callfloor", "convert", "--from", "queue_log", *args],
            input=LOG,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert len(done.stdout.splitlines()) == 6


def test_convert_other_feeds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A database export (with its time zone), an AMI capture and Connect records convert."""
    export = tmp_path / "queuelog.csv"
    export.write_text(
        "time,callid,queuename,agent,event,data1,data2,data3,data4,data5\n"
        "2026-11-23 04:00:00,c1,sales,NONE,ENTERQUEUE,,5551234567,1,,\n"
    )
    code, out, _ = run_cli(
        ["--from", "queue_log_csv", "--timezone", "America/New_York", str(export)], capsys
    )
    assert code == 0 and json.loads(out)["ts"] == T0
    capture = tmp_path / "ami.txt"
    capture.write_bytes(
        b"Asterisk Call Manager/5.0.1\r\nEvent: QueueCallerJoin\r\n"
        b"Timestamp: 1795424400.5\r\nQueue: sales\r\nUniqueid: c1\r\n\r\n"
    )
    code, out, _ = run_cli(["--from", "ami", str(capture)], capsys)
    assert code == 0 and json.loads(out)["type"] == "call_queued"
    records = tmp_path / "connect.ndjson"
    records.write_text(
        json.dumps(
            {
                "id": "b1",
                "detail-type": "Amazon Connect Contact Event",
                "detail": {
                    "eventType": "QUEUED",
                    "contactId": "k1",
                    "channel": "CHAT",
                    "queueInfo": {
                        "queueArn": "arn:x/queue/q1",
                        "enqueueTimestamp": "2026-11-23T09:00:00Z",
                    },
                },
            }
        )
        + "\n"
    )
    code, out, _ = run_cli(["--from", "connect", str(records)], capsys)
    assert code == 0 and json.loads(out)["channel"] == "chat"


def test_an_export_without_a_known_header_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that names neither export layout stops with exit 2 and says what it expected."""
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n1,2,3\n")
    code, _, err = run_cli(["--from", "queue_log_csv", str(path)], capsys)
    assert code == 2
    assert "x.csv: the first line is not a queue_log table header" in err


def test_a_line_over_max_line_bytes_is_rejected_and_the_rest_converted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A line over --max-line-bytes is line_too_long with its line number; the lines
    after it are converted; --rejects keeps its first 4 KiB, its size and SHA-256."""
    long = f"{T0 + 2}|c9|sales|NONE|ENTERQUEUE||5551234567|".encode() + b"x" * 20_000
    path = tmp_path / "queue_log"
    lines = LOG.encode().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2]) + long + b"\n" + b"".join(lines[2:]))
    rejects = tmp_path / "rejects.ndjson"
    code, out, err = run_cli(
        ["--from", "queue_log", str(path), "--max-line-bytes", "8KiB", "--rejects", str(rejects)],
        capsys,
    )
    assert code == 0 and len(out.splitlines()) == 6
    assert "line_too_long 1: line 3" in err
    (row,) = [r for r in map(json.loads, rejects.read_text().splitlines()) if r["line"] == 3]
    assert row["reason"] == "line_too_long" and row["raw_size"] == len(long)
    assert len(row["raw"]) <= 4096 and "5551234567" not in row["raw"]
    with pytest.raises(SystemExit) as exited:
        run_cli(["--from", "queue_log", str(path), "--max-line-bytes", "10"], capsys)
    assert exited.value.code == 2
