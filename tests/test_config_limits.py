"""The [limits] keys that bound what a writer can exhaust: defaults and mistakes."""

from __future__ import annotations

import pytest

from callfloor.config import ConfigError, parse_config


def test_defaults() -> None:
    """Waiting calls 100,000; events ahead 10,000 per source; forget after 7 days; 4 KB
    of a payload in a dead letter."""
    limits = parse_config({}, "<test>").limits
    assert (limits.max_open_calls, limits.max_future_events) == (100_000, 10_000)
    assert (limits.forget_after_s, limits.dead_letter_max_bytes) == (7 * 86_400.0, 4096)


def test_forget_after_follows_a_longer_max_lateness() -> None:
    """Unset, forget_after is never shorter than max_lateness (nothing before the live
    horizon may change when a name is forgotten)."""
    limits = parse_config({"limits": {"max_lateness": "10d"}}, "<test>").limits
    assert limits.forget_after_s == 10 * 86_400.0


def test_a_small_max_body_lowers_the_dead_letter_default() -> None:
    """Unset, dead_letter_max is never more than max_body."""
    limits = parse_config({"limits": {"max_body": "1KB"}}, "<test>").limits
    assert limits.dead_letter_max_bytes == 1024


@pytest.mark.parametrize(
    ("limits", "key", "problem"),
    [
        ({"forget_after": "1h"}, "limits.forget_after", "at least limits.max_lateness"),
        ({"dead_letter_max": "2MB"}, "limits.dead_letter_max", "at most 1048576 bytes"),
        (
            {"dead_letter_max": "8KB", "max_body": "4KB"},
            "limits.dead_letter_max",
            "at most 4096 bytes",
        ),
        ({"max_open_calls": 0}, "limits.max_open_calls", "must be at least 1"),
        ({"max_future_events": "many"}, "limits.max_future_events", "expected an integer"),
    ],
)
def test_mistakes_name_the_key(limits: dict[str, object], key: str, problem: str) -> None:
    """Each mistake stops loading with the key and the problem."""
    with pytest.raises(ConfigError) as info:
        parse_config({"limits": limits}, "<test>")
    assert key in str(info.value) and problem in str(info.value)
