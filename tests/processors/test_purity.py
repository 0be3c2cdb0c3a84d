"""The processors package stays pure: no I/O, no event loop, no wall clock."""

from __future__ import annotations

import ast
from pathlib import Path

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


def test_processors_import_no_io_modules() -> None:
    """No module under callfloor/processors imports asyncio, networking, time or randomness."""
    root = Path(callfloor.processors.__file__).parent
    offenders = []
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []
