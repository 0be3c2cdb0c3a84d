"""The processors package stays pure: no I/O, no event loop, no wall clock."""

from __future__ import annotations

import ast
from pathlib import Path

import callfloor.feeds
import callfloor.processors

FORBIDDEN = {
    "asyncio",
    "aiohttp",
    "aiomqtt",
    "redis",
    "socket",
    "subprocess",
    "time",
    "urllib",
    "http",
    "threading",
    "random",
}


PURE_PACKAGES = (callfloor.processors, callfloor.feeds)
"""The pure core, and the feed mappers (records in, events out: no I/O, no clock)."""


def test_processors_import_no_io_modules() -> None:
    """No module under callfloor/processors or callfloor/feeds imports asyncio, networking,
    time or randomness."""
    offenders = []
    paths = [p for pkg in PURE_PACKAGES for p in sorted(Path(pkg.__file__).parent.glob("*.py"))]
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []
