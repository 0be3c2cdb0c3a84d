"""Tests for the ``callfloor erlang`` subcommand (callfloor.cli.erlang)."""

from __future__ import annotations

import argparse
import json
import math
import os
import pty
import re
import subprocess
import sys
from typing import Any

import pytest

from callfloor.cli import erlang as cli_erlang
from callfloor.processors.erlang import (
    DEFAULT_MAX_AGENTS,
    erlang_a,
    erlang_c,
    least_agents_c,
    service_level_c,
)

KEYS = {
    "offered_load_erlangs",
    "p_wait",
    "asa_s",
    "service_level",
    "occupancy",
    "p_abandon",
    "required_agents",
    "scheduled_agents",
}
WORKED = ["--rate-per-s", str(100 / 1800), "--aht-s", "180", "--threshold-s", "20"]


def make_parser() -> argparse.ArgumentParser:
    """A stand-in for callfloor.cli: a root parser with the erlang subcommand."""
    parser = argparse.ArgumentParser(prog="callfloor")
    cli_erlang.add_parser(parser.add_subparsers())
    return parser


def invoke(argv: list[str]) -> int:
    args = make_parser().parse_args(["erlang", *argv])
    result: int = args.func(args)
    return result


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert invoke(argv) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def test_worked_example(capsys: pytest.CaptureFixture[str]) -> None:
    """100 calls / 30 min, AHT 180 s, 80/20, 30% shrinkage gives 14 required and 20 rostered."""
    out = run_json([*WORKED, "--target", "0.8", "--shrinkage", "0.3", "--output", "json"], capsys)
    assert out["offered_load_erlangs"] == pytest.approx(10.0)
    assert out["required_agents"] == 14
    assert round(out["p_wait"], 4) == 0.1741
    assert round(out["asa_s"], 3) == 7.836
    assert round(out["service_level"], 4) == 0.8884
    assert out["occupancy"] == pytest.approx(10 / 14)
    assert out["p_abandon"] is None
    assert out["scheduled_agents"] == 20


def test_worked_example_with_rounded_rate(capsys: pytest.CaptureFixture[str]) -> None:
    """A rate typed as 0.0555555556 reproduces the worked example to the stated places."""
    argv = ["--rate-per-s", "0.0555555556", "--aht-s", "180", "--threshold-s", "20"]
    out = run_json([*argv, "--shrinkage", "0.3"], capsys)
    assert (out["required_agents"], out["scheduled_agents"]) == (14, 20)
    assert (round(out["p_wait"], 4), round(out["asa_s"], 3)) == (0.1741, 7.836)
    assert round(out["service_level"], 4) == 0.8884


def test_json_has_exactly_the_contract_keys(capsys: pytest.CaptureFixture[str]) -> None:
    """The JSON object carries exactly the documented keys."""
    assert set(run_json(WORKED, capsys)) == KEYS


def test_defaults_are_target_80_and_no_shrinkage(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --target and --shrinkage the target is 0.8 and scheduled equals required."""
    out = run_json(WORKED, capsys)
    assert out["required_agents"] == 14
    assert out["scheduled_agents"] == 14


def test_agents_option_describes_that_staffing(capsys: pytest.CaptureFixture[str]) -> None:
    """--agents N reports N's measures while required_agents stays the target's answer."""
    out = run_json([*WORKED, "--agents", "16"], capsys)
    assert out["required_agents"] == 14
    assert out["p_wait"] == pytest.approx(erlang_c(16, 10.0))
    assert out["service_level"] == pytest.approx(service_level_c(16, 10.0, 20.0, 180.0))
    assert out["occupancy"] == pytest.approx(10 / 16)


def test_understaffed_erlang_c_reports_limits(capsys: pytest.CaptureFixture[str]) -> None:
    """N <= load gives p_wait 1, SL 0, occupancy 1 and a null (unbounded) ASA."""
    out = run_json([*WORKED, "--agents", "10"], capsys)
    assert (out["p_wait"], out["service_level"], out["occupancy"]) == (1.0, 0.0, 1.0)
    assert out["asa_s"] is None


def test_patience_switches_to_erlang_a(capsys: pytest.CaptureFixture[str]) -> None:
    """--patience-s reports Erlang A measures, including abandonment."""
    out = run_json([*WORKED, "--patience-s", "120"], capsys)
    expected = erlang_a(out["required_agents"], 100 / 1800, 180.0, 120.0, 20.0)
    assert out["required_agents"] == 12
    assert out["p_abandon"] == pytest.approx(expected.p_abandon)
    assert out["service_level"] == pytest.approx(expected.service_level)
    assert out["asa_s"] == pytest.approx(expected.asa_s)


def test_erlang_a_understaffed_stays_finite(capsys: pytest.CaptureFixture[str]) -> None:
    """With patience, fewer agents than Erlangs still give a finite ASA."""
    out = run_json([*WORKED, "--patience-s", "120", "--agents", "8"], capsys)
    assert out["asa_s"] is not None and out["asa_s"] > 0
    assert 0.0 < out["p_abandon"] < 1.0


def test_two_thousand_agents(capsys: pytest.CaptureFixture[str]) -> None:
    """1,900 Erlangs at 2,000 agents give finite values within [0, 1], with and without patience."""
    argv = ["--rate-per-s", str(1900 / 180), "--aht-s", "180", "--threshold-s", "20"]
    for extra in ([], ["--patience-s", "300"]):
        out = run_json([*argv, "--agents", "2000", *extra], capsys)
        for key in ("p_wait", "service_level", "occupancy"):
            assert 0.0 <= out[key] <= 1.0
        if extra:
            assert 0.0 <= out["p_abandon"] <= 1.0
        assert math.isfinite(out["asa_s"])
        assert out["required_agents"] > 1000


def test_text_output_is_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    """--output text prints a human table naming the required and scheduled agents."""
    assert invoke([*WORKED, "--shrinkage", "0.3", "--output", "text"]) == 0
    text = capsys.readouterr().out
    assert "required agents   14" in text
    assert "scheduled agents  20" in text
    assert "88.8%" in text


def test_text_output_shows_unbounded_asa(capsys: pytest.CaptureFixture[str]) -> None:
    """An unstable Erlang C queue shows its ASA as inf in text output."""
    assert invoke([*WORKED, "--agents", "9", "--output", "text"]) == 0
    assert "inf" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--rate-per-s", "-0.1"),
        ("--aht-s", "0"),
        ("--aht-s", "-5"),
        ("--threshold-s", "-1"),
        ("--target", "0"),
        ("--target", "80"),
        ("--shrinkage", "1"),
        ("--shrinkage", "-0.2"),
        ("--patience-s", "0"),
        ("--agents", "-1"),
        ("--max-agents", "0"),
        ("--aht-s", "nan"),
        ("--rate-per-s", "lots"),
    ],
)
def test_bad_input_exits_2_naming_the_option(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An invalid value exits with code 2 and names the option on stderr."""
    base = {"--rate-per-s": "0.05", "--aht-s": "180", "--threshold-s": "20"}
    base[option] = value
    argv = [item for pair in base.items() for item in pair]
    with pytest.raises(SystemExit) as exc:
        invoke(argv)
    assert exc.value.code == 2
    assert f"argument {option}" in capsys.readouterr().err


def test_run_validates_hand_built_namespace(capsys: pytest.CaptureFixture[str]) -> None:
    """run() given an invalid Namespace directly returns 2 with a message on stderr."""
    args = argparse.Namespace(
        rate_per_s=0.05,
        aht_s=-1.0,
        threshold_s=20.0,
        agents=None,
        target=0.8,
        patience_s=None,
        shrinkage=0.0,
        max_agents=None,
        output="json",
    )
    assert cli_erlang.run(args) == 2
    captured = capsys.readouterr()
    assert "--aht-s" in captured.err
    assert captured.out == ""


def test_help_documents_unstable_queue_choice(capsys: pytest.CaptureFixture[str]) -> None:
    """--help explains the null ASA of an unstable Erlang C queue and the defaults."""
    with pytest.raises(SystemExit) as exc:
        make_parser().parse_args(["erlang", "--help"])
    assert exc.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())  # wrapping depends on COLUMNS
    assert "null" in help_text and "N <= offered load" in help_text
    assert "default: 0.0" in help_text and "default: 0.8" in help_text


def test_erlang_c_has_no_abandon_probability(capsys: pytest.CaptureFixture[str]) -> None:
    """Erlang C callers never hang up: p_abandon is null, and the table says why."""
    assert run_json(WORKED, capsys)["p_abandon"] is None
    assert invoke([*WORKED, "--output", "text"]) == 0
    assert "n/a (Erlang C" in capsys.readouterr().out


def test_load_beyond_the_search_limit_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A load no staffing up to the limit can carry exits 2, never printing the limit."""
    argv = ["--rate-per-s", "10000", "--aht-s", "180", "--threshold-s", "20"]
    assert invoke(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "search limit" in captured.err and str(DEFAULT_MAX_AGENTS) in captured.err


def test_max_agents_sets_the_search_limit(capsys: pytest.CaptureFixture[str]) -> None:
    """The answer is found when it is within --max-agents and is an error just below it."""
    needed = least_agents_c(10.0, 180.0, 20.0, 0.8)
    assert needed is not None
    assert run_json([*WORKED, "--max-agents", str(needed)], capsys)["required_agents"] == needed
    assert invoke([*WORKED, "--max-agents", str(needed - 1)]) == 2
    assert "--max-agents" in capsys.readouterr().err


def test_unreachable_erlang_a_target_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    """With patience a target of 1.0 is never met, which is reported, not answered."""
    assert invoke([*WORKED, "--patience-s", "120", "--target", "1", "--max-agents", "40"]) == 2
    assert "search limit" in capsys.readouterr().err


def test_agents_above_the_search_limit_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """--agents beyond --max-agents is a usage error naming both options."""
    assert invoke([*WORKED, "--agents", "50", "--max-agents", "40"]) == 2
    err = capsys.readouterr().err
    assert "--agents" in err and "--max-agents" in err


def test_text_table_values_are_aligned(capsys: pytest.CaptureFixture[str]) -> None:
    """Every labelled row of the table starts its value in the same column."""
    assert invoke([*WORKED, "--patience-s", "120", "--output", "text"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    labelled = [m for row in rows if (m := re.match(r"  (\S.*?) {2,}(\S)", row))]
    assert len(labelled) >= 8
    assert len({m.start(2) for m in labelled}) == 1


def _erlang_process(stdout: int) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "callfloor", "erlang", *WORKED],
        stdout=stdout,
        stderr=subprocess.PIPE,
        timeout=60,
    )


def test_default_output_is_json_when_piped() -> None:
    """Without --output, a pipe gets the JSON object."""
    proc = _erlang_process(subprocess.PIPE)
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads(proc.stdout)) == KEYS


def test_default_output_is_a_table_on_a_terminal() -> None:
    """Without --output, a terminal gets the table for people."""
    master, slave = pty.openpty()
    try:
        proc = _erlang_process(slave)
    finally:
        os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the terminal's other end is closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    text = b"".join(chunks).decode()
    assert proc.returncode == 0, proc.stderr
    assert text.startswith("Erlang C:") and "required agents" in text
