"""What the feed mappers share: line splitting, ids, redaction, names, options from the config."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callfloor.config import ConfigError, parse_config
from callfloor.feeds.base import FeedOptions, LineSplitter, event_id, redact_text, strip_agent


def test_lines_come_with_their_byte_offsets_and_numbers() -> None:
    """Each complete line comes with the byte offset where it starts and its line number."""
    lines, offsets, numbers = LineSplitter().push(b"a|1\nbb|2\r\n\ncc\n")
    assert lines == [b"a|1", b"bb|2", b"cc"]
    assert offsets == [0, 4, 11]
    assert numbers == [1, 2, 4]


def test_an_unfinished_line_waits_for_its_newline() -> None:
    """A line still being written is held until its newline comes, then given whole."""
    splitter = LineSplitter()
    assert splitter.push(b"100|c1|q|NONE|ENTERQ") == ([], [], [])
    assert splitter.tail() == (b"100|c1|q|NONE|ENTERQ", 0, 1)
    lines, offsets, _ = splitter.push(b"UEUE||5550001|1\n200|")
    assert lines == [b"100|c1|q|NONE|ENTERQUEUE||5550001|1"]
    assert offsets == [0]
    assert splitter.offset == len(lines[0]) + 1


@given(
    st.lists(st.binary(max_size=12).filter(lambda b: b"\n" not in b), max_size=8), st.integers(1, 7)
)
def test_splitting_does_not_depend_on_how_the_bytes_arrive(parts: list[bytes], size: int) -> None:
    """Lines and offsets are the same whether the data comes whole or in pieces."""
    data = b"".join(p + b"\n" for p in parts)
    whole = LineSplitter().push(data)
    splitter = LineSplitter()
    pieces: tuple[list[bytes], list[int], list[int]] = ([], [], [])
    for i in range(0, len(data), size):
        lines, offsets, numbers = splitter.push(data[i : i + size])
        pieces[0].extend(lines)
        pieces[1].extend(offsets)
        pieces[2].extend(numbers)
    assert pieces == whole


def _reference_split(data: bytes, offset: int, line: int) -> list[tuple[bytes, int, int]]:
    """What LineSplitter gives, the plain way: each line, its \\r dropped, blanks left out."""
    out = []
    for part in data[: data.rfind(b"\n") + 1].split(b"\n")[:-1]:
        kept = part[:-1] if part.endswith(b"\r") else part
        if kept.strip():
            out.append((kept, offset, line))
        offset += len(part) + 1
        line += 1
    return out


@given(
    st.lists(
        st.lists(st.sampled_from([b"a", b"|", b" ", b"\t", b"\r", b"\x0b", b"\x0c", b"\xe9"]))
        .map(b"".join)
        .filter(lambda b: b"\n" not in b),
        max_size=10,
    ),
    st.integers(1, 9),
    st.integers(0, 1000),
)
def test_splitting_keeps_exactly_the_non_blank_lines(
    parts: list[bytes], size: int, at: int
) -> None:
    """Blank lines (spaces, tabs, form feeds) are left out and \\r dropped, whether a chunk
    holds any or not: the same lines, offsets and numbers as splitting line by line."""
    data = b"".join(p + b"\n" for p in parts) + b"x"
    splitter = LineSplitter(at, 3)
    got: list[tuple[bytes, int, int]] = []
    for i in range(0, len(data), size):
        got.extend(zip(*splitter.push(data[i : i + size]), strict=True))
    assert got == _reference_split(data, at, 3)
    assert splitter.offset == at + len(data) - 1
    assert splitter.tail() == (b"x", at + len(data) - 1, 3 + len(parts))


def test_event_ids_depend_on_position_and_content_only() -> None:
    """The same record at the same position has the same id in every run; another position
    or other content gives another id."""
    line = b"1543602753|1543602660.197|IT|Agent/1127|CONNECT|76|1543602746.232|6"
    assert event_id("ql", 4096, line) == event_id("ql", 4096, line)
    assert event_id("ql", 4096, line) == "ql-1000-" + event_id("ql", 4096, line).split("-")[2]
    assert event_id("ql", 4097, line) != event_id("ql", 4096, line)
    assert event_id("ql", 4096, line.replace(b"76", b"77")) != event_id("ql", 4096, line)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5550000001", "[redacted]"),
        ("+15551234567", "[redacted]"),
        ('"Ada" <5551234567>', '"Ada" <[redacted]>'),
        ("1543602660.197", "1543602660.197"),  # an Asterisk uniqueid
        ("1127", "1127"),  # an extension
        ("10000", "10000"),  # ring milliseconds
        ("hint:1127@default", "hint:1127@default"),
    ],
)
def test_redaction_hides_phone_numbers_and_keeps_the_rest(text: str, expected: str) -> None:
    """Runs of 7 or more digits (a phone number) are hidden; uniqueids and extensions stay."""
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("Agent/1127", "1127"),
        ("Local/1127@callback-agent", "1127"),
        ("Local/1127@from-queue/n", "1127"),
        ("SIP/1127", "1127"),
        ("PJSIP/ada", "ada"),
        ("Ada Lovelace", "Ada Lovelace"),
    ],
)
def test_the_technology_and_context_are_dropped(raw: str, name: str) -> None:
    """However the log writes a member, the technology prefix and @context go."""
    assert strip_agent(raw) == name


def test_options_come_from_the_configuration() -> None:
    """Queue sites, privacy, aliases, names and the export time zone come from the config;
    the command line's site and zone win."""
    cfg = parse_config(
        {
            "sites": {"ny": {"timezone": "America/New_York"}},
            "queues": {"sales": {"site": "ny"}, "loose": {}},
            "privacy": {"caller_ids": "keep"},
            "asterisk": {"aliases": {"1127": "ada"}, "strip_technology": False},
            "connect": {"queues": {"q-id": "support"}, "agents": {"a-id": "bob"}},
        }
    )
    options = FeedOptions.from_config(cfg, site="ny")
    assert options.queue_sites == {"sales": "ny"}
    assert options.site_of("sales") == "ny"
    assert options.site_of("loose") == "ny"  # not placed: the default site
    assert options.caller_ids == "keep"
    assert options.aliases == {"1127": "ada"}
    assert options.strip_technology is False
    assert options.timezone == "America/New_York"  # the default site's zone
    assert options.connect_queues == {"q-id": "support"}
    assert options.connect_agents == {"a-id": "bob"}
    assert FeedOptions.from_config(cfg, timezone="Asia/Tokyo").timezone == "Asia/Tokyo"
    zoned = parse_config({"asterisk": {"timezone": "Europe/Paris"}})
    assert FeedOptions.from_config(zoned).timezone == "Europe/Paris"
    assert FeedOptions.from_config(parse_config({})).caller_ids == "redact"


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"privacy": {"caller_ids": "hash"}}, "privacy.caller_ids"),
        ({"privacy": {"callerids": "keep"}}, "privacy.callerids"),
        ({"asterisk": {"timezone": "Mars/Olympus"}}, "asterisk.timezone"),
        ({"asterisk": {"aliases": {"1127": 5}}}, "asterisk.aliases.1127"),
        ({"asterisk": {"strip_technology": "yes"}}, "asterisk.strip_technology"),
        ({"connect": {"queues": ["a"]}}, "connect.queues"),
        ({"connect": {"users": {}}}, "connect.users"),
    ],
)
def test_bad_feed_settings_name_the_key(data: dict[str, object], key: str) -> None:
    """A wrong [privacy], [asterisk] or [connect] setting stops with its key named."""
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_config(data, "floor.toml")
