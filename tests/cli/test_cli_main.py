"""The ``callfloor`` entry point: commands, the installed script, shared error handling."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from callfloor.cli import build_parser, main, serve

ROOT = Path(__file__).resolve().parents[2]


def test_the_console_script_entry_point_is_main() -> None:
    """pyproject's `callfloor` script resolves to callfloor.cli.main."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["callfloor"].partition(":")
    assert getattr(importlib.import_module(module), name) is main


def test_every_command_is_listed_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    """--help names replay, erlang, simulate, demo and serve."""
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0
    for command in ("replay", "erlang", "simulate", "demo", "serve"):
        assert command in out


def test_serve_namespace_holds_config_host_and_port() -> None:
    """`serve` hands run_serve a Namespace with config, host and port."""
    args = build_parser().parse_args(["serve", "--config", "f.toml", "--port", "9100"])
    assert (args.config, args.host, args.port) == ("f.toml", None, 9100)
    assert args.func is serve.run_serve


def test_demo_namespace_holds_its_settings_with_defaults() -> None:
    """`demo` hands run_demo host, port, seed, agents, queues, speed and config."""
    args = build_parser().parse_args(["demo", "--agents", "12", "--speed", "5"])
    assert (args.host, args.port, args.seed) == ("127.0.0.1", 8080, 1)
    assert (args.agents, args.queues, args.speed, args.config) == (12, 8, 5.0, None)
    assert args.func is serve.run_demo


@pytest.mark.parametrize(
    "argv",
    [["serve", "--port", "70000"], ["demo", "--port", "http"], ["demo", "--agents", "0"]],
)
def test_bad_serve_and_demo_options_are_usage_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """An impossible port or floor size stops at parsing with exit 2, naming the option."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert f"argument {argv[1]}" in capsys.readouterr().err


def test_a_closed_pipe_ends_quietly() -> None:
    """`callfloor simulate | head -1` exits 0 with nothing on stderr."""
    proc = subprocess.run(
        # pipefail: the exit status is callfloor's, not head's.
        ["bash", "-o", "pipefail", "-c", f"{sys.executable} -m callfloor simulate | head -n 1"],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0
    assert proc.stdout.count(b"\n") == 1
    assert proc.stderr == b""
