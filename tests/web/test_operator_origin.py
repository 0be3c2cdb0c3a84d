"""A page of another origin posting operator commands to a token-less loopback
`callfloor serve` (CSRF): the Origin check, scheme, host and port."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving import ServeProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    path: Path = tmp_path_factory.mktemp("origin") / "callfloor.toml"
    path.write_text('[sites.s]\ntimezone = "UTC"\n[queues.q]\nsite = "s"\n', encoding="utf-8")
    running = ServeProcess(path)
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def _silence(server: ServeProcess, origin: str | None) -> int:
    """POST a silence as a browser form would (text/plain, no token), from ``origin``."""
    headers = {"Content-Type": "text/plain"}
    if origin is not None:
        headers["Origin"] = origin
    request = urllib.request.Request(
        server.base + "/api/v1/silences",
        data=json.dumps({"duration": "1h", "comment": "csrf"}).encode(),
        headers=headers,
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as err:
        return err.code


def test_loopback_without_tokens_is_the_operator(server: ServeProcess) -> None:
    """Without any token configured, a loopback client without Origin (curl) may
    silence."""
    assert _silence(server, None) == 201


def test_the_services_own_page_may_post(server: ServeProcess) -> None:
    """A page of the service's own origin (scheme, host and port) may post."""
    assert _silence(server, f"http://127.0.0.1:{server.port}") == 201


def test_a_foreign_site_may_not_post(server: ServeProcess) -> None:
    """A page of another host is refused 403."""
    assert _silence(server, "http://evil.example") == 403


def test_a_page_on_another_local_port_may_not_post(server: ServeProcess) -> None:
    """A page served from another port of the same host is another origin: 403 (the
    check compared host names only)."""
    assert _silence(server, f"http://127.0.0.1:{server.port + 1}") == 403


def test_a_null_origin_may_not_post(server: ServeProcess) -> None:
    """A sandboxed page (Origin: null) is refused 403."""
    assert _silence(server, "null") == 403
