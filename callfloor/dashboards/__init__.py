"""Grafana wall boards generated from the metric catalogue (``callfloor dashboards``).

The boards are written as Grafana dashboard JSON with grafana-foundation-sdk (the
build for Grafana 11.6, see docs/decisions.md): "Call floor", "Agents", "Operations"
and, once alert families exist, "Alerts". Which families a board draws, and how (panel
kind, aggregation across processes, unit, thresholds), comes from each family's hints
in :mod:`callfloor.metrics.catalogue`; the thresholds' numbers come from the
configuration. The output is deterministic: sorted keys, stable panel ids, so the
committed files in ``deploy/grafana/dashboards`` are checked against it by a test.

Each board is one entry of :data:`BOARDS` (a file name and a function of the
configuration); a new board is a function and one line there.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Final

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from callfloor.config import Config, ConfigError, parse_config
from callfloor.dashboards import boards

__all__ = ["BOARDS", "BoardError", "board_config", "check", "generate", "render", "write"]

BoardBuilder = Callable[[Config], dashboard.Dashboard | None]

BOARDS: Final[tuple[tuple[str, BoardBuilder], ...]] = (
    ("callfloor-floor.json", boards.floor),
    ("callfloor-agents.json", lambda config: boards.sectioned(boards.AGENTS, config)),
    ("callfloor-operations.json", lambda config: boards.sectioned(boards.OPERATIONS, config)),
    ("callfloor-alerts.json", lambda config: boards.sectioned(boards.ALERTS, config)),
)
"""Every board: its file name and how it is built (None: nothing to draw, not written)."""


# Sections that configure the process, not the floor: the boards never read them, and
# their secrets ("env:CALLFLOOR_TOKEN") need not be set to generate the boards.
_PROCESS_SECTIONS: Final = ("http", "store", "sources", "ingest")


def board_config(path: str | Path | None) -> Config:
    """The configuration the boards read (queues, sites, windows) from a TOML file, as
    ``serve`` reads it but without the process's own sections; None: the defaults."""
    if path is None:
        return Config()
    source = str(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{source}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    for section in _PROCESS_SECTIONS:
        data.pop(section, None)
    return parse_config(data, source)


class BoardError(ValueError):
    """A generated board is not valid: two panels share an id."""


def render(board: dashboard.Dashboard) -> str:
    """The board as Grafana dashboard JSON: sorted keys, two-space indent, final newline."""
    data = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    ids = [panel["id"] for panel in data.get("panels", [])]
    if len(ids) != len(set(ids)):
        raise BoardError(f"{data['uid']}: two panels share an id; rename one panel's key")
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def generate(config: Config) -> dict[str, str]:
    """Every board that has something to draw: file name -> JSON text."""
    out = {}
    for name, build in BOARDS:
        board = build(config)
        if board is not None:
            out[name] = render(board)
    return out


def write(out_dir: Path, config: Config) -> list[Path]:
    """Write every board into ``out_dir`` (created); the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in generate(config).items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def check(out_dir: Path, config: Config) -> list[str]:
    """What differs between ``out_dir`` and the generator: files out of date, missing, or
    generated before but no longer (empty when they agree)."""
    wanted = generate(config)
    problems = []
    for name, text in wanted.items():
        path = out_dir / name
        if not path.exists():
            problems.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: out of date")
    known = {name for name, _ in BOARDS}
    for path in sorted(out_dir.glob("*.json")):
        if path.name in known and path.name not in wanted:
            problems.append(f"{path}: no longer generated (nothing to draw)")
    return problems
