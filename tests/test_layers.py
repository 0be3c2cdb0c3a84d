"""Import layering of the live shell: service -> web -> ingest, never back."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("callfloor.ingest.http", ("callfloor.service", "callfloor.web")),
        ("callfloor.ingest.simulated", ("callfloor.service", "callfloor.web")),
        ("callfloor.ingest.supervisor", ("callfloor.service", "callfloor.web")),
        ("callfloor.bus", ("callfloor.service", "callfloor.web", "aiohttp")),
        ("callfloor.web", ("callfloor.service",)),
    ],
)
def test_lower_layers_do_not_import_higher_ones(module: str, forbidden: tuple[str, ...]) -> None:
    """Importing a lower layer loads none of the layers above it (no import cycle)."""
    code = f"import sys, {module}\nprint(','.join(m for m in {forbidden!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
