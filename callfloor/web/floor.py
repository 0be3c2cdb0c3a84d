"""What the web layer needs of the live service (a protocol: web never imports the service)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from aiohttp import web

if TYPE_CHECKING:
    from callfloor.alerts.engine import Alert, Silence
    from callfloor.bus import ChangeBus
    from callfloor.config import Config
    from callfloor.ingest.http import HttpSource
    from callfloor.processors.engine import FloorProcessor
    from callfloor.processors.read import FloorReader
    from callfloor.processors.views import Document


_C = TypeVar("_C")


class AlertCommands(Protocol):
    """The alert side of the service the alert routes use."""

    def alerts(self, procs: list[FloorProcessor]) -> list[Alert]:
        """Every listed alert, with its acknowledgement."""
        ...

    def acknowledge(
        self, procs: list[FloorProcessor], fp: str, by: str, comment: str
    ) -> Alert | None:
        """Acknowledge a firing alert; None if none fires with that fingerprint."""
        ...

    def silence(
        self,
        procs: list[FloorProcessor],
        *,
        rule: str,
        scope: str,
        duration_s: float,
        by: str,
        comment: str,
    ) -> Silence | None:
        """Silence matching alerts for a duration."""
        ...

    def unsilence(self, procs: list[FloorProcessor], silence_id: str) -> bool:
        """Remove a silence; whether it existed."""
        ...

    def silences(self, procs: list[FloorProcessor]) -> list[Silence]:
        """The silences in force."""
        ...


class WebStats(Protocol):
    """The counters the web layer keeps (HTTP requests by handler, errors by status, the
    request bodies in flight)."""

    http_requests_total: dict[str, int]
    http_errors_total: dict[str, int]
    http_body_bytes_in_flight: int
    http_bodies_refused_total: int


class Floor(Protocol):
    """The live service as the routes see it (``callfloor.service.FloorService``)."""

    @property
    def config(self) -> Config:
        """The configuration (``[limits]`` for ingest)."""
        ...

    @property
    def stats(self) -> WebStats:
        """Where the routes count requests and errors."""
        ...

    @property
    def http(self) -> HttpSource:
        """The HTTP source the ingest route offers bodies to."""
        ...

    @property
    def bus(self) -> ChangeBus:
        """The change bus the change stream subscribes to."""
        ...

    @property
    def view(self) -> FloorReader:
        """Typed reads at the processor clock."""
        ...

    @property
    def host(self) -> str:
        """The address the server is bound to (``--host`` or ``[http] host``)."""
        ...

    @property
    def alerting(self) -> AlertCommands:
        """The alert side: lists, acknowledgements, silences."""
        ...

    def alert_processors(self) -> list[FloorProcessor]:
        """The processors whose alerts this process evaluates."""
        ...

    async def alert_command(self, command: Callable[[list[FloorProcessor]], _C]) -> _C:
        """Run an operator command on the alert state between two writer rounds."""
        ...

    @property
    def body_timeout_s(self) -> float:
        """How long a request body may take to arrive."""
        ...

    @property
    def stream_timeout_s(self) -> float:
        """How long one write to a change stream may wait for a client that does not read."""
        ...

    @property
    def ack_timeout_s(self) -> float:
        """How long the ingest route waits for its batch to be acknowledged."""
        ...

    def not_after(self) -> float:
        """The latest ``ts`` ingest admits."""
        ...

    def store_problem(self) -> str | None:
        """Why the store cannot make events durable now (None: it can)."""
        ...

    def document(self) -> Document:
        """The SPEC §7 document at the processor clock (cached)."""
        ...

    def cached(self, name: str, build: Callable[[], bytes]) -> bytes:
        """Encoded bytes of a whole-floor read, rebuilt only when the floor changed."""
        ...

    def metrics_body(self) -> bytes:
        """The ``/metrics`` exposition."""
        ...

    def readiness(self) -> tuple[bool, dict[str, object]]:
        """Whether the service takes events now, and the details."""
        ...


FLOOR: web.AppKey[Floor] = web.AppKey("floor")


def floor_of(request: web.Request) -> Floor:
    """The service behind ``request``'s application."""
    return request.app[FLOOR]
