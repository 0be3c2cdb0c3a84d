"""Configuration of the HTTP edge: what cannot work is refused, what is weak is warned
about, what is absurd is bounded; the new [http] keys and [limits] max_inflight_body."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from callfloor.config import ConfigError, load_config, parse_config


def _refused(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(data, "cfg.toml")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"http": {"port": 70000}}, "cfg.toml: http.port: must be at most 65535, got 70000"),
        ({"http": {"port": 0}}, "http.port: must be at least 1"),
        (
            {"limits": {"max_name_length": 100_000_000}},
            "limits.max_name_length: must be at most 4096",
        ),
        ({"store": {"checkpoint_every": "1ms"}}, "store.checkpoint_every: must be at least 100 ms"),
        (
            {"limits": {"max_inflight_body": "8MB"}},
            "limits.max_inflight_body: [limits] max_inflight_body (8388608 bytes) is smaller "
            "than [limits] max_body (16777216 bytes)",
        ),
        ({"limits": {"max_body": "1GB"}}, "limits.max_body: [limits] max_inflight_body"),
    ],
)
def test_absurd_numbers_are_refused_naming_the_key(data: dict[str, object], message: str) -> None:
    """A port beyond 65535, a name limit of 100 million, checkpoints every millisecond and
    an in-flight bound below max_body are configuration errors naming the key."""
    _refused(data, message)


@pytest.mark.parametrize(
    ("token", "what"),
    [
        ("two 7311words", "a space"),
        (" pad-8812", "a space"),
        ("tok-4471\n", "a line break"),
        ("bell\x07-0123456789abcdef", "a control character"),
        ("caf\u00e9-0123456789abcdef", "a non-ASCII character"),
    ],
)
def test_tokens_no_client_could_send_are_refused(token: str, what: str) -> None:
    """A token with a space, a line break, a control or a non-ASCII character is refused,
    naming what it has and never showing it."""
    with pytest.raises(ConfigError) as info:
        parse_config({"http": {"read_tokens": [token]}}, "cfg.toml")
    message = str(info.value)
    assert message.startswith("cfg.toml: http.read_tokens[0]: the token has " + what)
    assert token.strip() not in message


def test_a_token_from_the_environment_with_a_newline_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """env:NAME holding a token read from a file with its newline is refused with a hint."""
    monkeypatch.setenv("CF_EDGE_TOKEN", "0123456789abcdef0123\n")
    _refused({"http": {"write_tokens": ["env:CF_EDGE_TOKEN"]}}, "http.write_tokens[0]")


def test_weak_tokens_are_warnings_naming_file_and_key() -> None:
    """Short tokens, a token in both lists and a token listed twice load, with a warning
    each naming the file and the key."""
    cfg = parse_config(
        {"http": {"write_tokens": ["x", "x"], "read_tokens": ["x", "r" * 16]}}, "cfg.toml"
    )
    assert cfg.warnings == (
        "cfg.toml: http.write_tokens[0]: the token is 1 character long, fewer than 16: it "
        "can be guessed; use a random one (e.g. openssl rand -hex 32)",
        "cfg.toml: http.write_tokens[1]: the token is 1 character long, fewer than 16: it "
        "can be guessed; use a random one (e.g. openssl rand -hex 32)",
        "cfg.toml: http.write_tokens[1]: the same token is listed twice",
        "cfg.toml: http.read_tokens[0]: the token is 1 character long, fewer than 16: it "
        "can be guessed; use a random one (e.g. openssl rand -hex 32)",
        "cfg.toml: http.read_tokens[0]: the same token is in write_tokens: its holder reads "
        "and writes, so the two lists are not kept apart; give readers their own token",
    )
    assert parse_config({"http": {"write_tokens": ["w" * 16]}}).warnings == ()


def test_allowed_hosts_are_kept_in_canonical_form() -> None:
    """Names lower case without a trailing dot, wildcards as written, addresses canonical."""
    cfg = parse_config(
        {"http": {"allowed_hosts": ["Floor.Example.COM.", "*.wall.example", "[::1]", "10.0.0.1"]}}
    )
    assert cfg.http.allowed_hosts == ("floor.example.com", "*.wall.example", "::1", "10.0.0.1")


@pytest.mark.parametrize("entry", ["http://floor.example", "floor.example:8080", "a/b", "*", ""])
def test_allowed_hosts_with_scheme_port_or_path_are_refused(entry: str) -> None:
    """An allowed host is a bare name or address: a URL, a port or a lone * is refused."""
    _refused({"http": {"allowed_hosts": [entry]}}, "http.allowed_hosts[0]")


def test_trusted_proxies_take_addresses_and_networks() -> None:
    """Addresses become one-address networks; networks stay as written."""
    cfg = parse_config({"http": {"trusted_proxies": ["127.0.0.1", "10.0.0.0/8", "::1"]}})
    assert cfg.http.trusted_proxies == ("127.0.0.1/32", "10.0.0.0/8", "::1/128")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("10.0.0.1/8", "has host bits set"),
        ("proxy.local", "expected an IP address or a network"),
        ("0.0.0.0/0", "trusts every address"),
        ("::/0", "trusts every address"),
    ],
)
def test_bad_trusted_proxies_are_refused(entry: str, message: str) -> None:
    """Names, networks with host bits and everything-networks are refused."""
    _refused({"http": {"trusted_proxies": [entry]}}, message)


def test_tls_needs_both_files_and_they_must_be_readable(tmp_path: Path) -> None:
    """tls_cert without tls_key (or the reverse) and a file that cannot be read are refused;
    both readable files load."""
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("x")
    _refused({"http": {"tls_cert": str(cert)}}, "http.tls_key: TLS needs both")
    _refused({"http": {"tls_key": str(key)}}, "http.tls_cert: TLS needs both")
    _refused(
        {"http": {"tls_cert": str(tmp_path / "no.pem"), "tls_key": str(key)}},
        "http.tls_cert: cannot read",
    )
    cfg = parse_config({"http": {"tls_cert": str(cert), "tls_key": str(key)}})
    assert (cfg.http.tls_cert, cfg.http.tls_key) == (str(cert), str(key))


def test_max_inflight_body_defaults_to_256_mb() -> None:
    """[limits] max_inflight_body is 256 MB unless set, and takes a size."""
    assert parse_config({}).limits.max_inflight_body_bytes == 256 * 1024 * 1024
    assert parse_config(
        {"limits": {"max_inflight_body": "1GB"}}
    ).limits.max_inflight_body_bytes == (1024**3)


def test_a_config_file_that_is_not_utf8_is_one_config_error(tmp_path: Path) -> None:
    """Latin-1 bytes in the file are a ConfigError naming the file and the byte."""
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"# caf\xe9\n[http]\nport = 8080\n")
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 0xe9 at offset 5\)"):
        load_config(path)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"[http]\nport = 70000\n", "http.port: must be at most 65535"),
        (b"# caf\xe9\n", "not UTF-8 text"),
    ],
)
def test_serve_stops_with_one_line_and_exit_2(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    """`callfloor serve` with such a file prints one line naming the problem, exit code 2."""
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    done = subprocess.run(
        [sys.executable, "-m", "callfloor", "serve", "--config", str(path)],
        capture_output=True,
        timeout=30,
    )
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 2
    assert len(lines) == 1
    assert lines[0].startswith(f"callfloor: configuration error: {path}: ")
    assert expected in lines[0]
