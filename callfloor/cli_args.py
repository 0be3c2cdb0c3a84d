"""Argument types shared by the subcommands."""

from __future__ import annotations

import argparse
import math
from datetime import datetime


def instant(text: str) -> float:
    """Epoch seconds from epoch seconds or an RFC 3339 time with an offset."""
    try:
        value = float(text)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected epoch seconds or an RFC 3339 time, got {text!r}"
            ) from None
        if parsed.tzinfo is None:
            raise argparse.ArgumentTypeError(
                f"RFC 3339 time needs an offset (Z or +hh:mm): {text!r}"
            ) from None
        value = parsed.timestamp()
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative epoch time, got {text!r}")
    return value
