"""Configuration parsing: defaults, durations, and errors that name file, key and problem."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from callfloor.config import ConfigError, load_config, parse_config, parse_duration


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "floor.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90.0),
        (1.5, 1.5),
        ("90s", 90.0),
        ("15m", 900.0),
        ("2h", 7200.0),
        ("1h30m", 5400.0),
        ("250ms", 0.25),
        ("45", 45.0),
    ],
)
def test_durations(value: object, seconds: float) -> None:
    """Durations are numbers of seconds or strings with units."""
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["soon", "15 minutes", "-5s", True, [1]])
def test_bad_durations(value: object) -> None:
    """Anything else is not a duration."""
    with pytest.raises(ValueError):
        parse_duration(value)


def test_empty_file_gives_spec_defaults(tmp_path: Path) -> None:
    """An empty file gives SPEC §8 defaults per channel."""
    cfg = load_config(_write(tmp_path, ""))
    assert cfg.queue_policy("anything", "voice").sl_threshold_s == 20
    assert cfg.queue_policy("anything", "chat").sl_threshold_s == 30
    assert cfg.queue_policy("anything", "email").sl_threshold_s == 14400
    assert cfg.queue_policy("anything", "email").sl_target == 0.9
    assert cfg.rolling_windows == (("15m", 900.0), ("60m", 3600.0))
    assert cfg.agents.daily_not_ready_s == (1800.0, 2700.0)


def test_queue_overrides_its_channel_defaults(tmp_path: Path) -> None:
    """A queue key overrides the channel default, other keys are inherited."""
    cfg = load_config(
        _write(
            tmp_path,
            "[defaults.chat]\nsl_target = 0.7\n"
            '[queues.web]\nchannel = "chat"\nsl_threshold_s = "45s"\n',
        )
    )
    policy = cfg.queues["web"].policy
    assert (policy.sl_threshold_s, policy.sl_target) == (45.0, 0.7)


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("[queues.sales]\nsla = 20\n", "queues.sales.sla", "unknown key"),
        ('[queues.sales]\nsl_target = "high"\n', "queues.sales.sl_target", "expected a number"),
        ('[sites.sh]\ntimezone = "Mars/Olympus"\n', "sites.sh.timezone", "unknown time zone"),
        (
            "[queues.sales]\nsl_threshold_s = 10\nshort_abandon_s = 15\n",
            "queues.sales.short_abandon_s",
            "above the service-level threshold",
        ),
        ("[sites.sh]\ninterval_minutes = 20\n", "sites.sh.interval_minutes", "must be 15 or 30"),
        ('[windows]\nrolling = ["15 minutes"]\n', "windows.rolling[0]", "expected a duration"),
        ("[agents]\nwrap_up_max = false\n", "agents.wrap_up_max", "expected a duration"),
        ("[defaults.fax]\nsl_target = 0.8\n", "defaults.fax", "unknown channel"),
        ('[queues.sales]\nsl_formula = "best"\n', "queues.sales.sl_formula", "must be one of"),
        ("[alerts]\nbogus = 1\n", "alerts.bogus", "unknown key"),
    ],
)
def test_bad_config_names_file_key_and_problem(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    """Each kind of mistake stops loading with file, key and problem in the message."""
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message and key in message and problem in message


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    """A syntax error names the file and says it is not valid TOML."""
    path = _write(tmp_path, "[queues\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    """A missing file is a configuration error, not a traceback."""
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")


def test_rolling_windows_keep_their_written_labels(tmp_path: Path) -> None:
    """Rolling windows keep their labels exactly as written, in order."""
    cfg = load_config(_write(tmp_path, '[windows]\nrolling = ["5m", "30m", "2h"]\n'))
    assert cfg.rolling_windows == (("5m", 300.0), ("30m", 1800.0), ("2h", 7200.0))


def test_store_sources_and_tokens_parse_with_secrets_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """[store], [[sources]] and [http] tokens parse; "env:NAME" reads the environment."""
    monkeypatch.setenv("CF_TOKEN", "s3cret")
    cfg = parse_config(
        {
            "http": {"write_tokens": ["env:CF_TOKEN"], "read_tokens": ["r"]},
            "store": {"url": "redis://127.0.0.1:6379/0", "partitions": [["a", "b"], ["c"]]},
            "sources": [{"kind": "mqtt", "url": "mqtts://broker:8883", "client_id": "cf-1"}],
        },
        "<t>",
    )
    assert cfg.http.write_tokens == ("s3cret",) and cfg.http.read_tokens == ("r",)
    assert cfg.store.kind == "redis" and cfg.store.partitions == (("a", "b"), ("c",))
    [mqtt] = cfg.sources
    assert (mqtt.kind, mqtt.topics, mqtt.client_id) == ("mqtt", ("callfloor/+/events",), "cf-1")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"store": {"url": "postgres://x"}}, "store.url"),
        ({"store": {"url": "file://relative"}}, "absolute path"),
        ({"store": {"partitions": "site"}}, "need a redis:// store"),
        ({"store": {"url": "redis://h", "partitions": [["a"], ["a"]]}}, "in two partitions"),
        ({"sources": [{"kind": "kafka"}]}, "sources[0].kind"),
        ({"sources": [{"kind": "mqtt", "path": "/x"}]}, "sources[0].path: unknown key"),
        ({"sources": [{"kind": "queue_log"}]}, "needs the file's path"),
        ({"sources": [{"kind": "mqtt", "name": "http"}]}, "built-in HTTP ingest's name"),
        ({"http": {"write_tokens": ["env:CALLFLOOR_SURELY_UNSET"]}}, "is not set"),
    ],
)
def test_bad_store_sources_and_tokens_name_the_key(data: dict[str, object], message: str) -> None:
    """A bad [store], [[sources]] or token stops start-up naming the key and the problem."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(data, "cfg.toml")


def test_partitions_need_every_configured_queue_to_name_its_site() -> None:
    """With [store] partitions a queue without a site is a configuration error naming it."""
    with pytest.raises(ConfigError, match=r"queues\.sales\.site: with \[store\] partitions"):
        parse_config(
            {
                "queues": {"sales": {"channel": "voice"}},
                "store": {"url": "redis://127.0.0.1:6379/0", "partitions": "site"},
            }
        )


def test_a_partition_config_keeps_only_its_sites_and_their_queues() -> None:
    """Config.for_sites keeps the named sites and the queues configured in them."""
    config = parse_config(
        {
            "sites": {"lon": {"timezone": "Europe/London"}, "sh": {"timezone": "Asia/Shanghai"}},
            "queues": {"a": {"site": "lon"}, "b": {"site": "sh"}},
        }
    )
    part = config.for_sites(frozenset({"sh"}))
    assert list(part.sites) == ["sh"] and list(part.queues) == ["b"]
    assert part.limits == config.limits and part.rolling_windows == config.rolling_windows


def test_named_sites_are_the_sites_table_the_queues_and_the_groups() -> None:
    """Every site the configuration names is listed once, sorted, wherever it is named."""
    cfg = parse_config(
        {
            "sites": {"lon": {"timezone": "Europe/London"}},
            "queues": {"q1": {"site": "nyc"}, "q2": {"site": "lon"}},
            "store": {"url": "redis://127.0.0.1:1/0", "partitions": [["blr", "sh"]]},
        }
    )
    assert cfg.named_sites() == ["blr", "lon", "nyc", "sh"]
