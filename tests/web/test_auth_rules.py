"""The access rules as pure functions: classification, loopback, tokens, redaction."""

from __future__ import annotations

import msgspec
import pytest
from helpers import config
from hypothesis import given
from hypothesis import strategies as st

from callfloor.metrics.render import label_set
from callfloor.web.auth import (
    Access,
    Need,
    Tokens,
    bearer_token,
    classify,
    is_loopback_host,
    is_loopback_peer,
    notes,
    refusal,
)
from callfloor.web.redact import hide_agent_info_names, hide_display_names


@pytest.mark.parametrize(
    ("method", "route", "need"),
    [
        ("POST", "ingest", Need.WRITE),
        ("PUT", "ingest", Need.WRITE),
        ("POST", "snapshot", Need.WRITE),  # a future POST route is a write unlisted
        ("DELETE", None, Need.WRITE),
        ("GET", "snapshot", Need.READ),
        ("HEAD", "agents", Need.READ),
        ("GET", "metrics", Need.READ),
        ("GET", "index", Need.READ),
        ("GET", None, Need.READ),  # unknown paths
        ("GET", "healthz", Need.OPEN),
        ("HEAD", "readyz", Need.OPEN),
        ("POST", "healthz", Need.WRITE),
    ],
)
def test_requests_are_classified_by_method_and_route(
    method: str, route: str | None, need: Need
) -> None:
    """Probes are open, other reads need a read token, every other method a write token."""
    assert classify(method, route) is need


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("192.0.2.2", False),
        ("10.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("fe80::1", False),
        ("0.0.0.0", False),
        ("", False),
        (None, False),
        ("not-an-address", False),
    ],
)
def test_peers_are_loopback_only_in_127_8_and_1(address: str | None, loopback: bool) -> None:
    """A peer is loopback in 127.0.0.0/8, ::1 or IPv4-mapped 127.x; anything else is not."""
    assert is_loopback_peer(address) is loopback


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LocalHost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("192.0.2.2", False),
        ("callfloor.example", False),
    ],
)
def test_listen_addresses_beyond_loopback(host: str, loopback: bool) -> None:
    """Only loopback literals and localhost are loopback binds; names and wildcards are not."""
    assert is_loopback_host(host) is loopback


@given(st.lists(st.text(min_size=1), max_size=4, unique=True), st.text(min_size=1))
def test_a_token_matches_exactly_when_configured(tokens: list[str], presented: str) -> None:
    """Tokens.matches is membership, for any text (non-ASCII included)."""
    assert Tokens(tokens).matches(presented) is (presented in tokens)
    for token in tokens:
        assert Tokens(tokens).matches(token)


def test_a_header_with_undecodable_bytes_is_compared_not_raised() -> None:
    """A token holding lone surrogates (aiohttp's decoding of non-UTF-8 bytes) is just wrong."""
    assert not Tokens(["ab"]).matches("a\udcff")


def test_no_tokens_is_falsy_and_matches_nothing() -> None:
    """An empty token set is false and matches no token, the empty one included."""
    assert not Tokens(())
    assert not Tokens(()).matches("")


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER   abc  ", "abc"),
    ],
)
def test_bearer_tokens_are_read_from_the_header(header: str | None, token: str | None) -> None:
    """The token after a case-insensitive Bearer scheme; None without a header."""
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    ("header", "says"),
    [
        ("Basic dTpw", "'Basic', not Bearer"),
        ("Bearer", "no token after Bearer"),
        ("Bearer   ", "no token after Bearer"),
        ("abc", "'abc', not Bearer"),
    ],
)
def test_other_authorization_headers_say_what_is_wrong(header: str, says: str) -> None:
    """A header that is not `Bearer <token>` is reported with what it is instead."""
    found = bearer_token(header)
    assert found is not None and says in found and found != header


def test_a_long_scheme_is_cut_in_the_message() -> None:
    """A huge scheme is not echoed whole: the answer never grows with the attack."""
    found = bearer_token("x" * 10_000 + " token")
    assert found is not None and len(found) < 100


def test_write_refusals_and_passes() -> None:
    """Write: 403 from beyond loopback without tokens; with tokens, 401 unless one matches."""
    open_ = Access()
    assert open_.refuse(Need.WRITE, None, "127.0.0.1", "POST /x") is None
    refused = open_.refuse(Need.WRITE, None, "10.0.0.1", "POST /x")
    assert refused is not None and refused.status == 403
    tokened = Access(write_tokens=["t"])
    assert tokened.refuse(Need.WRITE, "Bearer t", "10.0.0.1", "POST /x") is None
    missing = tokened.refuse(Need.WRITE, None, "127.0.0.1", "POST /x")
    assert missing is not None and missing.status == 401


def test_names_are_hidden_only_from_tokenless_remote_readers() -> None:
    """Display names are withheld from a non-loopback peer only when no read token exists."""
    assert Access().hides_names("10.0.0.1")
    assert not Access().hides_names("127.0.0.1")
    assert not Access(read_tokens=["r"]).hides_names("10.0.0.1")


def test_serve_refuses_a_wide_bind_without_write_tokens() -> None:
    """Beyond loopback without write tokens there is a refusal naming [http] write_tokens."""
    found = refusal("0.0.0.0", config().http)
    assert found is not None and "[http] write_tokens" in found and "0.0.0.0" in found
    assert refusal("127.0.0.1", config().http) is None
    assert refusal("0.0.0.0", config({"http": {"write_tokens": ["t"]}}).http) is None


def test_start_up_notes_name_the_open_rules() -> None:
    """A loopback bind without write tokens notes writes open to loopback only, nothing else;
    a wide bind notes hidden names and the Host check."""
    lines = notes("127.0.0.1", config().http)
    assert len(lines) == 1 and "writes are open to loopback only" in lines[0]
    assert notes("127.0.0.1", config({"http": {"write_tokens": ["t"]}}).http) == []
    wide = notes("0.0.0.0", config({"http": {"write_tokens": ["t"]}}).http)
    assert len(wide) == 2 and "agent_names=hidden_beyond_loopback" in wide[0]
    assert "host_check=on allowed_hosts=none" in wide[1]


_VALUES = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)


@given(
    st.lists(st.tuples(_VALUES, _VALUES, _VALUES, _VALUES), max_size=5),
    st.booleans(),
    st.booleans(),
)
def test_metrics_redaction_empties_only_the_name_label(
    agents: list[tuple[str, str, str, str]], more_after: bool, trailing_newline: bool
) -> None:
    """Every callfloor_agent_info line loses its name and nothing else changes, whatever the
    label values hold (quotes, backslashes, newlines, `name="` inside other values), and
    wherever the family stands (last in the exposition or not)."""
    before = ["# HELP x y\n", 'callfloor_queue_waiting{queue="q"} 1.0\n']
    lines, expected = list(before), list(before)
    for agent, name, site, team in agents:
        shown = label_set(agent=agent + ',name="', name=name, site=site, team=team)[0]
        hidden = label_set(agent=agent + ',name="', name="", site=site, team=team)[0]
        lines.append(f"callfloor_agent_info{shown} 1.0\n")
        expected.append(f"callfloor_agent_info{hidden} 1.0\n")
    if more_after:
        lines.append('callfloor_agent_state_seconds{agent="a",name="x"} 2.0\n')
        expected.append(lines[-1])
    body = "".join(lines).encode()
    want = "".join(expected).encode()
    if not trailing_newline:
        body, want = body.rstrip(b"\n"), want.rstrip(b"\n")
    assert hide_agent_info_names(body) == want


def test_metrics_without_agent_info_are_returned_as_they_are() -> None:
    """With per-agent series off the exposition is the same object, not a copy."""
    body = b'callfloor_queue_waiting{queue="q"} 1.0\n'
    assert hide_agent_info_names(body) is body


def test_agent_list_redaction_nulls_display_names_only() -> None:
    """In an agents list every display_name is null; the other fields are kept as they were."""
    data = {
        "as_of": 1.0,
        "agents": {
            "a1": {"state": "available", "display_name": "Ann", "team": "blue"},
            "a2": {"state": "on_call", "display_name": None, "team": None},
        },
    }
    out = msgspec.json.decode(hide_display_names(msgspec.json.encode(data), one=False))
    assert out == {
        "as_of": 1.0,
        "agents": {
            "a1": {"state": "available", "display_name": None, "team": "blue"},
            "a2": {"state": "on_call", "display_name": None, "team": None},
        },
    }
