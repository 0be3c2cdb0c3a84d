# ruff: noqa: E501
"""SPEC §2: rolling, interval and today windows, site-local time and DST."""

from __future__ import annotations

from spec_util import T0, answered, local, queued, swin, utc, win


def test_rolling_includes_event_at_t(run):
    """An event at exactly t is inside the rolling window (t - W, t]."""
    assert win(run([queued(T0, "c1")], at=T0))["offered"] == 1


def test_rolling_15m_upper_boundary(run):
    """An event at t0 is in 15m at t0 + 899.9 and not at t0 + 900."""
    events = [queued(T0, "c1")]
    assert win(run(events, at=T0 + 899.9), window="15m")["offered"] == 1
    assert win(run(events, at=T0 + 900), window="15m")["offered"] == 0


def test_rolling_60m_boundary(run):
    """An event at t0 is in 60m at t0 + 3599.9 and not at t0 + 3600."""
    events = [queued(T0, "c1")]
    assert win(run(events, at=T0 + 3599.9), window="60m")["offered"] == 1
    assert win(run(events, at=T0 + 3600), window="60m")["offered"] == 0


def test_default_window_keys(run):
    """Default windows are 15m, 60m, interval, today in that order."""
    doc = run([queued(T0, "c1")])
    assert list(doc["queues"]["sales"]["windows"]) == ["15m", "60m", "interval", "today"]
    assert list(doc["sites"]["default"]["windows"]) == ["15m", "60m", "interval", "today"]


def test_configured_rolling_keys_as_written_in_order(run):
    """Configured rolling windows are keyed exactly as written, in order, then interval and today."""
    toml = '[windows]\nrolling = ["5m", "1h", "90s"]\n'
    doc = run([queued(T0, "c1")], toml)
    assert list(doc["queues"]["sales"]["windows"]) == ["5m", "1h", "90s", "interval", "today"]
    assert list(doc["sites"]["default"]["windows"]) == ["5m", "1h", "90s", "interval", "today"]


def test_configured_rolling_durations(run):
    """Configured rolling windows have the written lengths ("90s" = 90 s, "1h" = 3600 s)."""
    toml = '[windows]\nrolling = ["5m", "1h", "90s"]\n'
    events = [queued(T0, "c1")]
    doc = run(events, toml, at=T0 + 95)
    assert [win(doc, window=k)["offered"] for k in ("5m", "1h", "90s")] == [1, 1, 0]
    doc = run(events, toml, at=T0 + 89.5)
    assert win(doc, window="90s")["offered"] == 1
    doc = run(events, toml, at=T0 + 3600)
    assert [win(doc, window=k)["offered"] for k in ("5m", "1h")] == [0, 0]


# ---- interval ---------------------------------------------------------------------

KOLKATA = '[sites.in]\ntimezone = "Asia/Kolkata"\ninterval_minutes = 30\n'
KATHMANDU30 = '[sites.np]\ntimezone = "Asia/Kathmandu"\ninterval_minutes = 30\n'
KATHMANDU15 = '[sites.np]\ntimezone = "Asia/Kathmandu"\ninterval_minutes = 15\n'


def test_interval_kolkata_30min_boundaries(run):
    """A 30-minute interval starts at site-local :00/:30; an event at exactly the start is inside."""
    tz = "Asia/Kolkata"
    events = [
        queued(local(tz, 2026, 11, 23, 9, 29, 59), "c1", site="in"),
        queued(local(tz, 2026, 11, 23, 9, 30, 0), "c2", site="in"),
        queued(local(tz, 2026, 11, 23, 9, 41, 0), "c3", site="in"),
    ]
    doc = run(events, KOLKATA, at=local(tz, 2026, 11, 23, 9, 59, 59))
    assert win(doc, window="interval")["offered"] == 2
    assert win(doc, window="today")["offered"] == 3
    doc = run(events, KOLKATA, at=local(tz, 2026, 11, 23, 10, 0, 0))
    assert win(doc, window="interval")["offered"] == 0


def test_interval_uses_site_local_time_not_utc(run):
    """Asia/Kathmandu (+05:45) 30-minute intervals start at local :00/:30 (UTC :15/:45)."""
    tz = "Asia/Kathmandu"
    ev_ts = local(tz, 2026, 11, 23, 10, 5)  # 04:20 UTC
    at = local(tz, 2026, 11, 23, 10, 20)  # 04:35 UTC; a UTC-aligned interval would start 04:30
    doc = run([queued(ev_ts, "c1", site="np")], KATHMANDU30, at=at)
    assert win(doc, window="interval")["offered"] == 1
    assert swin(doc, "np", "interval")["offered"] == 1
    before = local(tz, 2026, 11, 23, 9, 59)
    doc = run([queued(before, "c0", site="np"), queued(ev_ts, "c1", site="np")], KATHMANDU30, at=at)
    assert win(doc, window="interval")["offered"] == 1


def test_interval_15_minutes(run):
    """A 15-minute site starts a new interval every quarter hour of local time."""
    tz = "Asia/Kathmandu"
    events = [
        queued(local(tz, 2026, 11, 23, 10, 14, 59), "c1", site="np"),
        queued(local(tz, 2026, 11, 23, 10, 15, 0), "c2", site="np"),
    ]
    doc = run(events, KATHMANDU15, at=local(tz, 2026, 11, 23, 10, 29, 59))
    assert win(doc, window="interval")["offered"] == 1
    doc = run(events, KATHMANDU30, at=local(tz, 2026, 11, 23, 10, 29, 59))
    assert win(doc, window="interval")["offered"] == 2


def test_interval_counts_answer_by_answer_time(run):
    """interval attributes answered at the answer ts, offered at the queued ts."""
    tz = "Asia/Kolkata"
    events = [
        queued(local(tz, 2026, 11, 23, 9, 29, 50), "c1", site="in"),
        answered(local(tz, 2026, 11, 23, 9, 30, 5), "c1", site="in"),
    ]
    w = win(run(events, KOLKATA), window="interval")
    assert (w["offered"], w["answered"], w["sl_offered"], w["answered_in_sl"]) == (0, 1, 1, 1)


# ---- today ------------------------------------------------------------------------


def test_today_since_site_local_midnight(run):
    """An event before site-local midnight is not in today after midnight (but still in 60m)."""
    tz = "Asia/Kolkata"
    events = [queued(local(tz, 2026, 11, 22, 23, 50), "c1", site="in")]
    doc = run(events, KOLKATA, at=local(tz, 2026, 11, 23, 0, 10))
    assert win(doc, window="today")["offered"] == 0
    assert win(doc, window="60m")["offered"] == 1
    assert swin(doc, "in", "today")["offered"] == 0


def test_today_includes_event_at_midnight(run):
    """An event at exactly site-local midnight is in today."""
    tz = "Asia/Kolkata"
    events = [queued(local(tz, 2026, 11, 23, 0, 0), "c1", site="in")]
    doc = run(events, KOLKATA, at=local(tz, 2026, 11, 23, 12, 0))
    assert win(doc, window="today")["offered"] == 1


def test_today_not_utc_midnight(run):
    """today starts at site-local midnight, not UTC midnight (Kolkata midnight is 18:30 UTC)."""
    events = [queued(utc(2026, 11, 22, 19, 0), "c1", site="in")]  # 00:30 IST on 23 Nov
    doc = run(events, KOLKATA, at=utc(2026, 11, 23, 1, 0))
    assert win(doc, window="today")["offered"] == 1
    events = [queued(utc(2026, 11, 22, 18, 0), "c1", site="in")]  # 23:30 IST on 22 Nov
    doc = run(events, KOLKATA, at=utc(2026, 11, 22, 23, 0))
    assert win(doc, window="today")["offered"] == 0


def test_queue_today_uses_its_site_timezone(run):
    """Each queue's today follows the time zone of its site."""
    toml = KOLKATA + '[sites.us]\ntimezone = "America/Los_Angeles"\ninterval_minutes = 30\n'
    toml += '[queues.qin]\nsite = "in"\n[queues.qus]\nsite = "us"\n'
    ts = utc(2026, 11, 23, 7, 0)  # 12:30 IST, 23:00 PST 22 Nov
    events = [queued(ts, "c1", queue="qin"), queued(ts, "c2", queue="qus")]
    doc = run(events, toml, at=utc(2026, 11, 23, 8, 30))  # 14:00 IST, 00:30 PST 23 Nov
    assert win(doc, "qin", "today")["offered"] == 1
    assert win(doc, "qus", "today")["offered"] == 0


# ---- DST --------------------------------------------------------------------------

NY = '[sites.ny]\ntimezone = "America/New_York"\ninterval_minutes = 30\n'
LON = '[sites.lon]\ntimezone = "Europe/London"\ninterval_minutes = 30\n'


def test_dst_fall_back_today_is_25_hours(run):
    """On the New York fall-back day (2026-11-01) today covers 25 hours since local midnight (04:00 UTC)."""
    events = [
        queued(utc(2026, 11, 1, 3, 59), "c0", site="ny"),  # 23:59 EDT 31 Oct
        queued(utc(2026, 11, 1, 4, 30), "c1", site="ny"),  # 00:30 EDT 1 Nov
    ]
    at = utc(2026, 11, 2, 4, 59)  # 23:59 EST 1 Nov
    doc = run(events, NY, at=at)
    assert win(doc, window="today")["offered"] == 1


def test_dst_fall_back_next_midnight(run):
    """After fall back, the next local midnight is 05:00 UTC (EST)."""
    events = [queued(utc(2026, 11, 2, 4, 30), "c1", site="ny")]  # 23:30 EST 1 Nov
    assert win(run(events, NY, at=utc(2026, 11, 2, 4, 59)), window="today")["offered"] == 1
    assert win(run(events, NY, at=utc(2026, 11, 2, 5, 1)), window="today")["offered"] == 0


def test_dst_fall_back_interval_in_repeated_hour(run):
    """In the repeated 01:xx hour, the interval starts at the second 01:30 (06:30 UTC), not the first."""
    events = [
        queued(utc(2026, 11, 1, 5, 35), "c1", site="ny"),  # 01:35 EDT
        queued(utc(2026, 11, 1, 6, 31), "c2", site="ny"),  # 01:31 EST
    ]
    doc = run(events, NY, at=utc(2026, 11, 1, 6, 40))  # 01:40 EST
    assert win(doc, window="interval")["offered"] == 1
    assert win(doc, window="today")["offered"] == 2


def test_dst_fall_back_interval_first_pass(run):
    """At 01:40 EDT (first pass) the interval started at 01:30 EDT (05:30 UTC)."""
    events = [
        queued(utc(2026, 11, 1, 5, 29), "c1", site="ny"),
        queued(utc(2026, 11, 1, 5, 31), "c2", site="ny"),
    ]
    doc = run(events, NY, at=utc(2026, 11, 1, 5, 40))
    assert win(doc, window="interval")["offered"] == 1


def test_dst_spring_forward(run):
    """On the New York spring-forward day (2026-03-08) today starts 05:00 UTC and the 03:00 EDT interval at 07:00 UTC."""
    events = [
        queued(utc(2026, 3, 8, 4, 59), "c0", site="ny"),  # 23:59 EST 7 Mar
        queued(utc(2026, 3, 8, 6, 59), "c1", site="ny"),  # 01:59 EST
        queued(utc(2026, 3, 8, 7, 1), "c2", site="ny"),  # 03:01 EDT
    ]
    doc = run(events, NY, at=utc(2026, 3, 8, 7, 10))  # 03:10 EDT
    assert win(doc, window="interval")["offered"] == 1
    assert win(doc, window="today")["offered"] == 2


def test_dst_spring_forward_today_is_23_hours(run):
    """After spring forward, the next midnight is 04:00 UTC (EDT), 23 hours after the previous one."""
    events = [queued(utc(2026, 3, 9, 3, 50), "c1", site="ny")]  # 23:50 EDT 8 Mar
    assert win(run(events, NY, at=utc(2026, 3, 9, 3, 59)), window="today")["offered"] == 1
    assert win(run(events, NY, at=utc(2026, 3, 9, 4, 1)), window="today")["offered"] == 0


def test_dst_london_fall_back(run):
    """Europe/London 2026-10-25: local midnight was 23:00 UTC the day before (BST)."""
    events = [
        queued(utc(2026, 10, 24, 22, 59), "c0", site="lon"),  # 23:59 BST 24 Oct
        queued(utc(2026, 10, 24, 23, 30), "c1", site="lon"),  # 00:30 BST 25 Oct
        queued(utc(2026, 10, 25, 22, 5), "c2", site="lon"),  # 22:05 GMT
    ]
    doc = run(events, LON, at=utc(2026, 10, 25, 22, 10))
    assert win(doc, window="today")["offered"] == 2
    assert win(doc, window="interval")["offered"] == 1
    assert swin(doc, "lon", "today")["offered"] == 2


def test_lord_howe_half_hour_dst_interval(run):
    """Australia/Lord_Howe falls back 30 min (2026-04-05): 30-min intervals still start at local :00/:30."""
    toml = '[sites.lh]\ntimezone = "Australia/Lord_Howe"\ninterval_minutes = 30\n'
    events = [
        queued(utc(2026, 4, 4, 14, 45), "c1", site="lh"),  # 01:45 LHDT (+11)
        queued(utc(2026, 4, 4, 15, 5), "c2", site="lh"),  # 01:35 LHST (+10:30), second pass
    ]
    doc = run(events, toml, at=utc(2026, 4, 4, 15, 10))
    assert win(doc, window="interval")["offered"] == 1
    assert win(doc, window="today")["offered"] == 2
