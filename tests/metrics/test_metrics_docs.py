"""docs/metrics.md is generated from the catalogue and lists every family."""

from __future__ import annotations

from pathlib import Path

from callfloor.metrics.catalogue import CATALOGUE, LABELS
from callfloor.metrics.docs import main, render_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def test_docs_list_every_family_and_label() -> None:
    """Every catalogue family and every label has a row in docs/metrics.md."""
    text = DOC.read_text(encoding="utf-8")
    for family in CATALOGUE:
        assert f"| `{family.name}` | {family.type} |" in text, family.name
    for label in LABELS:
        assert f"| `{label}` |" in text, label


def test_docs_are_what_the_catalogue_generates() -> None:
    """docs/metrics.md is exactly the generated page (regenerate it with --write)."""
    assert main(["--check", str(DOC)]) == 0
    assert DOC.read_text(encoding="utf-8") == render_markdown()


def test_check_fails_on_a_stale_page(tmp_path: Path) -> None:
    """--check exits 1 for a page that differs from the catalogue."""
    stale = tmp_path / "metrics.md"
    stale.write_text(render_markdown().replace("callfloor_open_legs", "x"), encoding="utf-8")
    assert main(["--check", str(stale)]) == 1
