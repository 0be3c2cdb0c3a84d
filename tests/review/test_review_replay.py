"""Review: `callfloor replay` input forms (byte order marks, lines holding two objects,
line ends, pipes) and the same forms over HTTP ingest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from helpers import T0
from live import post, running

from callfloor.cli import main
from callfloor.ingest.decode import decode_request

BOM = b"\xef\xbb\xbf"


def _queued(ts: float, call: str) -> dict[str, Any]:
    return {"type": "call_queued", "ts": ts, "call_id": call, "queue": "sales"}


EVENTS = [_queued(T0, "c1"), _queued(T0 + 1, "c2"), _queued(T0 + 2, "c3")]
LINES = [json.dumps(e).encode() for e in EVENTS]


def _replay(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any], str]:
    code = main(["replay", str(path)])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out else {}), err


def _reference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    path = tmp_path / "plain.ndjson"
    path.write_bytes(b"\n".join(LINES) + b"\n")
    code, doc, _ = _replay(path, capsys)
    assert code == 0 and doc["counters"]["events"] == 3
    return doc


@pytest.mark.parametrize(
    "content",
    [
        BOM + b"\n".join(LINES) + b"\n",
        BOM + json.dumps(EVENTS).encode(),
        BOM + json.dumps(EVENTS, indent=2).encode(),
    ],
    ids=["ndjson", "json-array", "pretty-json-array"],
)
def test_a_byte_order_mark_is_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    """A file saved with a UTF-8 byte order mark (Windows editors, PowerShell) replays like
    the same file without one: the first event is not lost, an array is read as an array."""
    expected = _reference(tmp_path, capsys)
    path = tmp_path / "bom.json"
    path.write_bytes(content)
    code, doc, err = _replay(path, capsys)
    assert (code, doc) == (0, expected), err


def test_a_line_with_two_objects_is_one_rejected_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two objects on one line are one invalid line (as when another line is bad), never
    two events and never a crash while naming positions."""
    path = tmp_path / "two.ndjson"
    path.write_bytes(LINES[0] + b" " + LINES[1] + b"\n" + LINES[2] + b"\n")
    code, doc, err = _replay(path, capsys)
    assert code == 0, err
    assert (doc["counters"]["events"], doc["counters"]["rejected"]) == (1, 1)
    assert "invalid_json 1: line 1" in err


def test_a_line_with_two_objects_is_judged_alike_beside_blank_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A blank line elsewhere in the file does not turn a two-object line into events."""
    path = tmp_path / "two.ndjson"
    path.write_bytes(LINES[0] + b" " + LINES[1] + b"\n\n" + LINES[2] + b"\n")
    code, doc, err = _replay(path, capsys)
    assert code == 0, err
    assert (doc["counters"]["events"], doc["counters"]["rejected"]) == (1, 1)
    assert "invalid_json 1: line 1" in err


def test_lines_ended_by_a_lone_carriage_return_are_rejected_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file with classic Mac line ends (CR only) has one line: it is rejected with its
    position, exit 0, not a traceback."""
    path = tmp_path / "cr.ndjson"
    path.write_bytes(b"\r".join(LINES) + b"\r")
    code, doc, err = _replay(path, capsys)
    assert code == 0, err
    assert doc["counters"]["rejected"] == 1
    assert "invalid_json 1: line 1" in err


def test_crlf_line_ends_and_a_missing_last_newline_replay_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """CRLF line ends, blank CRLF lines and a last line without a newline change nothing."""
    expected = _reference(tmp_path, capsys)
    for name, content in (
        ("crlf", b"\r\n".join(LINES) + b"\r\n"),
        ("crlf-blank", b"\r\n\r\n".join(LINES) + b"\r\n  \r\n"),
        ("no-newline", b"\n".join(LINES)),
    ):
        path = tmp_path / f"{name}.ndjson"
        path.write_bytes(content)
        code, doc, err = _replay(path, capsys)
        assert (code, doc) == (0, expected), (name, err)


def test_a_pipe_is_refused_with_exit_2_not_replayed_as_empty(tmp_path: Path) -> None:
    """`callfloor replay /dev/stdin` from a pipe exits 2 naming the problem; it used to
    print an empty document with exit 0 (the format sniff had read the pipe)."""
    done = subprocess.run(
        [sys.executable, "-m", "callfloor", "replay", "/dev/stdin"],
        input=b"\n".join(LINES) + b"\n",
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout
    assert done.stdout == b""
    assert b"not a regular file" in done.stderr


def test_stdin_redirected_from_a_file_still_replays(tmp_path: Path) -> None:
    """`callfloor replay /dev/stdin < file` reads a regular file and is taken."""
    path = tmp_path / "plain.ndjson"
    path.write_bytes(b"\n".join(LINES) + b"\n")
    with path.open("rb") as stdin:
        done = subprocess.run(
            [sys.executable, "-m", "callfloor", "replay", "/dev/stdin"],
            stdin=stdin,
            capture_output=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["counters"]["events"] == 3


# ---- the same input forms over HTTP --------------------------------------------------


@pytest.mark.parametrize("blank", [b"", b"\n"], ids=["no-blank-line", "a-blank-line"])
def test_ingest_judges_a_two_object_line_alike_with_or_without_blank_lines(blank: bytes) -> None:
    """A request body's two-object line is one invalid line whether or not a blank line
    is elsewhere in the body, and the positions are the body's lines."""
    decoded = decode_request(LINES[0] + b" " + LINES[1] + b"\n" + blank + LINES[2])
    assert [(r.index, r.reason) for r in decoded.rejections] == [(0, "invalid_json")]
    assert decoded.positions == [1 + len(blank)]


async def test_ingest_skips_a_byte_order_mark() -> None:
    """A body that starts with a UTF-8 byte order mark is taken whole (RFC 8259 lets a
    parser ignore it), as NDJSON and as a JSON array."""
    live = [_queued(T0 - 30, "c1"), _queued(T0 - 29, "c2")]
    lines = b"\n".join(json.dumps(e).encode() for e in live)
    async with running() as (_, base), aiohttp.ClientSession() as http:
        ndjson_status, ndjson_reply = await post(http, base, BOM + lines)
        array_status, array_reply = await post(
            http,
            base,
            BOM + json.dumps(live).encode(),
            {"Content-Type": "application/json"},
        )
    assert (ndjson_status, ndjson_reply["accepted"], ndjson_reply["rejected_total"]) == (202, 2, 0)
    assert (array_status, array_reply["duplicates_total"], array_reply["rejected_total"]) == (
        202,
        2,
        0,
    )
