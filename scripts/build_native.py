"""Compile the pure core (``callfloor/processors``) and the queue_log mapper with mypyc, in place.

Optional: the same modules run as plain Python without it. Compiled, a replay runs
about 1.5x faster (docs/benchmarks.md). ``make native`` runs this; ``make clean``
removes the compiled modules again. Modules that define msgspec Structs (views,
limits, state, snapshot) stay Python: mypyc cannot compile their classes.

Usage: python scripts/build_native.py [ROOT]   (ROOT: a checkout, default this one)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mypyc.build import mypycify
from setuptools import setup

MODULES = (
    "deltalog",
    "windows",
    "calendar",
    "timers",
    "dedup",
    "violations",
    "agents",
    "calls",
    "queues",
    "engine",
    "effects",
    "admission",
    "late",
    "derive",
    "changes",
    "retention",
    "read",
    "erlang",
)


# The feed mappers' hot path (queue_log lines to events); their Structs (state.py) stay Python.
FEED_MODULES = ("base", "asterisk", "queue_log")


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
    os.chdir(root)
    paths = [f"callfloor/processors/{name}.py" for name in MODULES]
    feeds = [f"callfloor/feeds/{name}.py" for name in FEED_MODULES]
    setup(
        name="callfloor-native",
        ext_modules=mypycify(
            paths, opt_level="3", debug_level="0", group_name="callfloor.processors.native"
        )
        + mypycify(feeds, opt_level="3", debug_level="0", group_name="callfloor.feeds.native"),
        script_args=["build_ext", "--inplace", "--build-temp", "build/native"],
    )


if __name__ == "__main__":
    main()
