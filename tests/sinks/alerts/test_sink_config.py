"""[alerts.sinks.<name>] tables and [alerts] alertmanager_url: parsed, or refused clearly."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from callfloor.config import ConfigError
from callfloor.sinks.alerts.alertmanager import AlertmanagerConfig
from callfloor.sinks.alerts.base import DEFAULTS
from callfloor.sinks.alerts.log import LogConfig, LogSink
from callfloor.sinks.alerts.mqtt import MqttConfig
from callfloor.sinks.alerts.registry import KINDS, create_sinks, parse_sinks
from callfloor.sinks.alerts.webhook import WebhookConfig

EXAMPLE = """
[alerts]
alertmanager_url = "http://127.0.0.1:9093"

[alerts.sinks.supervisors]
kind = "webhook"
url = "https://chat.example.com/hooks/abc"
template = "slack"
secret = "env:CF_HOOK_SECRET"
timeout = "5s"
max_queue = 200
retry_max = 5
backoff = "2s"
backoff_max = "1m"
deadline = "15m"

[alerts.sinks.floor-sh]
kind = "webhook"
url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"
template = "wecom"
language = "zh-CN"
timezone = "Asia/Shanghai"

[alerts.sinks.boards]
kind = "mqtt"
url = "mqtt://127.0.0.1:1883"
topic_prefix = "callfloor"
qos = 1

[alerts.sinks.log]
kind = "log"
"""


def parse(tables: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return dict(parse_sinks(tables, "floor.toml", **kw))


def refused(tables: dict[str, Any], **kw: Any) -> str:
    with pytest.raises(ConfigError) as raised:
        parse_sinks(tables, "floor.toml", **kw)
    return str(raised.value)


def test_the_documented_example_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example of docs/alerts.md: every kind, the shorthand, env secrets, durations."""
    monkeypatch.setenv("CF_HOOK_SECRET", "s3")
    data = tomllib.loads(EXAMPLE)["alerts"]
    sinks = parse(data["sinks"], alertmanager_url=data["alertmanager_url"])
    assert list(sinks) == ["alertmanager", "supervisors", "floor-sh", "boards", "log"]
    am = sinks["alertmanager"]
    assert isinstance(am, AlertmanagerConfig) and am.url == "http://127.0.0.1:9093"
    hook = sinks["supervisors"]
    assert isinstance(hook, WebhookConfig)
    assert (hook.secret, hook.template, hook.timeout_s, hook.max_queue) == ("s3", "slack", 5, 200)
    assert (hook.retry_max, hook.backoff_s, hook.backoff_max_s, hook.deadline_s) == (5, 2, 60, 900)
    zh = sinks["floor-sh"]
    assert isinstance(zh, WebhookConfig) and (zh.language, zh.timezone) == (
        "zh-CN",
        "Asia/Shanghai",
    )
    assert isinstance(sinks["boards"], MqttConfig)
    assert isinstance(sinks["log"], LogConfig) and sinks["log"].deliver_silenced
    assert isinstance(create_sinks({"log": sinks["log"]})[0], LogSink)


def test_defaults() -> None:
    """A table with only kind and url gets the documented policy."""
    hook = parse({"h": {"kind": "webhook", "url": "http://127.0.0.1/x"}})["h"]
    assert (hook.timeout_s, hook.max_queue, hook.retry_max) == (10.0, 1000, 10)
    assert (hook.backoff_s, hook.backoff_max_s, hook.deadline_s) == (1.0, 60.0, 1800.0)
    assert hook.template == "json" and hook.language == "en" and not hook.deliver_silenced
    assert DEFAULTS.timeout_s == hook.timeout_s


@pytest.mark.parametrize(
    ("tables", "kw", "message"),
    [
        ({"h": {"kind": "pager"}}, {}, "alerts.sinks.h.kind: must be one of alertmanager"),
        ({"h": {"url": "http://x"}}, {}, "alerts.sinks.h.kind: missing"),
        ({"h": {"kind": "webhook"}}, {}, "alerts.sinks.h.url: a webhook sink needs"),
        ({"h": {"kind": "webhook", "url": "ftp://x"}}, {}, "alerts.sinks.h.url: expected an http"),
        (
            {"h": {"kind": "webhook", "url": "http:///x"}},
            {},
            "alerts.sinks.h.url: the URL has no host",
        ),
        ({"h": {"kind": "webhook", "url": "http://x:99999"}}, {}, "alerts.sinks.h.url: bad port"),
        (
            {"h": {"kind": "webhook", "url": "http://x", "topic_prefix": "a"}},
            {},
            "alerts.sinks.h.topic_prefix: unknown key",
        ),
        (
            {"h": {"kind": "webhook", "url": "http://x", "template": "irc"}},
            {},
            "alerts.sinks.h.template: must be one of json, slack, teams, dingtalk, wecom",
        ),
        (
            {"h": {"kind": "webhook", "url": "http://x", "language": "fr"}},
            {},
            "alerts.sinks.h.language: must be one of en, zh-CN",
        ),
        (
            {"h": {"kind": "webhook", "url": "http://x", "timezone": "Mars/Base"}},
            {},
            "alerts.sinks.h.timezone: unknown time zone",
        ),
        (
            {"h": {"kind": "webhook", "url": "http://x", "timeout": 0}},
            {},
            "alerts.sinks.h.timeout: must be longer than 0",
        ),
        (
            {"h": {"kind": "webhook", "url": "http://x", "max_queue": 0}},
            {},
            "alerts.sinks.h.max_queue: must be at least 1",
        ),
        (
            {"h": {"kind": "webhook", "url": "http://x", "backoff": "10s", "backoff_max": "1s"}},
            {},
            "alerts.sinks.h.backoff_max: 1 s is below backoff",
        ),
        (
            {"h": {"kind": "webhook", "url": "http://x", "headers": {"X Bad": "v"}}},
            {},
            "alerts.sinks.h.headers.X Bad: not a valid HTTP header name",
        ),
        (
            {
                "h": {
                    "kind": "webhook",
                    "url": "http://x",
                    "headers": {"X-Callfloor-Signature": "v"},
                }
            },
            {},
            "callfloor sets this header itself",
        ),
        (
            {"h": {"kind": "webhook", "url": "http://x", "secret": "env:CF_NOT_SET_ANYWHERE"}},
            {},
            "alerts.sinks.h.secret: environment variable CF_NOT_SET_ANYWHERE is not set",
        ),
        (
            {"m": {"kind": "mqtt", "url": "http://x"}},
            {},
            "alerts.sinks.m.url: url 'http://x': expected mqtt://",
        ),
        ({"m": {"kind": "mqtt", "qos": 3}}, {}, "alerts.sinks.m.qos: must be 0, 1 or 2"),
        (
            {"m": {"kind": "mqtt", "topic_prefix": "a/#"}},
            {},
            "alerts.sinks.m.topic_prefix: expected topic levels",
        ),
        (
            {"m": {"kind": "mqtt", "protocol": 4}},
            {},
            "alerts.sinks.m.protocol: must be one of 5, 3.1.1",
        ),
        (
            {"m": {"kind": "mqtt", "url": "mqtts://x", "ca_file": "/nonexistent/ca.pem"}},
            {},
            "alerts.sinks.m.ca_file: cannot use '/nonexistent/ca.pem'",
        ),
        (
            {"m": {"kind": "mqtt", "ca_file": "/nonexistent/ca.pem"}},
            {},
            "alerts.sinks.m.ca_file: only an mqtts:// url",
        ),
        (
            {"a": {"kind": "alertmanager", "url": "http://x", "refresh": "0.5s"}},
            {},
            "alerts.sinks.a.refresh: must be at least 1 s",
        ),
        (
            {"a": {"kind": "alertmanager", "url": "http://x", "username": "u"}},
            {},
            "alerts.sinks.a.password: basic auth needs both",
        ),
        ({"l": {"kind": "log", "url": "http://x"}}, {}, "alerts.sinks.l.url: unknown key"),
        ({"l": "log"}, {}, "alerts.sinks.l: expected a table"),
        ({"bad name": {"kind": "log"}}, {}, "alerts.sinks.bad name: a sink name is"),
        ({}, {"alertmanager_url": "localhost:9093"}, "alerts.alertmanager_url: expected an http"),
        (
            {"alertmanager": {"kind": "log"}},
            {"alertmanager_url": "http://x"},
            "alerts.alertmanager_url: a sink named 'alertmanager' is configured too",
        ),
    ],
)
def test_problems_name_the_file_the_key_and_the_problem(
    tables: dict[str, Any], kw: dict[str, Any], message: str
) -> None:
    """Each bad table stops start-up with file, key and problem."""
    text = refused(tables, **kw)
    assert text.startswith("floor.toml: "), text
    assert message in text, text


def test_a_url_may_be_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """url = "env:NAME" (a Slack webhook URL is a secret), validated once resolved."""
    monkeypatch.setenv("CF_SLACK_URL", "https://hooks.slack.com/services/T/B/x")
    hook = parse({"s": {"kind": "webhook", "url": "env:CF_SLACK_URL", "template": "slack"}})["s"]
    assert hook.url == "https://hooks.slack.com/services/T/B/x"
    monkeypatch.setenv("CF_SLACK_URL", "not a url")
    assert "the value of env:CF_SLACK_URL" in refused(
        {"s": {"kind": "webhook", "url": "env:CF_SLACK_URL"}}
    )


def test_every_kind_is_registered_with_its_keys() -> None:
    """The registry knows the four kinds; each parses a minimal table to a config of its kind."""
    assert sorted(KINDS) == ["alertmanager", "log", "mqtt", "webhook"]
    minimal = {
        "alertmanager": {"url": "http://x"},
        "webhook": {"url": "http://x"},
        "mqtt": {},
        "log": {},
    }
    for kind, extra in minimal.items():
        [cfg] = parse({"s": {"kind": kind, **extra}}).values()
        assert cfg.kind == kind and cfg.name == "s"
        [sink] = create_sinks({"s": cfg})
        assert sink.name == "s" and sink.config is cfg
