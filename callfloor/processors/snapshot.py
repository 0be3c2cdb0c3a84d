"""The SPEC §7 document as plain data (for tests and callers that want dicts).

The typed document is ``proc.view.document()``; this is its plain-data form.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from callfloor.processors.engine import FloorProcessor

Doc = dict[str, Any]


def build_document(proc: FloorProcessor) -> Doc:
    """The SPEC §7 document at the processor's clock (tick it first), as plain data."""
    doc: Doc = msgspec.to_builtins(proc.view.document())
    return doc
