"""[alerts] configuration: the default rules, and a bad rule named by file, key and
problem."""

from __future__ import annotations

import pytest
from helpers import config

from callfloor.alerts.rules import DEFAULT_RULE_NAMES
from callfloor.config import ConfigError


def test_default_rules_are_on_by_default() -> None:
    """Every default rule of SPEC §10 is in force without an [alerts] table."""
    names = [r.name for r in config({}).alerts.rules]
    assert names == list(DEFAULT_RULE_NAMES)


def test_default_rules_can_be_turned_off_or_left_out() -> None:
    """default_rules = false keeps only the configured; disable drops some."""
    assert config({"alerts": {"default_rules": False}}).alerts.rules == ()
    kept = config({"alerts": {"disable": ["volume_spike"]}}).alerts.rules
    assert "volume_spike" not in [r.name for r in kept]


def test_a_configured_rule_replaces_the_default_of_its_name() -> None:
    """[[alerts.rules]] name = "sl_low" is the sl_low in force."""
    cfg = config(
        {
            "alerts": {
                "rules": [
                    {
                        "name": "sl_low",
                        "when": [
                            {"metric": "service_level", "window": "30m", "op": "<", "value": 0.7}
                        ],
                    }
                ]
            }
        }
    )
    [rule] = [r for r in cfg.alerts.rules if r.name == "sl_low"]
    assert rule.conditions[0].window == "30m" and not rule.default


@pytest.mark.parametrize(
    ("rule", "key", "problem"),
    [
        ({"name": "x"}, "alerts.rules[0].when", "missing"),
        (
            {"name": "x", "when": [{"metric": "nope", "value": 1}]},
            "alerts.rules[0].when[0].metric",
            "unknown metric 'nope'",
        ),
        (
            {"name": "x", "when": [{"metric": "service_level", "value": 1}]},
            "alerts.rules[0].when[0].window",
            "needs a window",
        ),
        (
            {"name": "x", "when": [{"metric": "waiting", "op": "!=", "value": 1}]},
            "alerts.rules[0].when[0].op",
            "must be one of",
        ),
        (
            {"name": "x", "when": [{"metric": "waiting", "value": "3 * nothing"}]},
            "alerts.rules[0].when[0].value",
            "unknown reference 'nothing'",
        ),
        (
            {"name": "x", "scope": "teams:*", "when": [{"metric": "waiting", "value": 1}]},
            "alerts.rules[0].scope",
            "expected queues:GLOB",
        ),
        (
            {
                "name": "x",
                "when": [{"metric": "service_level", "window": "15m", "op": "<", "value": 0.8}],
                "clear": 0.7,
            },
            "alerts.rules[0].clear",
            "at or above the threshold",
        ),
        (
            {"name": "x", "when": [{"metric": "waiting", "value": 1}], "severity": "loud"},
            "alerts.rules[0].severity",
            "must be one of",
        ),
        (
            {
                "name": "x",
                "when": [{"metric": "waiting", "value": 1}],
                "escalate": {"after": "5m", "severity": "info"},
            },
            "alerts.rules[0].escalate.severity",
            "above the rule's severity",
        ),
        (
            {"name": "x", "when": [{"metric": "waiting", "value": 1}], "sinks": ["pager"]},
            "alerts.rules[0].sinks",
            "no sink named 'pager'",
        ),
        (
            {"name": "x", "when": [{"metric": "waiting", "value": 1}], "summary": "{oops}"},
            "alerts.rules[0].summary",
            "unknown field {oops}",
        ),
        (
            {"name": "x", "scope": "agents:*", "when": [{"metric": "waiting", "value": 1}]},
            "alerts.rules[0].when[0].metric",
            "unknown agent metric",
        ),
    ],
)
def test_a_bad_rule_names_file_key_and_problem(
    rule: dict[str, object], key: str, problem: str
) -> None:
    """Start-up stops with `<test>: KEY: PROBLEM`."""
    with pytest.raises(ConfigError) as err:
        config({"alerts": {"rules": [rule]}})
    text = str(err.value)
    assert text.startswith(f"<test>: {key}: "), text
    assert problem in text, text


def test_two_rules_of_one_name_are_refused() -> None:
    """A second rule with a name already used is an error at its own index."""
    rule = {"name": "x", "when": [{"metric": "waiting", "value": 1}]}
    with pytest.raises(ConfigError, match=r"alerts.rules\[1\].name: a second rule"):
        config({"alerts": {"rules": [rule, rule]}})


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ({"when": [{"metric": "waiting", "value": float("nan")}]}, "alerts.rules[0].when[0].value"),
        ({"when": [{"metric": "waiting", "value": float("inf")}]}, "alerts.rules[0].when[0].value"),
        (
            {"when": [{"metric": "waiting", "value": 3}], "clear": float("nan")},
            "alerts.rules[0].clear",
        ),
    ],
)
def test_a_threshold_that_is_not_finite_is_refused(entry: dict[str, object], key: str) -> None:
    """TOML's nan and inf as a threshold or clear level stop start-up (a rule comparing
    with nan never fired, and nobody was told)."""
    with pytest.raises(ConfigError) as err:
        config({"alerts": {"rules": [{"name": "x", **entry}]}})
    assert str(err.value).startswith(f"<test>: {key}: expected a finite number"), str(err.value)


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        (
            {"when": [{"metric": "waiting", "value": "2 * waiting"}]},
            "alerts.rules[0].when[0].value",
        ),
        (
            {"when": [{"metric": "offered", "window": "15m", "value": "offered@15m"}]},
            "alerts.rules[0].when[0].value",
        ),
        (
            {"when": [{"metric": "waiting", "value": "agents_available"}], "clear": "waiting"},
            "alerts.rules[0].clear",
        ),
    ],
)
def test_a_threshold_referring_to_its_own_value_is_refused(
    entry: dict[str, object], key: str
) -> None:
    """A threshold that is the compared value itself (same metric, same window) stops
    start-up: it compared a value with a multiple of itself."""
    with pytest.raises(ConfigError) as err:
        config({"alerts": {"rules": [{"name": "x", **entry}]}})
    text = str(err.value)
    assert text.startswith(f"<test>: {key}: the threshold refers to the value"), text


def test_a_threshold_on_another_window_of_the_same_metric_is_kept() -> None:
    """Arrivals over 5 minutes against twice those over 60 (the volume spike) is valid."""
    rule = {
        "name": "spike",
        "when": [
            {
                "metric": "arrival_rate_per_s",
                "window": "5m",
                "op": ">",
                "value": "2 * arrival_rate_per_s@60m",
            }
        ],
    }
    [kept] = config({"alerts": {"default_rules": False, "rules": [rule]}}).alerts.rules
    assert kept.conditions[0].threshold.window == "60m"


def test_window_metrics_name_every_count_of_the_windows() -> None:
    """The rules' window metrics start with the windows' counts, in their order."""
    from callfloor.alerts.rules import WINDOW_METRICS
    from callfloor.processors.windows import COUNT_NAMES

    assert WINDOW_METRICS[: len(COUNT_NAMES)] == COUNT_NAMES
