# ruff: noqa: E501
"""SPEC §8: configuration file, defaults, durations and bad configurations."""

from __future__ import annotations

from pathlib import Path

import pytest
from spec_util import T0, answered, approx, queued, state, viols, win

from callfloor.config import ConfigError, load_config


def _load(tmp_path: Path, text: str, name: str = "floor-config.toml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return load_config(p)


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    return str(info.value)


# ---- bad configurations -------------------------------------------------------------


def test_unknown_top_level_key(tmp_path):
    """An unknown top-level key is an error naming the file and the key."""
    msg = _error(tmp_path, "[bogus_section]\nx = 1\n")
    assert "floor-config.toml" in msg
    assert "bogus_section" in msg
    assert "unknown" in msg.lower()


def test_unknown_queue_key(tmp_path):
    """A misspelt key in a queue table is an error naming the file and the key."""
    msg = _error(tmp_path, "[queues.sales]\nsl_treshold_s = 20\n")
    assert "floor-config.toml" in msg
    assert "sl_treshold_s" in msg


def test_unknown_agents_key(tmp_path):
    """A misspelt key in [agents] is an error naming the key."""
    msg = _error(tmp_path, '[agents]\nnot_ready_maxx = "10m"\n')
    assert "not_ready_maxx" in msg and "floor-config.toml" in msg


def test_unknown_site_key(tmp_path):
    """A misspelt key in a site table is an error naming the key."""
    msg = _error(tmp_path, '[sites.sh]\ntime_zone = "Asia/Shanghai"\n')
    assert "time_zone" in msg and "floor-config.toml" in msg


def test_unknown_channel_defaults(tmp_path):
    """A [defaults.X] table for an unknown channel is an error."""
    msg = _error(tmp_path, "[defaults.fax]\nsl_threshold_s = 20\n")
    assert "fax" in msg and "floor-config.toml" in msg


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[queues.sales]\nsl_target = "high"\n', "sl_target"),
        ('[queues.sales]\nsl_threshold_s = "soon"\n', "sl_threshold_s"),
        ('[sites.sh]\ninterval_minutes = "thirty"\n', "interval_minutes"),
        ('[agents]\nmissed_calls_max = "three"\n', "missed_calls_max"),
        ('[agents]\nexempt_reasons = "training"\n', "exempt_reasons"),
        ('[windows]\nrolling = "15m"\n', "rolling"),
        ("[sites.sh]\ntimezone = 8\n", "timezone"),
        ("[agents]\nwrap_up_max = true\n", "wrap_up_max"),
    ],
    ids=[
        "sl_target",
        "sl_threshold_s",
        "interval_minutes",
        "missed_calls_max",
        "exempt_reasons",
        "rolling",
        "timezone",
        "wrap_up_max_bool",
    ],
)
def test_wrong_type(tmp_path, text, key):
    """A value of the wrong type is an error naming the file and the key."""
    msg = _error(tmp_path, text)
    assert "floor-config.toml" in msg
    assert key in msg


def test_unknown_time_zone(tmp_path):
    """An unknown IANA time zone is an error naming the file, the key and the zone."""
    msg = _error(tmp_path, '[sites.sh]\ntimezone = "Mars/Olympus_Mons"\n')
    assert "floor-config.toml" in msg
    assert "timezone" in msg
    assert "Mars/Olympus_Mons" in msg


def test_short_abandon_above_threshold(tmp_path):
    """short_abandon_s above sl_threshold_s is an error naming the key."""
    msg = _error(tmp_path, "[queues.sales]\nsl_threshold_s = 10\nshort_abandon_s = 15\n")
    assert "floor-config.toml" in msg
    assert "short_abandon_s" in msg


def test_short_abandon_above_threshold_in_defaults(tmp_path):
    """short_abandon_s above T in [defaults.voice] is an error."""
    msg = _error(tmp_path, "[defaults.voice]\nshort_abandon_s = 30\n")
    assert "short_abandon_s" in msg and "floor-config.toml" in msg


def test_threshold_lowered_below_inherited_short_abandon(tmp_path):
    """A queue lowering T below the inherited short-abandon threshold (5 s) is an error."""
    msg = _error(tmp_path, "[queues.sales]\nsl_threshold_s = 3\n")
    assert "floor-config.toml" in msg
    assert "short_abandon_s" in msg or "sl_threshold_s" in msg


def test_short_abandon_equal_threshold_ok(tmp_path):
    """short_abandon_s equal to T is allowed (<= T)."""
    _load(tmp_path, "[queues.sales]\nsl_threshold_s = 10\nshort_abandon_s = 10\n")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[sites.sh]\ninterval_minutes = 20\n", "interval_minutes"),
        ('[queues.sales]\nsl_formula = "best_effort"\n', "sl_formula"),
        ('[queues.sales]\nchannel = "pigeon"\n', "channel"),
        ("[queues.sales]\nsl_target = 80\n", "sl_target"),
        ('[agents]\nnot_ready_max = "ten minutes"\n', "not_ready_max"),
    ],
    ids=["interval_20", "formula", "channel", "target_percent", "duration_text"],
)
def test_bad_value(tmp_path, text, key):
    """A value outside its allowed set is an error naming the file and the key."""
    msg = _error(tmp_path, text)
    assert "floor-config.toml" in msg
    assert key in msg


def test_invalid_toml(tmp_path):
    """A file that is not TOML is an error naming the file."""
    msg = _error(tmp_path, "[queues.sales\nsite = \n")
    assert "floor-config.toml" in msg


def test_empty_config_ok(tmp_path):
    """Every key is optional: an empty file is a valid configuration."""
    _load(tmp_path, "")


def test_spec_example_config_loads(tmp_path):
    """The SPEC §8 example configuration is valid."""
    _load(
        tmp_path,
        """
[sites.sh]
timezone = "Asia/Shanghai"
interval_minutes = 30
sl_formula = "abandoned_negative"

[defaults.voice]
sl_threshold_s = 20
sl_target = 0.8
short_abandon_s = 5
sl_formula = "abandoned_negative"
default_aht_s = 180

[queues.sales]
site = "sh"
channel = "voice"

[windows]
rolling = ["15m", "60m"]

[agents]
not_ready_max = "10m"
not_ready_reason_max = { break = "15m", lunch = "60m" }
exempt_reasons = ["training", "meeting"]
daily_not_ready = ["30m", "45m"]
wrap_up_max = "120s"
missed_calls_max = 3
stale_after = "4h"
""",
    )


# ---- durations ------------------------------------------------------------------------


@pytest.mark.parametrize("value", ['"90s"', "90", "90.0", '"1.5m"'])
def test_duration_seconds_forms(run, value):
    """Durations accept numbers of seconds and unit strings ("90s")."""
    doc = run([state(T0, "a1", "wrap_up")], f"[agents]\nwrap_up_max = {value}\n", at=T0 + 100)
    v = viols(doc, "wrap_up_exceeded")
    assert len(v) == 1 and v[0]["started_at"] == approx(T0 + 90)


def test_duration_minutes(run):
    """ "15m" is 900 seconds."""
    doc = run([state(T0, "a1", "not_ready")], '[agents]\nnot_ready_max = "15m"\n', at=T0 + 1000)
    assert viols(doc, "not_ready_exceeded")[0]["started_at"] == approx(T0 + 900)


def test_duration_hours(run):
    """ "2h" is 7200 seconds."""
    doc = run([state(T0, "a1", "available")], '[agents]\nstale_after = "2h"\n', at=T0 + 7300)
    assert viols(doc, "stale_agent")[0]["started_at"] == approx(T0 + 7200)


def test_sl_threshold_duration_string(run):
    """sl_threshold_s accepts a duration string like "30s"."""
    toml = '[queues.sales]\nsl_threshold_s = "30s"\n'
    w = win(run([queued(T0, "c1"), answered(T0 + 25, "c1")], toml))
    assert w["answered_in_sl"] == 1


# ---- defaults -------------------------------------------------------------------------


def test_event_only_queue_gets_voice_defaults(run):
    """A queue only seen in events gets T = 20 s, short abandon 5 s."""
    w = win(
        run(
            [
                queued(T0, "c1"),
                answered(T0 + 20, "c1"),
                queued(T0 + 30, "c2"),
                answered(T0 + 51, "c2"),
            ]
        )
    )
    assert (w["sl_offered"], w["answered_in_sl"]) == (2, 1)


def test_chat_channel_defaults(run):
    """A chat queue defaults to T = 30 s."""
    w = win(run([queued(T0, "c1"), answered(T0 + 28, "c1")], '[queues.sales]\nchannel = "chat"\n'))
    assert w["answered_in_sl"] == 1


def test_email_channel_defaults(run):
    """An email queue defaults to T = 14400 s."""
    toml = '[queues.sales]\nchannel = "email"\n'
    w = win(run([queued(T0, "c1"), answered(T0 + 14000, "c1")], toml), window="today")
    assert (w["sl_offered"], w["answered_in_sl"]) == (1, 1)


def test_channel_defaults_table(run):
    """[defaults.voice] sets the policy of voice queues."""
    toml = "[defaults.voice]\nsl_threshold_s = 60\n"
    w = win(run([queued(T0, "c1"), answered(T0 + 50, "c1")], toml))
    assert w["answered_in_sl"] == 1


def test_queue_overrides_channel_defaults(run):
    """A key set on a queue overrides the channel default."""
    toml = "[defaults.voice]\nsl_threshold_s = 60\n[queues.sales]\nsl_threshold_s = 30\n"
    w = win(run([queued(T0, "c1"), answered(T0 + 50, "c1")], toml))
    assert w["answered_in_sl"] == 0


def test_site_timezone_and_interval_config(run):
    """A configured site's timezone and interval length drive its windows."""
    toml = '[sites.sh]\ntimezone = "Asia/Shanghai"\ninterval_minutes = 30\n[queues.sales]\nsite = "sh"\n'
    # T0 = 17:00 CST; an event at 16:59 CST is in the previous interval
    doc = run([queued(T0 - 60, "c0"), queued(T0 + 60, "c1")], toml, at=T0 + 120)
    assert win(doc, window="interval")["offered"] == 1
    assert doc["queues"]["sales"]["site"] == "sh"


def test_unknown_windows_key(tmp_path):
    """An unknown key in [windows] is an error naming the key."""
    msg = _error(tmp_path, '[windows]\nrolling = ["15m"]\nsliding = ["5m"]\n')
    assert "sliding" in msg and "floor-config.toml" in msg


def test_bad_per_reason_duration(tmp_path):
    """A bad duration inside not_ready_reason_max is an error naming the key."""
    msg = _error(tmp_path, '[agents]\nnot_ready_reason_max = { break = "soon" }\n')
    assert "floor-config.toml" in msg
    assert "break" in msg or "not_ready_reason_max" in msg


def test_bad_rolling_duration(tmp_path):
    """A rolling window that is not a duration is an error naming the key."""
    msg = _error(tmp_path, '[windows]\nrolling = ["15 minutes please"]\n')
    assert "floor-config.toml" in msg and "rolling" in msg
