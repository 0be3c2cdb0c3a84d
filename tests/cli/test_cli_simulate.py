"""``callfloor simulate``: NDJSON output, the matching config and argument errors."""

from __future__ import annotations

import argparse
import time
import tomllib
from pathlib import Path

import msgspec
import pytest

from callfloor.cli import simulate as cli_simulate
from callfloor.simulator import FloorSimulation, build_spec


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="callfloor")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_simulate.add_parser(sub)
    args = parser.parse_args(["simulate", *argv])
    code: int = args.func(args)
    return code


def _lines(path: Path) -> list[dict[str, object]]:
    return [msgspec.json.decode(line) for line in path.read_bytes().splitlines()]


def test_writes_ndjson_file_and_matching_config(tmp_path: Path) -> None:
    """--output gets one event per line and --write-config a TOML naming the events' queues."""
    out, cfg = tmp_path / "events.ndjson", tmp_path / "floor.toml"
    code = _run(
        ["--seed", "3", "--duration", "2h", "--output", str(out), "--write-config", str(cfg)]
    )
    assert code == 0
    events = _lines(out)
    assert len(events) > 1000
    config = tomllib.loads(cfg.read_text())
    queues = {e["queue"] for e in events if e["type"] == "call_queued"}
    assert queues <= set(config["queues"])


def test_output_equals_the_library_events(tmp_path: Path) -> None:
    """The file holds exactly FloorSimulation(build_spec(...)).events(start, duration)."""
    out = tmp_path / "events.ndjson"
    assert (
        _run(
            [
                "--agents",
                "12",
                "--queues",
                "3",
                "--sites",
                "1",
                "--duration",
                "90m",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    sim = FloorSimulation(build_spec(agents=12, queues=3, sites=1, seed=1))
    expected = msgspec.json.Encoder().encode_lines(
        list(sim.events(cli_simulate.DEFAULT_START, 5400))
    )
    assert out.read_bytes() == expected


def test_default_output_is_stdout(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """Without --output the NDJSON goes to standard output."""
    assert _run(["--duration", "15m"]) == 0
    lines = capsysbinary.readouterr().out.splitlines()
    assert lines and all(msgspec.json.decode(line)["type"] for line in lines)


def test_start_accepts_rfc3339_and_epoch_alike(tmp_path: Path) -> None:
    """--start 2026-11-23T08:00:00+08:00 and its epoch seconds give the same output."""
    a, b = tmp_path / "a.ndjson", tmp_path / "b.ndjson"
    assert (
        _run(["--start", "2026-11-23T08:00:00+08:00", "--duration", "30m", "--output", str(a)]) == 0
    )
    assert _run(["--start", "1795392000", "--duration", "1800", "--output", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()


def test_bad_duration_exits_2_naming_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    """An unparsable --duration stops with exit code 2 and a message naming --duration."""
    with pytest.raises(SystemExit) as exc:
        _run(["--duration", "eight hours"])
    assert exc.value.code == 2
    assert "--duration" in capsys.readouterr().err


def test_start_without_offset_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An RFC 3339 --start without a UTC offset is refused, naming --start."""
    with pytest.raises(SystemExit) as exc:
        _run(["--start", "2026-11-23T08:00:00"])
    assert exc.value.code == 2
    assert "--start" in capsys.readouterr().err


def test_fewer_queues_than_sites_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """Every site needs a queue: --queues below --sites gives exit code 2 naming both."""
    assert _run(["--queues", "2", "--sites", "3"]) == 2
    err = capsys.readouterr().err
    assert "--queues" in err and "--sites" in err


def test_unwritable_output_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An --output path that cannot be opened gives exit code 2 naming --output."""
    assert _run(["--output", str(tmp_path / "missing" / "x.ndjson")]) == 2
    assert "--output" in capsys.readouterr().err


def test_realtime_shifts_event_times_to_now(tmp_path: Path) -> None:
    """With --realtime and --start the stream begins at the current time."""
    out = tmp_path / "rt.ndjson"
    before = time.time()
    code = _run(
        [
            "--realtime",
            "--speed",
            "100000",
            "--start",
            "1795392000",
            "--duration",
            "10m",
            "--output",
            str(out),
        ]
    )
    assert code == 0
    ts = [float(str(e["ts"])) for e in _lines(out)]
    assert ts and before - 1 <= ts[0] <= time.time() + 1
    assert ts == sorted(ts)
