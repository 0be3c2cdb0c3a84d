"""Helpers for tests of ``callfloor serve`` / ``demo`` as real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fixtures.process import free_port as free_port  # re-exported for the tests


def request(
    url: str,
    body: bytes | None = None,
    content_type: str = "application/x-ndjson",
    timeout: float = 60,
) -> tuple[int, bytes, dict[str, str]]:
    """One HTTP request: status, body and headers (error answers too)."""
    headers = {"Content-Type": content_type} if body is not None else {}
    req = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


class Served:
    """A running ``callfloor serve`` subprocess."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc = proc
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log = log

    def output(self) -> str:
        """What the process printed so far."""
        return self.log.read_text(encoding="utf-8", errors="replace")

    def get_json(self, path: str) -> tuple[int, Any]:
        """GET a JSON route."""
        status, body, _ = request(self.base + path)
        return status, json.loads(body)

    def rss_bytes(self) -> int:
        """The process's resident set size (VmRSS), bytes."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")


@contextmanager
def serve(tmp_path: Path, config: str = "", timeout: float = 15) -> Iterator[Served]:
    """``callfloor serve`` on a free port with ``config`` (TOML), stopped with SIGTERM."""
    port = free_port()
    cfg = tmp_path / "callfloor.toml"
    cfg.write_text(config)
    log = (tmp_path / f"serve-{port}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "callfloor", "serve", "--config", str(cfg), "--port", str(port)],
        stdout=log,  # a file, not a pipe nobody reads: a chatty process would block
        stderr=subprocess.STDOUT,
    )
    served = Served(proc, port, tmp_path / f"serve-{port}.log")
    deadline = time.monotonic() + timeout
    while True:
        try:
            if request(served.base + "/healthz", timeout=1)[0] == 200:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            out = (tmp_path / f"serve-{port}.log").read_text(errors="replace")
            raise AssertionError(f"serve did not start:\n{out}")
        time.sleep(0.05)
    try:
        yield served
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


BODY_EVENTS = 3000


def get_json(url: str) -> Any:
    """GET ``url`` and decode its JSON body."""
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def ndjson(events: list[dict[str, Any]]) -> bytes:
    """Events as one NDJSON body."""
    return "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events).encode()


def post_ndjson(
    url: str,
    body: bytes,
    deadline: float,
    *,
    retry_s: float | None = None,
    on_refused: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """POST one NDJSON body; on 503 (queue full, store down) wait and send it again.

    The wait is the answer's Retry-After, or ``retry_s`` when given; ``on_refused`` is
    called for each 503. Past ``deadline`` the 503 is raised.
    """
    while True:
        req = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/x-ndjson"}
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                reply: dict[str, Any] = json.loads(resp.read())
                if resp.status != 202:
                    raise AssertionError(f"ingest answered {resp.status}: {reply}")
                return reply
        except urllib.error.HTTPError as exc:
            if exc.code != 503 or time.monotonic() > deadline:
                raise
            if on_refused is not None:
                on_refused()
            time.sleep(
                retry_s if retry_s is not None else float(exc.headers.get("Retry-After", "1"))
            )


def post_accepted(
    base: str, events: list[dict[str, Any]], timeout: float = 60.0, **retry: Any
) -> None:
    """POST ``events`` as one body (retried on 503, see :func:`post_ndjson`); every event
    must be accepted."""
    reply = post_ndjson(
        f"{base}/api/v1/events", ndjson(events), time.monotonic() + timeout, **retry
    )
    if reply["accepted"] != len(events):
        raise AssertionError(f"not all accepted: {str(reply)[:300]}")


class ServeProcess:
    """A running ``callfloor serve`` subprocess on a free port, with a config file."""

    def __init__(self, config: Path, port: int | None = None) -> None:
        self.port = port if port is not None else free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        # Output goes to a file, not a pipe nobody reads while it runs: a chatty process
        # would block on a full pipe. KEEP_SERVE_LOGS=1 keeps the files for a post-mortem.
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (open while the process runs)
            prefix=f"serve-{self.port}-",
            suffix=".log",
            delete=not os.environ.get("KEEP_SERVE_LOGS"),
        )
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "callfloor", "serve", "--config", str(config)),
                *("--host", "127.0.0.1", "--port", str(self.port)),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.printed: str | None = None

    def output(self) -> str:
        """What the process printed so far."""
        return Path(self._log.name).read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until ``/readyz`` says ready (the state recovered, the port bound)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"callfloor serve exited early: {self.output()}")
            try:
                if get_json(f"{self.base}/readyz")["status"] == "ready":
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"callfloor serve not ready within {timeout} s")

    def post_all(self, events: list[dict[str, Any]], *, resent: bool = False) -> None:
        """POST ``events`` in order, in NDJSON bodies of BODY_EVENTS; none may be refused.

        ``resent``: every event must be answered as a duplicate instead of accepted.
        """
        deadline = time.monotonic() + 30.0
        for i in range(0, len(events), BODY_EVENTS):
            chunk = events[i : i + BODY_EVENTS]
            reply = post_ndjson(f"{self.base}/api/v1/events", ndjson(chunk), deadline)
            taken = reply["duplicates_total"] if resent else reply["accepted"]
            if taken != len(chunk) or reply["rejected"]:
                raise AssertionError(f"not all accepted: {str(reply)[:300]}")

    def snapshot_after(self, count: int, timeout: float = 15.0) -> dict[str, Any]:
        """The live snapshot once ``count`` events were applied (or refused)."""
        started = time.monotonic()
        while True:
            doc: dict[str, Any] = get_json(f"{self.base}/api/v1/snapshot")
            c = doc["counters"]
            done = c["events"] + c["duplicates"] + c["rejected"]
            if done >= count:
                if c["rejected"]:
                    raise AssertionError(f"the service refused events: {c}")
                return doc
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"only {done} of {count} events applied: {c}")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final checkpoint (a crash)."""
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        """SIGINT and wait (SIGKILL after 10 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def replay_cli(config: Path, events_file: Path, at: float) -> dict[str, Any]:
    """``callfloor replay FILE --config CFG --at AT --output json``, decoded."""
    done = subprocess.run(
        [
            *(sys.executable, "-m", "callfloor", "replay", str(events_file)),
            *("--config", str(config), "--at", repr(at), "--output", "json"),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"callfloor replay failed: {done.stderr.decode()}")
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc
