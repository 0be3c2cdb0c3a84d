"""Malformed HTTP against a real server: JSON answers that echo nothing, counted, logged
one line at a time."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from live import running

from callfloor.web.server import MALFORMED_PROBLEMS, RateLimitedLog


def _counted(by_problem: dict[str, int]) -> dict[str, int]:
    """The problems counted at least once (every known one is exposed from 0)."""
    return {problem: n for problem, n in by_problem.items() if n}


MARKER = b"zq-marker-7731"


async def _exchange(base: str, raw: bytes) -> tuple[bytes, dict[str, str], bytes]:
    """Send ``raw`` on a new connection; the status line, headers and body of the answer."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(raw)
    answer = await asyncio.wait_for(reader.read(), 5)  # the server closes after it
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines[1:])}
    return lines[0].encode(), headers, body


CASES = {
    "bad_chunked": b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"zz" + MARKER + b"\r\n",
    "length_and_chunked": b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\nX-M: " + MARKER + b"\r\n\r\n0\r\n\r\n",
    "line_too_long": b"GET /" + MARKER + b"x" * 9000 + b" HTTP/1.1\r\n\r\n",
    "bad_target": b"GET /api/v1/queues/\xff" + MARKER + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "bad_method": b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + MARKER + b"\r\n\r\n",
}


@pytest.mark.parametrize("problem", CASES)
async def test_a_malformed_request_gets_json_naming_the_problem_without_echo(
    problem: str,
) -> None:
    """Each kind of malformed request is a JSON 400 naming its problem, never quoting the
    request, and the connection closed after it (read to its end); counted by problem and
    by status."""
    async with running() as (service, base):
        status, headers, body = await _exchange(base, CASES[problem])
    assert status.split()[1] == b"400"
    assert headers["content-type"].startswith("application/json")
    reply = json.loads(body)
    assert reply["problem"] == problem
    assert reply["error"].startswith("malformed HTTP request: ")
    assert MARKER not in body
    assert _counted(service.stats.http_malformed_total) == {problem: 1}
    assert service.stats.http_errors_total == {"400": 1}


@pytest.mark.parametrize("coding", ["br", "zstd"])
async def test_an_undecodable_content_encoding_is_a_json_415(coding: str) -> None:
    """A body in a Content-Encoding the server cannot decode is a JSON 415 saying which
    encodings it takes, instead of aiohttp's text/plain advice to install a package."""
    raw = (
        b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-ndjson"
        b"\r\nContent-Encoding: " + coding.encode() + b"\r\nContent-Length: 4\r\n\r\nabcd"
    )
    async with running() as (service, base):
        status, headers, body = await _exchange(base, raw)
    assert status.split()[1] == b"415"
    assert headers["content-type"].startswith("application/json")
    reply = json.loads(body)
    assert reply["problem"] == "unsupported_encoding"
    assert "gzip or deflate" in reply["error"]
    assert "install" not in reply["error"]
    assert _counted(service.stats.http_malformed_total) == {"unsupported_encoding": 1}


async def test_a_flood_of_malformed_requests_logs_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """200 malformed requests in a row are all answered and counted, and make one WARNING
    line (no traceback, nothing at ERROR)."""
    with caplog.at_level(logging.DEBUG):
        async with running() as (service, base):
            for _ in range(200):
                status, _, _ = await _exchange(base, CASES["bad_target"])
                assert status.split()[1] == b"400"
    lines = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert [r.levelno for r in lines] == [logging.WARNING]
    assert lines[0].exc_info is None
    assert "problem=bad_target" in lines[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert _counted(service.stats.http_malformed_total) == {"bad_target": 200}


async def test_malformed_requests_are_on_metrics() -> None:
    """callfloor_http_malformed_total{problem} is exposed on /metrics."""
    async with running() as (service, base):
        await _exchange(base, CASES["bad_chunked"])
        body = service.metrics_body()
    assert b'callfloor_http_malformed_total{problem="bad_chunked"} 1.0' in body


def test_every_problem_is_exposed_from_zero() -> None:
    """Each problem describe() can name is a known problem, so it is exposed from 0."""
    assert len(set(MALFORMED_PROBLEMS)) == len(MALFORMED_PROBLEMS)
    assert "bad_chunked" in MALFORMED_PROBLEMS and "malformed" in MALFORMED_PROBLEMS


def test_the_rate_limited_log_counts_what_it_held_back(caplog: pytest.LogCaptureFixture) -> None:
    """One line per interval: the next line says how many were held back since the last."""
    now = [0.0]
    limited = RateLimitedLog(logging.getLogger("test.ratelimit"), every_s=10, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.ratelimit"):
        logged = [limited.warning("bad n=%d", n) for n in range(5)]
        now[0] = 10.0
        logged.append(limited.warning("bad n=%d", 5))
    assert logged == [True, False, False, False, False, True]
    assert [r.getMessage() for r in caplog.records] == [
        "bad n=0 suppressed=0",
        "bad n=5 suppressed=4",
    ]
