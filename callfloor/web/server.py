"""The HTTP server around the application: malformed requests answered as JSON, counted,
and logged one line at a time.

aiohttp's parser answers a request it cannot parse (a broken chunk size, both
``Content-Length`` and ``Transfer-Encoding``, a line over 8 KB, a raw byte in the
path, TLS sent to a plain port) itself, before any middleware: with a ``text/plain``
body that echoed up to 8 KB of the request, and an ERROR traceback in the log per
request, which any client could repeat to flood the log. :class:`EdgeRunner` (an
``AppRunner``) serves the application through :class:`_EdgeServer`, whose connections
are :class:`_EdgeHandler`\\ s: ``aiohttp.web.RequestHandler`` with its public
``handle_error`` answered here instead:

- a malformed request gets the house JSON error (``{"error": ..., "problem": ...}``),
  naming what was wrong in our own words and never echoing the request, with the
  connection closed (its framing is lost);
- it is counted (``callfloor_http_malformed_total{problem}`` and
  ``callfloor_http_errors_total{code}``) through the ``on_malformed`` callback;
- it is logged by :class:`RateLimitedLog`: one WARNING line at most every 10 s, which
  says how many were not logged since the last one.

An unsupported ``Content-Encoding`` (``br`` or ``zstd`` without their decoders) is a
415 the same way. Anything else that reaches ``handle_error`` (an exception outside the
middlewares, which catch the rest) is logged with its traceback as before and answered
as a JSON 500.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Final

from aiohttp import web
from aiohttp.http_exceptions import (
    BadHttpMethod,
    BadStatusLine,
    ContentEncodingError,
    ContentLengthError,
    HttpProcessingError,
    InvalidHeader,
    InvalidURLError,
    LineTooLong,
    TransferEncodingError,
)
from aiohttp.web_request import BaseRequest

from callfloor.web.errors import json_error

__all__ = ["MALFORMED_PROBLEMS", "EdgeRunner", "RateLimitedLog", "describe"]

log = logging.getLogger("callfloor.web")

LOG_EVERY_S: Final = 10.0
"""At most one log line about malformed requests in this many seconds."""

MALFORMED_PROBLEMS: Final[tuple[str, ...]] = (
    "unsupported_encoding",
    "line_too_long",
    "bad_method",
    "bad_target",
    "bad_request_line",
    "bad_chunked",
    "bad_length",
    "bad_header",
    "length_and_chunked",
    "malformed",
)
"""Every ``problem`` :func:`describe` names: each is exposed from 0 on ``/metrics``, so a
first malformed request shows as a rate, not as a series appearing from nowhere."""

OnMalformed = Callable[[int, str], None]
"""Told the status and the problem of every malformed request answered."""

_BAD_METHOD = (
    "bad_method",
    "not an HTTP request: the method is unknown (TLS sent to a plain HTTP port looks so)",
)


def describe(exc: BaseException) -> tuple[int, str, str]:
    """The status, problem name and message for a request aiohttp could not parse.

    The message is ours: the request's bytes (which aiohttp's own message quotes) are
    never part of it. Only aiohttp's fixed reason text is looked at, to tell apart the
    framing problems its parser reports with one exception class.
    """
    status = exc.code if isinstance(exc, HttpProcessingError) and exc.code >= 400 else 400
    if isinstance(exc, ContentEncodingError):
        return (
            415,
            "unsupported_encoding",
            "the request's Content-Encoding cannot be decoded here: send the body "
            "uncompressed, or compressed with gzip or deflate",
        )
    problem, text = _problem(exc)
    return (status, problem, f"malformed HTTP request: {text}")


def _problem(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, LineTooLong):
        return (
            "line_too_long",
            "the request line or a header field is longer than 8190 bytes",
        )
    if isinstance(exc, BadHttpMethod):
        return _BAD_METHOD
    if isinstance(exc, InvalidURLError):
        return (
            "bad_target",
            "the request target is not a valid path (bytes that are not URL characters "
            "must be percent-encoded)",
        )
    if isinstance(exc, BadStatusLine):
        return ("bad_request_line", "the request line is not METHOD PATH HTTP/1.x")
    if isinstance(exc, TransferEncodingError):
        return ("bad_chunked", "the chunked body framing is broken")
    if isinstance(exc, ContentLengthError):
        return ("bad_length", "the body is shorter than its Content-Length")
    if isinstance(exc, InvalidHeader):
        return ("bad_header", "a header field is malformed")
    reason = _reason(exc).lower()
    if "transfer-encoding" in reason and "content-length" in reason:
        return (
            "length_and_chunked",
            "the request has both Content-Length and Transfer-Encoding; send one of them",
        )
    if "chunk" in reason:
        return ("bad_chunked", "the chunked body framing is broken (a chunk size)")
    if "content-length" in reason:
        return ("bad_length", "the Content-Length header is not one valid number")
    if "header" in reason:
        return ("bad_header", "a header field is malformed, or there are too many")
    if "method" in reason:
        return _BAD_METHOD
    return ("malformed", "the request is not well-formed HTTP/1.1")


def _reason(exc: BaseException) -> str:
    """aiohttp's reason text: its message up to where it starts quoting the request."""
    message = exc.message if isinstance(exc, HttpProcessingError) else str(exc)
    return str(message).split(":", 1)[0].split("\n", 1)[0]


class RateLimitedLog:
    """Logs one line at most every ``every_s`` seconds; counts the lines it held back.

    The first event logs at once; the next line logged says how many were held back
    (``suppressed=N``) since the one before, so a flood costs one line per interval.
    """

    def __init__(
        self,
        logger: logging.Logger,
        every_s: float = LOG_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._every_s = every_s
        self._clock = clock
        self._next = float("-inf")
        self.suppressed = 0

    def warning(self, message: str, *args: object) -> bool:
        """Log ``message % args`` plus the held-back count, unless one was logged lately;
        whether it was logged."""
        now = self._clock()
        if now < self._next:
            self.suppressed += 1
            return False
        self._next = now + self._every_s
        held, self.suppressed = self.suppressed, 0
        self._logger.warning(message + " suppressed=%d", *args, held)
        return True


class _EdgeHandler(web.RequestHandler):
    """A connection whose own error answers are JSON (see the module docstring)."""

    def __init__(self, manager: _EdgeServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._edge = manager

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """The JSON answer to a request aiohttp could not parse, or to an error outside
        the middlewares; the connection is closed after it."""
        if request.writer.output_size > 0:
            # Part of an answer went out already: nothing else can be sent on it.
            raise ConnectionError("an answer was being sent; cannot send an error after it")
        if isinstance(exc, HttpProcessingError):
            status, problem, text = describe(exc)
            self._edge.malformed(status, problem, request.remote)
            response = json_error(status, text, problem=problem)
        else:
            if status >= 500:
                self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
            response = json_error(
                status,
                "internal error (logged); the service goes on"
                if status == 500
                else f"the request could not be served ({status})",
            )
        response.force_close()
        return response


class _EdgeServer(web.Server):
    """aiohttp's low-level server making :class:`_EdgeHandler` connections."""

    def __init__(
        self,
        handler: Any,
        *,
        on_malformed: OnMalformed,
        handler_kwargs: dict[str, Any],
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self._edge_loop = asyncio.get_running_loop()
        self._handler_kwargs = handler_kwargs
        self._on_malformed = on_malformed
        self.malformed_log = RateLimitedLog(log)

    def __call__(self) -> web.RequestHandler:
        return _EdgeHandler(self, loop=self._edge_loop, **self._handler_kwargs)

    def malformed(self, status: int, problem: str, peer: str | None) -> None:
        """Count a malformed request and log it (rate-limited)."""
        self._on_malformed(status, problem)
        self.malformed_log.warning(
            "http_malformed status=%d problem=%s peer=%s", status, problem, peer or "-"
        )


class EdgeRunner(web.AppRunner):
    """``web.AppRunner`` whose server answers malformed requests itself (module docstring).

    ``kwargs`` are those of ``AppRunner``; the ones for connections
    (``keepalive_timeout``, ``access_log``, ...) are given to each connection.
    """

    def __init__(self, app: web.Application, *, on_malformed: OnMalformed, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._on_malformed = on_malformed
        self._handler_kwargs = {
            k: v for k, v in kwargs.items() if k not in ("handle_signals", "shutdown_timeout")
        }

    async def _make_server(self) -> web.Server:
        # The application's own server (start-up signals run, the app frozen) gives the
        # request handler and factory; the edge server makes the connections with them.
        made = await super()._make_server()
        return _EdgeServer(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            on_malformed=self._on_malformed,
            handler_kwargs=self._handler_kwargs,
        )
