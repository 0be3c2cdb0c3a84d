"""`callfloor replay --format` for the feeds, and `replay -` (standard input)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from callfloor.cli import main

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
PBXWARE = REAL / "asterisk-queue-log-pbxware-2018" / "queue_log.csv"

T0 = 1_795_424_400
LOG = f"""\
{T0}|NONE|sales|SIP/100|ADDMEMBER|
{T0 + 1}|c1|sales|NONE|ENTERQUEUE||5551234567|1
{T0 + 2}|NONE|NONE|NONE|CONFIGRELOAD|
{T0 + 3}|NONE|NONE|NONE|CONFIGRELOAD|
{T0 + 4}|c1|sales|NONE|DID|5550000
{T0 + 5}|c1|sales|SIP/100|CONNECT|4|c1.9|2
{T0 + 6}|c1|sales|NONE|BEAM|5551234567
{T0 + 7}|c2|sales|NONE|ENTERQUEUE||5550101|1
{T0 + 65}|c1|sales|SIP/100|COMPLETECALLER|4|60|1
"""


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["replay", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_summary_says_what_was_skipped_and_rejected_by_verb(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A queue_log replays through the mapping; the summary counts skipped records by verb
    and rejected ones by reason (with lines) and by verb."""
    path = tmp_path / "queue_log"
    path.write_text(LOG)
    code, out, err = run_cli([str(path), "--format", "queue_log"], capsys)
    doc = json.loads(out)
    assert code == 0
    assert doc["queues"]["sales"]["windows"]["15m"]["offered"] == 2
    assert doc["counters"]["rejected"] == 1
    assert (
        "1 rejected (unknown_verb 1: line 7), 0 duplicates, 0 late, "
        "3 skipped (CONFIGRELOAD 2, DID 1), rejected by verb (BEAM 1), as_of"
    ) in err


def test_replay_reads_standard_input(tmp_path: Path) -> None:
    """`replay -` reads standard input (it used to say "No such file or directory"), for
    NDJSON and for the feed formats, with positions naming "-"."""
    ndjson = "".join(
        json.dumps(e) + "\n"
        for e in [
            {"type": "call_queued", "ts": T0, "call_id": "c1", "queue": "sales"},
            {"type": "call_answered", "ts": T0 + 4, "call_id": "c1", "agent": "a"},
            {"type": "call_nonsense", "ts": T0 + 1},
            {"type": "call_ended", "ts": T0 + 9, "call_id": "c1", "agent": "a"},
        ]
    )
    done = subprocess.run(
        [sys.executable, "-m", "callfloor", "replay", "-", "--output", "json"],
        input=ndjson,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["queues"]["sales"]["windows"]["15m"]["answered"] == 1
    assert "unknown_type 1: line 3" in done.stderr
    feed = subprocess.run(
        [sys.executable, "-m", "callfloor", "replay", "-", "--format", "queue_log"],
        input=LOG,
        capture_output=True,
        text=True,
        check=False,
    )
    assert feed.returncode == 0, feed.stderr
    assert json.loads(feed.stdout)["queues"]["sales"]["windows"]["15m"]["offered"] == 2
    other = tmp_path / "more.ndjson"
    other.write_text(ndjson)
    both = subprocess.run(
        [sys.executable, "-m", "callfloor", "replay", str(other), "-"],
        input=ndjson,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "- line 3" in both.stderr and "more.ndjson line 3" in both.stderr


def test_stdin_can_be_given_once(capsys: pytest.CaptureFixture[str]) -> None:
    """Standard input named twice is an error (exit 2), not an empty second file."""
    code, _, err = run_cli(["-", "-"], capsys)
    assert code == 2
    assert "standard input (-) can be given once" in err


def test_site_and_timezone_belong_to_the_feed_formats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--site and --timezone with NDJSON would silently do nothing: exit 2 instead."""
    path = tmp_path / "e.ndjson"
    path.write_text("")
    code, _, err = run_cli([str(path), "--site", "ny"], capsys)
    assert code == 2
    assert "apply to the feed formats" in err


def test_site_places_queues_the_configuration_does_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--site is the site of the log's queues and agents when the config places none."""
    path = tmp_path / "queue_log"
    path.write_text(LOG)
    code, out, _ = run_cli([str(path), "--format", "queue_log", "--site", "lon"], capsys)
    doc = json.loads(out)
    assert code == 0
    assert doc["queues"]["sales"]["site"] == "lon"
    assert list(doc["sites"]) == ["lon"]


def test_an_export_without_a_known_header_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """replay --format queue_log_csv of a file with another header exits 2 naming it."""
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    code, out, err = run_cli([str(path), "--format", "queue_log_csv"], capsys)
    assert (code, out) == (2, "")
    assert "x.csv: the first line is not a queue_log table header" in err


@pytest.mark.skipif(not PBXWARE.exists(), reason="real data folder absent")
def test_the_real_pbxware_export_replays_on_the_command_line() -> None:
    """`callfloor replay --format queue_log_csv` runs over the real export without a crash."""
    done = subprocess.run(
        [sys.executable, "-m", "callfloor", "replay", str(PBXWARE), "--format", "queue_log_csv"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["queues"]["IT"]["windows"]["today"]["offered"] > 0
    assert "0 rejected" in done.stderr and "11 skipped (CONFIGRELOAD 11)" in done.stderr


def test_a_line_over_the_limit_is_rejected_with_its_line_in_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 2 MB line (over the 1 MiB default) is line_too_long, named by its line in the
    summary; the calls around it replay as without it."""
    path = tmp_path / "queue_log"
    lines = LOG.encode().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2]) + b"9|" + b"x" * (2 << 20) + b"\n" + b"".join(lines[2:]))
    code, out, err = run_cli([str(path), "--format", "queue_log"], capsys)
    assert code == 0
    assert json.loads(out)["queues"]["sales"]["windows"]["15m"]["offered"] == 2
    assert "line_too_long 1: line 3" in err
