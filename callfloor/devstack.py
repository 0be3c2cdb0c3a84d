"""``make stack``: the docker-compose topology as local processes, from the same files.

docker-compose.yml runs four services with the files in ``deploy/``: Redis (the
store and the live floor), Mosquitto (the MQTT source's broker), callfloor and
Prometheus. Where there is no Docker engine, :func:`start` runs the same four as
local processes from the same files, each on a loopback port, its data and log in
the working directory (``.stack/`` for ``make stack``):

- ``redis-server`` with ``deploy/redis.conf`` (data in ``redis/``);
- ``mosquitto`` with ``deploy/mosquitto.conf`` (persistence in ``mosquitto/``);
- ``callfloor serve`` with ``callfloor.toml``, a copy of ``deploy/callfloor.toml``
  whose compose host names (``redis:6379``, ``mosquitto:1883``) are rewritten to
  the local ports, and ``CALLFLOOR_TOKEN`` (generated when unset: its
  ``write_tokens = ["env:CALLFLOOR_TOKEN"]`` needs it);
- ``prometheus`` with ``deploy/prometheus.yml`` pointed at the local callfloor.

Each process runs in its own session, so a Ctrl-C in the terminal reaches only this
one, which then stops them in reverse order: Prometheus, callfloor (its final
checkpoint goes to a Redis still running), Mosquitto, Redis. On Linux each also gets
SIGTERM if this process dies without stopping them. End-to-end tests use it.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
TOKEN_ENV = "CALLFLOOR_TOKEN"
# Compose's host:port pairs in deploy/ and what they become locally.
COMPOSE_REDIS = "redis:6379"
COMPOSE_MQTT = "mosquitto:1883"
COMPOSE_TARGET = "callfloor:8080"
# Beside the Redis and Mosquitto a Debian machine already runs on 6379 and 1883.
DEFAULT_REDIS_PORT = 16379
DEFAULT_MQTT_PORT = 11883
HOST = "127.0.0.1"


class StackError(RuntimeError):
    """The stack could not start: what is missing or what failed, and where to look."""


@dataclass
class Process:
    """One running service of the stack."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self, chars: int = 1500) -> str:
        """The end of what it logged."""
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout_s: float = 15) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout_s``."""
        if self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Stack:
    """The running stack: where each service listens and the token that writes."""

    workdir: Path
    token: str
    token_generated: bool
    redis_url: str = ""
    mqtt_url: str = ""
    callfloor_url: str = ""
    prometheus_url: str = ""
    config: Path = field(default_factory=Path)
    processes: list[Process] = field(default_factory=list)

    def stop(self) -> None:
        """Stop every process, the last started first, each before the next."""
        for process in reversed(self.processes):
            process.stop()

    def exited(self) -> Process | None:
        """A process that has exited, if any."""
        return next((p for p in self.processes if p.proc.poll() is not None), None)


def binary(name: str) -> str:
    """The path of a service's executable (Debian puts mosquitto in /usr/sbin)."""
    found = shutil.which(name) or next(
        (
            f"{d}/{name}"
            for d in ("/usr/sbin", "/usr/local/sbin", "/usr/bin")
            if os.access(f"{d}/{name}", os.X_OK)
        ),
        None,
    )
    if found is None:
        raise StackError(f"{name} is not installed: run scripts/ensure-system-deps")
    return found


def free_port() -> int:
    """A loopback TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _check_free(port: int, option: str) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            s.bind((HOST, port))
        except OSError:
            raise StackError(f"{HOST}:{port} is taken: pick another port with {option}") from None


def local_callfloor_config(text: str, redis_port: int, mqtt_port: int) -> str:
    """``deploy/callfloor.toml`` with the compose host names pointed at local ports."""
    local = text.replace(f"//{COMPOSE_REDIS}", f"//{HOST}:{redis_port}").replace(
        f"//{COMPOSE_MQTT}", f"//{HOST}:{mqtt_port}"
    )
    return (
        "# Written by `make stack` (callfloor/devstack.py) from deploy/callfloor.toml:\n"
        f"# {COMPOSE_REDIS} -> {HOST}:{redis_port}, {COMPOSE_MQTT} -> {HOST}:{mqtt_port}.\n"
        "# Edit deploy/callfloor.toml instead: this copy is rewritten at every start.\n\n" + local
    )


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the stack's process dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


def _spawn(
    stack: Stack, name: str, argv: list[str], env: Mapping[str, str] | None = None
) -> Process:
    log = stack.workdir / f"{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    process = Process(name, proc, log)
    stack.processes.append(process)
    return process


def _wait(process: Process, ready: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            raise StackError(
                f"{process.name} exited with {process.proc.returncode} "
                f"(log {process.log}):\n{process.tail()}"
            )
        if ready():
            return
        time.sleep(0.05)
    raise StackError(
        f"{process.name} not ready after {timeout_s:g} s (log {process.log}):\n{process.tail()}"
    )


def _redis_pong(port: int) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            with socket.create_connection((HOST, port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    return ready


def _listening(port: int) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return True
        except OSError:
            return False

    return ready


def _http_ok(url: str) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    return ready


def start(
    workdir: Path,
    *,
    callfloor_port: int = 8080,
    prometheus_port: int = 9090,
    redis_port: int = DEFAULT_REDIS_PORT,
    mqtt_port: int = DEFAULT_MQTT_PORT,
    token: str | None = None,
    config: Path = DEPLOY / "callfloor.toml",
    prometheus_config: Path = DEPLOY / "prometheus.yml",
    scrape_interval_s: float | None = None,
) -> Stack:
    """Start Redis, Mosquitto, callfloor and Prometheus; return once all are ready.

    A port of 0 is any free port. ``token`` defaults to ``$CALLFLOOR_TOKEN``, or a new
    random one. On any failure what was started is stopped and :class:`StackError`
    says which service failed, with the end of its log.
    """
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    ports = {
        "--redis-port": redis_port or free_port(),
        "--mqtt-port": mqtt_port or free_port(),
        "--callfloor-port": callfloor_port or free_port(),
        "--prometheus-port": prometheus_port or free_port(),
    }
    for option, port in ports.items():
        _check_free(port, option)
    redis_port, mqtt_port = ports["--redis-port"], ports["--mqtt-port"]
    callfloor_port, prometheus_port = ports["--callfloor-port"], ports["--prometheus-port"]
    given = token or os.environ.get(TOKEN_ENV)
    stack = Stack(workdir, given or secrets.token_urlsafe(24), token_generated=not given)
    try:
        redis_dir = workdir / "redis"
        redis_dir.mkdir(exist_ok=True)
        redis_conf = workdir / "redis.conf"
        redis_conf.write_text(
            (DEPLOY / "redis.conf").read_text(encoding="utf-8")
            + f"\n# make stack\nbind {HOST}\nport {redis_port}\ndir {redis_dir}\n"
            "daemonize no\nprotected-mode yes\n",
            encoding="utf-8",
        )
        redis = _spawn(stack, "redis", [binary("redis-server"), str(redis_conf)])
        _wait(redis, _redis_pong(redis_port), 15)
        stack.redis_url = f"redis://{HOST}:{redis_port}/0"

        mqtt_dir = workdir / "mosquitto"
        mqtt_dir.mkdir(exist_ok=True)
        mqtt_conf = workdir / "mosquitto.conf"
        # As root, mosquitto would switch to the user "mosquitto", who cannot write here.
        user = "user root\n" if os.geteuid() == 0 else ""
        mqtt_conf.write_text(
            (DEPLOY / "mosquitto.conf").read_text(encoding="utf-8")
            + f"\n# make stack\nlistener {mqtt_port} {HOST}\n"
            f"persistence_location {mqtt_dir}/\n{user}log_dest stderr\n",
            encoding="utf-8",
        )
        mosquitto = _spawn(stack, "mosquitto", [binary("mosquitto"), "-c", str(mqtt_conf)])
        _wait(mosquitto, _listening(mqtt_port), 15)
        stack.mqtt_url = f"mqtt://{HOST}:{mqtt_port}"

        stack.config = workdir / "callfloor.toml"
        stack.config.write_text(
            local_callfloor_config(config.read_text(encoding="utf-8"), redis_port, mqtt_port),
            encoding="utf-8",
        )
        callfloor = _spawn(
            stack,
            "callfloor",
            [
                sys.executable,
                "-m",
                "callfloor",
                "serve",
                "--config",
                str(stack.config),
                "--host",
                HOST,
                "--port",
                str(callfloor_port),
            ],
            env={**os.environ, TOKEN_ENV: stack.token, "PYTHONUNBUFFERED": "1"},
        )
        stack.callfloor_url = f"http://{HOST}:{callfloor_port}"
        _wait(callfloor, _http_ok(f"{stack.callfloor_url}/readyz"), 30)

        text = prometheus_config.read_text(encoding="utf-8").replace(
            COMPOSE_TARGET, f"{HOST}:{callfloor_port}"
        )
        if scrape_interval_s is not None:
            text = text.replace("scrape_interval: 5s", f"scrape_interval: {scrape_interval_s:g}s")
        prom_conf = workdir / "prometheus.yml"
        prom_conf.write_text(text, encoding="utf-8")
        prometheus = _spawn(
            stack,
            "prometheus",
            [
                binary("prometheus"),
                f"--config.file={prom_conf}",
                f"--storage.tsdb.path={workdir / 'prometheus-data'}",
                f"--web.listen-address={HOST}:{prometheus_port}",
            ],
        )
        stack.prometheus_url = f"http://{HOST}:{prometheus_port}"
        _wait(prometheus, _http_ok(f"{stack.prometheus_url}/-/ready"), 30)
    except BaseException:
        stack.stop()
        raise
    return stack


def banner(stack: Stack) -> str:
    """Where everything listens, and how to send events (printed by ``make stack``)."""
    mqtt_port = stack.mqtt_url.rsplit(":", 1)[1]
    token_note = (
        f"generated: export {TOKEN_ENV}=... to choose it"
        if stack.token_generated
        else f"from ${TOKEN_ENV}"
    )
    # In single quotes for the shell, but for the time: '...,"ts":'$(date +%s)',...'.
    sample = """{"type":"call_queued","ts":'$(date +%s)',"call_id":"c1","queue":"sales"}"""
    return "\n".join(
        [
            "callfloor stack: the docker-compose.yml services as local processes",
            f"  callfloor   {stack.callfloor_url}/  (/api/v1/snapshot, /metrics, /readyz)",
            f"  prometheus  {stack.prometheus_url}/",
            f"  redis       {stack.redis_url}  (the store and the live floor)",
            f"  mosquitto   {stack.mqtt_url}  (events at QoS 1 on callfloor/<site>/events)",
            f"  token       {stack.token}  ({token_note})",
            f"  config, data and logs in {stack.workdir}/  (callfloor.toml, *.log)",
            "Post events over HTTP (writes need the token):",
            f"  curl -s -H 'Authorization: Bearer {stack.token}' "
            f"-H 'Content-Type: application/x-ndjson' \\\n"
            f"       --data-binary '{sample}' {stack.callfloor_url}/api/v1/events",
            "or publish them over MQTT (mosquitto_pub is in Debian's mosquitto-clients):",
            f"  mosquitto_pub -h {HOST} -p {mqtt_port} -q 1 -t callfloor/lon/events -m '{sample}'",
            "Ctrl-C stops the stack.",
        ]
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the stack in the foreground until Ctrl-C (or SIGTERM, or a service exits)."""
    parser = argparse.ArgumentParser(
        prog="python -m callfloor.devstack",
        description="Run docker-compose.yml's services as local processes (make stack).",
    )
    parser.add_argument("--workdir", default=".stack", help="config, data and logs")
    parser.add_argument("--callfloor-port", type=int, default=8080)
    parser.add_argument("--prometheus-port", type=int, default=9090)
    parser.add_argument("--redis-port", type=int, default=DEFAULT_REDIS_PORT)
    parser.add_argument("--mqtt-port", type=int, default=DEFAULT_MQTT_PORT)
    args = parser.parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    stack: Stack | None = None
    try:
        stack = start(
            Path(args.workdir),
            callfloor_port=args.callfloor_port,
            prometheus_port=args.prometheus_port,
            redis_port=args.redis_port,
            mqtt_port=args.mqtt_port,
        )
        print(banner(stack), flush=True)
        while (gone := stack.exited()) is None:
            time.sleep(0.5)
        print(
            f"devstack: {gone.name} exited with {gone.proc.returncode} "
            f"(log {gone.log}):\n{gone.tail()}",
            file=sys.stderr,
        )
        return 1
    except StackError as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        if stack is not None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C: stop in order still
            print("devstack: stopping", file=sys.stderr, flush=True)
            stack.stop()


if __name__ == "__main__":
    raise SystemExit(main())
