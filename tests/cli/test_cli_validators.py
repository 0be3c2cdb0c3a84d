"""Shared argument types: each accepts what it documents and names the problem otherwise."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pytest

from callfloor.cli import validators as v


def refused(check: Callable[[object], object], value: object) -> str:
    """The message of the ArgumentTypeError ``check`` raises for ``value``."""
    with pytest.raises(argparse.ArgumentTypeError) as info:
        check(value)
    return str(info.value)


def test_instant_reads_epoch_seconds_and_rfc3339_alike() -> None:
    """Epoch seconds and RFC 3339 with an offset give the same instant."""
    assert v.instant("1795392000") == v.instant("2026-11-23T08:00:00+08:00") == 1795392000.0
    assert v.instant("2026-11-23T00:00:00Z") == 1795392000.0


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("2026-11-23T08:00:00", "offset"),
        ("next tuesday", "RFC 3339"),
        ("-5", "non-negative"),
        ("inf", "non-negative"),
    ],
)
def test_instant_names_what_is_wrong(text: str, words: str) -> None:
    """A bad instant says what was expected and echoes the input."""
    message = refused(v.instant, text)
    assert words in message and text in message


def test_duration_reads_seconds_and_units() -> None:
    """Durations are seconds, or numbers with s, m, h or d units."""
    assert v.duration("90") == 90.0
    assert v.duration("15m") == 900.0
    assert v.duration("1h30m") == 5400.0
    assert v.duration("1d") == 86400.0


@pytest.mark.parametrize("text", ["0", "0s", "eight hours", "-5m"])
def test_duration_refuses_empty_or_unreadable_lengths(text: str) -> None:
    """A zero, negative or unreadable duration is refused, echoing the input."""
    assert text in refused(v.duration, text)


@pytest.mark.parametrize(
    ("check", "good", "bad"),
    [
        (v.positive_int, ["1", "40"], ["0", "-3", "2.5", "x"]),
        (v.non_negative_int, ["0", "7"], ["-1", "1e3"]),
        (v.port, ["1", "8080", "65535"], ["0", "65536", "http"]),
        (v.positive, ["0.5", "3"], ["0", "-1", "nan", "inf", "x"]),
        (v.non_negative, ["0", "2.5"], ["-0.1", "nan"]),
        (v.fraction, ["0", "0.3"], ["1", "-0.2", "30"]),
        (v.target_fraction, ["1", "0.8"], ["0", "80", "1.01"]),
    ],
)
def test_numbers_accept_their_range_and_refuse_the_rest(
    check: Callable[[object], object], good: list[str], bad: list[str]
) -> None:
    """Each numeric type accepts values in its range and refuses others with a message."""
    for text in good:
        check(text)
    for text in bad:
        assert refused(check, text)


def test_numbers_refuse_booleans() -> None:
    """True is not the number 1 for an option (a hand-built Namespace mistake)."""
    assert "True" in refused(v.positive_int, True)
    assert "True" in refused(v.positive, True)


def test_numbers_accept_numbers_as_well_as_text() -> None:
    """A value that is already a number passes through (run() re-checks Namespaces)."""
    assert v.positive(2) == 2.0
    assert v.non_negative_int(3) == 3


def test_readable_file_accepts_a_file_and_names_a_missing_one(tmp_path: Path) -> None:
    """A readable file passes; a missing file or a directory is refused by name."""
    path = tmp_path / "events.ndjson"
    path.write_text("")
    assert v.readable_file(str(path)) == str(path)
    missing = str(tmp_path / "nope.ndjson")
    assert missing in refused(v.readable_file, missing)
    assert str(tmp_path) in refused(v.readable_file, str(tmp_path))
