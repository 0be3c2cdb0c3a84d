"""The live floor's hash fields and change message, from real views (no Redis)."""

from __future__ import annotations

import json

import msgspec
from helpers import T0, ev, processor

from callfloor.processors.engine import FloorProcessor
from callfloor.processors.views import NamePolicy
from callfloor.sinks.floor_fields import (
    agent_fields,
    encode_message,
    queue_fields,
    site_fields,
    text,
)
from callfloor.sinks.redis_floor import FloorKeys


def test_values_are_text_and_null_is_empty() -> None:
    """Ints in decimal, floats round-trip, None as the empty string, strings as they are."""
    assert [text(3), text(0.1 + 0.2), text(None), text("x"), text(True)] == [
        "3",
        "0.30000000000000004",
        "",
        "x",
        "1",
    ]
    assert float(text(0.1 + 0.2)) == 0.1 + 0.2


def _floor() -> FloorProcessor:
    proc = processor(
        [
            ev("agent_state", T0 - 60, agent="a1", state="available", queues=["q"], name="Ann"),
            ev("call_queued", T0 - 50, call_id="c1", queue="q"),
            ev("call_answered", T0 - 40, call_id="c1", queue="q", agent="a1"),
            ev("call_queued", T0 - 30, call_id="c2", queue="q"),
        ]
    )
    proc.tick(T0)
    return proc


def test_queue_fields_are_dotted_paths_of_the_api_answer() -> None:
    """Every window stat is ``{label}.{stat}``, agents by state ``agents.{state}``, and
    ``json`` is the whole answer."""
    proc = _floor()
    view = proc.view
    queue = view.queue("q")
    assert queue is not None
    fields = queue_fields("q", queue, view.queue_info("q"), view.as_of, "me")
    answer = json.loads(fields["json"])
    for label, stats in answer["windows"].items():
        for stat, value in stats.items():
            assert fields[f"{label}.{stat}"] == ("" if value is None else text(value))
    for state, count in answer["live"]["agents"].items():
        assert fields[f"agents.{state}"] == str(count)
    assert fields["waiting"] == "1" and fields["longest_wait_s"] == "30.0"
    assert fields["15m.answered"] == "1" and fields["15m.aht_s"] == ""
    assert (fields["name"], fields["site"], fields["owner"]) == ("q", "default", "me")
    assert float(fields["as_of"]) == answer["as_of"] == T0


def test_site_and_agent_fields() -> None:
    """A site hash names itself as its site; an agent hash holds its identity and state."""
    proc = _floor()
    view = proc.view
    site_view, detail = view.site("default"), view.agent_detail("a1", names=NamePolicy.SHOW)
    assert site_view is not None and detail is not None
    site = site_fields("default", site_view, view.as_of, "me")
    agent = agent_fields(detail, view.as_of, "me")
    assert site["site"] == site["name"] == "default" and site["waiting"] == "1"
    assert agent["display_name"] == "Ann" and agent["team"] == ""
    assert agent["state"] == "available" and json.loads(agent["queues"]) == ["q"]
    assert json.loads(agent["json"])["name"] == "a1"


def test_message_sorts_names_and_carries_violations() -> None:
    """The change message lists sorted names, the resync flag and violation changes."""
    proc = processor([ev("agent_state", T0 - 700, agent="a1", state="not_ready", reason="x")])
    proc.tick(T0)
    violations = proc.drain_changes().violations
    body = encode_message(
        as_of=T0,
        owner="me",
        resync=False,
        queues=["b", "a"],
        sites=[],
        agents={"a1"},
        violations=violations,
    )
    message = msgspec.json.decode(body)
    assert message["queues"] == ["a", "b"] and message["agents"] == ["a1"]
    assert [v["kind"] for v in message["violations"]] == ["not_ready_exceeded"]
    assert message["resync"] is False and message["owner"] == "me"


def test_key_layout() -> None:
    """Keys under the prefix: a hash per name, a set per kind, as_of and the channel."""
    keys = FloorKeys("cf")
    assert keys.hash("queue", "sales:eu") == "cf:floor:queue:sales:eu"
    assert keys.index("agent") == "cf:floor:agents"
    assert (keys.as_of, keys.channel) == ("cf:floor:as_of", "cf:floor:changes")
