"""Argument types shared by the subcommands: instants, durations, numbers, files.

Each is an argparse ``type``: it turns the text into a value or raises
``argparse.ArgumentTypeError`` with a message that says what was expected and what
was given (argparse prefixes the option name and exits with code 2). They also
accept values that are already numbers, so a command's ``run`` can re-check a
Namespace built by hand.
"""

from __future__ import annotations

import argparse
import math
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callfloor.config import parse_duration, parse_size

__all__ = [
    "duration",
    "finite",
    "fraction",
    "instant",
    "non_negative",
    "non_negative_int",
    "port",
    "positive",
    "positive_int",
    "readable_file",
    "readable_file_or_stdin",
    "target_fraction",
    "timezone",
]


def _number(value: object) -> float:
    if isinstance(value, bool):
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None


def _whole(value: object) -> int:
    if isinstance(value, bool):
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}")
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None


def finite(value: object) -> float:
    """Any finite number (``nan`` and ``inf`` are refused)."""
    number = _number(value)
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {value!r}")
    return number


def non_negative(value: object) -> float:
    """A finite number >= 0."""
    number = finite(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value!r}")
    return number


def positive(value: object) -> float:
    """A finite number > 0."""
    number = finite(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value!r}")
    return number


def fraction(value: object) -> float:
    """A share in [0, 1), such as shrinkage or a duplicate rate (0.3, not 30)."""
    number = finite(value)
    if not 0.0 <= number < 1.0:
        raise argparse.ArgumentTypeError(
            f"must be a fraction in [0, 1), e.g. 0.3 for 30%, got {value!r}"
        )
    return number


def target_fraction(value: object) -> float:
    """A target share in (0, 1], such as a service-level target (0.8, not 80)."""
    number = finite(value)
    if not 0.0 < number <= 1.0:
        raise argparse.ArgumentTypeError(
            f"must be a fraction in (0, 1], e.g. 0.8 for 80%, got {value!r}"
        )
    return number


def non_negative_int(value: object) -> int:
    """A whole number >= 0."""
    number = _whole(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {number}")
    return number


def positive_int(value: object) -> int:
    """A whole number >= 1."""
    number = _whole(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def line_limit(value: object) -> int:
    """A line length limit: bytes, or ``"64KiB"``, ``"4MiB"`` (256 bytes to 64 MiB)."""
    from callfloor.feeds.base import MAX_LINE_LIMIT

    try:
        size = parse_size(int(value) if isinstance(value, str) and value.isdigit() else value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not 256 <= size <= MAX_LINE_LIMIT:
        raise argparse.ArgumentTypeError(
            f"must be between 256 bytes and {MAX_LINE_LIMIT >> 20}MiB, got {size}"
        )
    return size


def port(value: object) -> int:
    """A TCP port, 1 to 65535."""
    number = _whole(value)
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port from 1 to 65535, got {number}")
    return number


def instant(value: object) -> float:
    """Epoch seconds from epoch seconds or an RFC 3339 time with an offset."""
    text = str(value)
    try:
        seconds = float(text)
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
        seconds = parsed.timestamp()
    if not math.isfinite(seconds) or seconds < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative epoch time, got {text!r}")
    return seconds


def duration(value: object) -> float:
    """Seconds > 0 from ``3600``, ``"90s"``, ``"15m"``, ``"8h"``, ``"1d"`` or ``"1h30m"``."""
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be longer than 0, got {value!r}")
    return seconds


def readable_file(value: object) -> str:
    """A path that can be opened for reading (checked now, so a typo fails fast)."""
    path = str(value)
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {path}: {exc.strerror}") from None
    return path


STDIN = "-"


def readable_file_or_stdin(value: object) -> str:
    """``-`` (standard input) or a path that can be opened for reading."""
    return STDIN if str(value) == STDIN else readable_file(value)


def timezone(value: object) -> str:
    """An IANA time zone name (``Asia/Shanghai``, ``UTC``)."""
    name = str(value)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(
            f"unknown time zone {name!r} (an IANA name such as Europe/Paris or UTC)"
        ) from None
    return name
