"""Site-local interval and day boundaries, including DST changes."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from callfloor.processors.calendar import SiteCalendar


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_interval_start_is_local_wall_clock_in_a_half_hour_zone() -> None:
    """In Asia/Kolkata (+05:30) a 30-minute interval starts at local :00 or :30."""
    cal = SiteCalendar("Asia/Kolkata", 30)
    assert cal.interval_start(_ts("2026-11-22T09:47:10+05:30")) == _ts("2026-11-22T09:30:00+05:30")


def test_fifteen_minute_intervals() -> None:
    """A 15-minute site starts intervals at :00, :15, :30 and :45."""
    cal = SiteCalendar("Asia/Kathmandu", 15)
    assert cal.interval_start(_ts("2026-11-22T09:44:59+05:45")) == _ts("2026-11-22T09:30:00+05:45")


def test_day_starts_at_local_midnight() -> None:
    """The day of a Shanghai site starts at 00:00 +08:00, which is 16:00 UTC the day before."""
    cal = SiteCalendar("Asia/Shanghai", 30)
    assert cal.day_start(_ts("2026-11-22T01:00:00+08:00")) == _ts("2026-11-21T16:00:00+00:00")


def test_fall_back_day_is_25_hours_long() -> None:
    """On America/New_York's fall-back day, midnight to midnight is 25 hours."""
    cal = SiteCalendar("America/New_York", 30)
    t = _ts("2026-11-01T12:00:00-05:00")
    assert cal.next_day_start(t) - cal.day_start(t) == 25 * 3600


def test_repeated_hour_intervals_are_distinct() -> None:
    """During the repeated 01:00-02:00 hour, each half-hour interval has its own start."""
    cal = SiteCalendar("America/New_York", 30)
    first = _ts("2026-11-01T01:40:00-04:00")
    second = _ts("2026-11-01T01:40:00-05:00")
    assert cal.interval_start(first) == _ts("2026-11-01T01:30:00-04:00")
    assert cal.interval_start(second) == _ts("2026-11-01T01:30:00-05:00")


def test_spring_forward_interval_after_the_gap() -> None:
    """Right after Europe/London springs forward, the interval starts at 02:00 local (01:00 UTC)."""
    cal = SiteCalendar("Europe/London", 30)
    assert cal.interval_start(_ts("2026-03-29T01:10:00+00:00")) == _ts("2026-03-29T02:00:00+01:00")


def test_midnight_that_does_not_exist() -> None:
    """Where DST skips midnight (America/Santiago), the day starts at the transition instant."""
    cal = SiteCalendar("America/Santiago", 30)
    t = _ts("2026-09-06T12:00:00-03:00")
    start = cal.day_start(t)
    local = datetime.fromtimestamp(start, ZoneInfo("America/Santiago"))
    assert local.date().isoformat() == "2026-09-06"
    assert datetime.fromtimestamp(start - 1, ZoneInfo("America/Santiago")).date().isoformat() == (
        "2026-09-05"
    )


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        ["UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata"]
    ),
    st.sampled_from([15, 30]),
    st.floats(1_760_000_000, 1_830_000_000),
)
def test_period_starts_bracket_any_instant(zone: str, minutes: int, t: float) -> None:
    """For any instant, day start <= interval start <= t, on a local interval boundary."""
    cal = SiteCalendar(zone, minutes)
    start = cal.interval_start(t)
    assert cal.day_start(t) <= start <= t < cal.next_day_start(t)
    assert t - start < minutes * 60
    local = datetime.fromtimestamp(start, ZoneInfo(zone))
    assert local.minute % minutes == 0 and local.second == 0


def test_asking_about_yesterday_keeps_today_cached_and_right() -> None:
    """Alternating between the day that just ended and today gives both days' bounds."""
    cal = SiteCalendar("Europe/London", 30)
    midnight = _ts("2026-11-22T00:00:00+00:00")
    for _ in range(3):
        assert cal.day_start(midnight - 1) == _ts("2026-11-21T00:00:00+00:00")
        assert cal.next_day_start(midnight - 1) == midnight
        assert cal.day_start(midnight + 1) == midnight
        assert cal.next_day_start(midnight + 1) == _ts("2026-11-23T00:00:00+00:00")
