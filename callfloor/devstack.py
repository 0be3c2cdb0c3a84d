"""``make stack``: the docker-compose topology as local processes, from the same files.

docker-compose.yml runs its services with the files in ``deploy/``: Redis (the store
and the live floor), Mosquitto (the MQTT source's broker), callfloor, Prometheus,
Alertmanager, Grafana, and under the ``demo`` profile the simulator. :data:`TOPOLOGY`
lists them as this module runs them (their deploy files, ports and profile); a test
compares it with docker-compose.yml, so the two cannot drift apart. Where there is no
Docker engine, :func:`start` runs the same services as local processes from the same
files, each on a loopback port, its data and log in the working directory
(``.stack/`` for ``make stack``):

- ``redis-server`` with ``deploy/redis.conf`` (data in ``redis/``);
- ``mosquitto`` with ``deploy/mosquitto.conf`` (persistence in ``mosquitto/``);
- ``callfloor serve`` with ``callfloor.toml``, a copy of ``deploy/callfloor.toml``
  whose compose host names (``redis:6379``, ``mosquitto:1883``) are rewritten to
  the local ports, and ``CALLFLOOR_TOKEN`` (generated when unset: its
  ``write_tokens = ["env:CALLFLOOR_TOKEN"]`` needs it);
- ``prometheus-alertmanager`` with ``deploy/alertmanager.yml``;
- ``prometheus`` with ``deploy/prometheus.yml`` pointed at the local callfloor and
  Alertmanager, and its rule files read from ``deploy/prometheus-rules/``;
- ``grafana-server`` with ``deploy/grafana/`` (its data source pointed at the local
  Prometheus), only where Grafana is installed (it is not a Debian package): without
  it the banner says so and where the boards are;
- with the ``demo`` profile, ``callfloor simulate`` publishing to the local Mosquitto.

Each process runs in its own session, so a Ctrl-C in the terminal reaches only this
one, which then stops them in reverse order: the simulator, Grafana, Prometheus,
Alertmanager, callfloor (its final checkpoint goes to a Redis still running),
Mosquitto, Redis. On Linux each also gets SIGTERM if this process dies without
stopping them. ``--down`` (``make stack-down``) stops a stack running in another
terminal through its pid file. End-to-end tests use it.
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
HOST = "127.0.0.1"
PID_FILE = "devstack.pid"


@dataclass(frozen=True, slots=True)
class Service:
    """One service of the topology, as docker-compose.yml declares it."""

    name: str
    deploy: tuple[str, ...]  # its files and folders under deploy/ (compose mounts them)
    port: int | None  # the port it serves on the compose network (None: it serves none)
    local_port: int | None  # `make stack`'s default port on loopback
    profile: str | None = None  # compose profile (None: always runs)

    @property
    def compose_address(self) -> str:
        """``name:port``, as the other services reach it on the compose network."""
        return f"{self.name}:{self.port}"


TOPOLOGY: tuple[Service, ...] = (
    # Beside the Redis and Mosquitto a Debian machine already runs on 6379 and 1883.
    Service("redis", ("redis.conf",), 6379, 16379),
    Service("mosquitto", ("mosquitto.conf",), 1883, 11883),
    Service("callfloor", ("callfloor.toml",), 8080, 8080),
    Service("prometheus", ("prometheus.yml", "prometheus-rules"), 9090, 9090),
    Service("alertmanager", ("alertmanager.yml",), 9093, 9093),
    Service("grafana", ("grafana/provisioning", "grafana/dashboards"), 3000, 3000),
    Service("simulator", (), None, None, profile="demo"),
)
"""Every service of docker-compose.yml (a test checks they agree)."""

SERVICES = {service.name: service for service in TOPOLOGY}

# Compose's host:port pairs in deploy/ and what they become locally.
COMPOSE_REDIS = SERVICES["redis"].compose_address
COMPOSE_MQTT = SERVICES["mosquitto"].compose_address
COMPOSE_TARGET = SERVICES["callfloor"].compose_address
COMPOSE_ALERTMANAGER = SERVICES["alertmanager"].compose_address
COMPOSE_PROMETHEUS = SERVICES["prometheus"].compose_address
COMPOSE_RULES = "/etc/prometheus/rules/"  # where compose mounts deploy/prometheus-rules
COMPOSE_DASHBOARDS = "/var/lib/grafana/dashboards/callfloor"
SIMULATOR_ARGS = ("simulate", "--realtime", "--warmup", "20m", "--duration", "7d")
"""The simulator's command, less ``--mqtt URL`` (compose's is the same with mosquitto's)."""


def _local_port(name: str) -> int:
    port = SERVICES[name].local_port
    assert port is not None, name
    return port


DEFAULT_REDIS_PORT = _local_port("redis")
DEFAULT_MQTT_PORT = _local_port("mosquitto")


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
    alertmanager_url: str = ""
    grafana_url: str = ""  # empty: Grafana is not installed here
    config: Path = field(default_factory=Path)
    processes: list[Process] = field(default_factory=list)
    profiles: tuple[str, ...] = ()

    def stop(self) -> None:
        """Stop every process, the last started first, each before the next."""
        for process in reversed(self.processes):
            process.stop()

    def exited(self) -> Process | None:
        """A process that has exited, if any."""
        return next((p for p in self.processes if p.proc.poll() is not None), None)


def find_binary(*names: str) -> str | None:
    """The path of the first of ``names`` installed (Debian puts mosquitto in /usr/sbin)."""
    for name in names:
        found = shutil.which(name) or next(
            (
                f"{d}/{name}"
                for d in ("/usr/sbin", "/usr/local/sbin", "/usr/bin")
                if os.access(f"{d}/{name}", os.X_OK)
            ),
            None,
        )
        if found is not None:
            return found
    return None


def binary(*names: str) -> str:
    """The path of a service's executable, by any of its names; :class:`StackError` if none."""
    found = find_binary(*names)
    if found is None:
        raise StackError(f"{names[0]} is not installed: run scripts/ensure-system-deps")
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


def local_callfloor_config(
    text: str, redis_port: int, mqtt_port: int, alertmanager_port: int | None = None
) -> str:
    """``deploy/callfloor.toml`` with the compose host names pointed at local ports."""
    local = text.replace(f"//{COMPOSE_REDIS}", f"//{HOST}:{redis_port}").replace(
        f"//{COMPOSE_MQTT}", f"//{HOST}:{mqtt_port}"
    )
    am = ""
    if alertmanager_port is not None:
        local = local.replace(f"//{COMPOSE_ALERTMANAGER}", f"//{HOST}:{alertmanager_port}")
        am = f", {COMPOSE_ALERTMANAGER} -> {HOST}:{alertmanager_port}"
    return (
        "# Written by `make stack` (callfloor/devstack.py) from deploy/callfloor.toml:\n"
        f"# {COMPOSE_REDIS} -> {HOST}:{redis_port}, {COMPOSE_MQTT} -> {HOST}:{mqtt_port}{am}.\n"
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
    callfloor_port: int = _local_port("callfloor"),
    prometheus_port: int = _local_port("prometheus"),
    redis_port: int = DEFAULT_REDIS_PORT,
    mqtt_port: int = DEFAULT_MQTT_PORT,
    alertmanager_port: int = _local_port("alertmanager"),
    grafana_port: int = _local_port("grafana"),
    token: str | None = None,
    config: Path = DEPLOY / "callfloor.toml",
    prometheus_config: Path = DEPLOY / "prometheus.yml",
    scrape_interval_s: float | None = None,
    profiles: tuple[str, ...] = (),
) -> Stack:
    """Start the services of :data:`TOPOLOGY` (those of ``profiles`` too); return once
    all are ready.

    A port of 0 is any free port. ``token`` defaults to ``$CALLFLOOR_TOKEN``, or a new
    random one. Grafana runs only where it is installed (``Stack.grafana_url`` is empty
    otherwise). On any failure what was started is stopped and :class:`StackError`
    says which service failed, with the end of its log.
    """
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    unknown = set(profiles) - {s.profile for s in TOPOLOGY if s.profile}
    if unknown:
        raise StackError(f"unknown profile {', '.join(sorted(unknown))} (known: demo)")
    grafana_bin = find_binary("grafana", "grafana-server")
    wanted = {
        "--redis-port": redis_port,
        "--mqtt-port": mqtt_port,
        "--callfloor-port": callfloor_port,
        "--prometheus-port": prometheus_port,
        "--alertmanager-port": alertmanager_port,
    }
    if grafana_bin is not None:
        wanted["--grafana-port"] = grafana_port
    ports = {option: port or free_port() for option, port in wanted.items()}
    for option, port in ports.items():
        _check_free(port, option)
    redis_port, mqtt_port = ports["--redis-port"], ports["--mqtt-port"]
    callfloor_port, prometheus_port = ports["--callfloor-port"], ports["--prometheus-port"]
    alertmanager_port = ports["--alertmanager-port"]
    given = token or os.environ.get(TOKEN_ENV)
    stack = Stack(workdir, given or secrets.token_urlsafe(24), token_generated=not given)
    stack.profiles = profiles
    try:
        _start_redis(stack, redis_port)
        _start_mosquitto(stack, mqtt_port)
        _start_callfloor(stack, config, redis_port, mqtt_port, callfloor_port, alertmanager_port)
        _start_alertmanager(stack, alertmanager_port)
        _start_prometheus(
            stack,
            prometheus_config,
            callfloor_port,
            alertmanager_port,
            prometheus_port,
            scrape_interval_s,
        )
        if grafana_bin is not None:
            _start_grafana(stack, grafana_bin, ports["--grafana-port"])
        if "demo" in profiles:
            _start_simulator(stack)
    except BaseException:
        stack.stop()
        raise
    return stack


def _start_redis(stack: Stack, port: int) -> None:
    redis_dir = stack.workdir / "redis"
    redis_dir.mkdir(exist_ok=True)
    redis_conf = stack.workdir / "redis.conf"
    redis_conf.write_text(
        (DEPLOY / "redis.conf").read_text(encoding="utf-8")
        + f"\n# make stack\nbind {HOST}\nport {port}\ndir {redis_dir}\n"
        "daemonize no\nprotected-mode yes\n",
        encoding="utf-8",
    )
    redis = _spawn(stack, "redis", [binary("redis-server"), str(redis_conf)])
    _wait(redis, _redis_pong(port), 15)
    stack.redis_url = f"redis://{HOST}:{port}/0"


def _start_mosquitto(stack: Stack, port: int) -> None:
    mqtt_dir = stack.workdir / "mosquitto"
    mqtt_dir.mkdir(exist_ok=True)
    mqtt_conf = stack.workdir / "mosquitto.conf"
    # As root, mosquitto would switch to the user "mosquitto", who cannot write here.
    user = "user root\n" if os.geteuid() == 0 else ""
    mqtt_conf.write_text(
        (DEPLOY / "mosquitto.conf").read_text(encoding="utf-8")
        + f"\n# make stack\nlistener {port} {HOST}\n"
        f"persistence_location {mqtt_dir}/\n{user}log_dest stderr\n",
        encoding="utf-8",
    )
    mosquitto = _spawn(stack, "mosquitto", [binary("mosquitto"), "-c", str(mqtt_conf)])
    _wait(mosquitto, _listening(port), 15)
    stack.mqtt_url = f"mqtt://{HOST}:{port}"


def _start_callfloor(
    stack: Stack, config: Path, redis_port: int, mqtt_port: int, port: int, am_port: int
) -> None:
    stack.config = stack.workdir / "callfloor.toml"
    stack.config.write_text(
        local_callfloor_config(config.read_text(encoding="utf-8"), redis_port, mqtt_port, am_port),
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
            str(port),
        ],
        env={**os.environ, TOKEN_ENV: stack.token, "PYTHONUNBUFFERED": "1"},
    )
    stack.callfloor_url = f"http://{HOST}:{port}"
    _wait(callfloor, _http_ok(f"{stack.callfloor_url}/readyz"), 30)


def _start_alertmanager(stack: Stack, port: int) -> None:
    alertmanager = _spawn(
        stack,
        "alertmanager",
        [
            binary("prometheus-alertmanager", "alertmanager"),
            f"--config.file={DEPLOY / 'alertmanager.yml'}",
            f"--storage.path={stack.workdir / 'alertmanager-data'}",
            f"--web.listen-address={HOST}:{port}",
            "--cluster.listen-address=",  # one instance: no gossip port
        ],
    )
    stack.alertmanager_url = f"http://{HOST}:{port}"
    _wait(alertmanager, _http_ok(f"{stack.alertmanager_url}/-/ready"), 30)


def local_prometheus_config(
    text: str, callfloor_port: int, alertmanager_port: int, scrape_interval_s: float | None
) -> str:
    """``deploy/prometheus.yml`` with compose's targets and rules folder made local."""
    text = (
        text.replace(COMPOSE_TARGET, f"{HOST}:{callfloor_port}")
        .replace(COMPOSE_ALERTMANAGER, f"{HOST}:{alertmanager_port}")
        .replace(COMPOSE_RULES, f"{DEPLOY / 'prometheus-rules'}/")
    )
    if scrape_interval_s is not None:
        text = text.replace("scrape_interval: 5s", f"scrape_interval: {scrape_interval_s:g}s")
    return text


def _start_prometheus(
    stack: Stack,
    prometheus_config: Path,
    callfloor_port: int,
    alertmanager_port: int,
    port: int,
    scrape_interval_s: float | None,
) -> None:
    prom_conf = stack.workdir / "prometheus.yml"
    prom_conf.write_text(
        local_prometheus_config(
            prometheus_config.read_text(encoding="utf-8"),
            callfloor_port,
            alertmanager_port,
            scrape_interval_s,
        ),
        encoding="utf-8",
    )
    prometheus = _spawn(
        stack,
        "prometheus",
        [
            binary("prometheus"),
            f"--config.file={prom_conf}",
            f"--storage.tsdb.path={stack.workdir / 'prometheus-data'}",
            f"--web.listen-address={HOST}:{port}",
        ],
    )
    stack.prometheus_url = f"http://{HOST}:{port}"
    _wait(prometheus, _http_ok(f"{stack.prometheus_url}/-/ready"), 30)


def _grafana_home(binary_path: str) -> Path | None:
    """Grafana's home (its conf/defaults.ini): the packages' places, or beside the binary."""
    here = Path(binary_path).resolve().parent.parent
    for home in (Path("/usr/share/grafana"), here, here / "share" / "grafana"):
        if (home / "conf" / "defaults.ini").exists():
            return home
    return None


def _start_grafana(stack: Stack, binary_path: str, port: int) -> None:
    """Grafana with deploy/grafana's provisioning, its data source at the local Prometheus."""
    home = _grafana_home(binary_path)
    if home is None:
        raise StackError(f"{binary_path}: cannot find Grafana's home (conf/defaults.ini)")
    root = stack.workdir / "grafana"
    provisioning = root / "provisioning"
    shutil.rmtree(provisioning, ignore_errors=True)
    shutil.copytree(DEPLOY / "grafana" / "provisioning", provisioning)
    for path in provisioning.rglob("*.yml"):
        text = path.read_text(encoding="utf-8")
        text = text.replace(COMPOSE_PROMETHEUS, stack.prometheus_url.removeprefix("http://"))
        text = text.replace(COMPOSE_DASHBOARDS, str(DEPLOY / "grafana" / "dashboards"))
        path.write_text(text, encoding="utf-8")
    ini = root / "grafana.ini"
    ini.write_text(
        "# Written by `make stack` (callfloor/devstack.py)\n"
        f"[paths]\ndata = {root / 'data'}\nlogs = {root / 'logs'}\n"
        f"plugins = {root / 'plugins'}\nprovisioning = {provisioning}\n"
        f"[server]\nhttp_addr = {HOST}\nhttp_port = {port}\n"
        "[auth.anonymous]\nenabled = true\norg_role = Viewer\n"
        "[dashboards]\ndefault_home_dashboard_path = "
        f"{DEPLOY / 'grafana' / 'dashboards' / 'callfloor-floor.json'}\n",
        encoding="utf-8",
    )
    argv = [binary_path]
    if Path(binary_path).name == "grafana":
        argv.append("server")
    grafana = _spawn(stack, "grafana", [*argv, f"--homepath={home}", f"--config={ini}"])
    stack.grafana_url = f"http://{HOST}:{port}"
    _wait(grafana, _http_ok(f"{stack.grafana_url}/api/health"), 60)


def _start_simulator(stack: Stack) -> None:
    """The demo profile's simulated floor, publishing to the local Mosquitto."""
    # Nothing to wait for: it connects, sends its warm-up and goes on; `main` reports
    # it (with its log) if it exits.
    _spawn(
        stack,
        "simulator",
        [sys.executable, "-m", "callfloor", *SIMULATOR_ARGS, "--mqtt", stack.mqtt_url],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def banner(stack: Stack) -> str:
    """Where everything listens, and how to send events (printed by ``make stack``)."""
    mqtt_port = stack.mqtt_url.rsplit(":", 1)[1]
    token_note = (
        f"generated: export {TOKEN_ENV}=... to choose it"
        if stack.token_generated
        else f"from ${TOKEN_ENV}"
    )
    grafana = (
        f"  grafana       {stack.grafana_url}/  (the boards in the callfloor folder)"
        if stack.grafana_url
        else "  grafana       not installed here (no grafana-server): import the boards "
        f"from {DEPLOY / 'grafana' / 'dashboards'}"
    )
    simulator = (
        ["  simulator     a simulated floor publishing to mosquitto (profile demo)"]
        if "demo" in stack.profiles
        else []
    )
    # In single quotes for the shell, but for the time: '...,"ts":'$(date +%s)',...'.
    sample = """{"type":"call_queued","ts":'$(date +%s)',"call_id":"c1","queue":"sales"}"""
    return "\n".join(
        [
            "callfloor stack: the docker-compose.yml services as local processes",
            f"  callfloor     {stack.callfloor_url}/  (/api/v1/snapshot, /metrics, /readyz)",
            f"  prometheus    {stack.prometheus_url}/",
            f"  alertmanager  {stack.alertmanager_url}/",
            grafana,
            f"  redis         {stack.redis_url}  (the store and the live floor)",
            f"  mosquitto     {stack.mqtt_url}  (events at QoS 1 on callfloor/<site>/events)",
            *simulator,
            f"  token         {stack.token}  ({token_note})",
            f"  config, data and logs in {stack.workdir}/  (callfloor.toml, *.log)",
            "Post events over HTTP (writes need the token):",
            f"  curl -s -H 'Authorization: Bearer {stack.token}' "
            f"-H 'Content-Type: application/x-ndjson' \\\n"
            f"       --data-binary '{sample}' {stack.callfloor_url}/api/v1/events",
            "or publish them over MQTT (mosquitto_pub is in Debian's mosquitto-clients):",
            f"  mosquitto_pub -h {HOST} -p {mqtt_port} -q 1 -t callfloor/lon/events -m '{sample}'",
            "or feed it a simulated floor:",
            f"  callfloor simulate --realtime --warmup 20m --mqtt {stack.mqtt_url}",
            "Ctrl-C (or make stack-down) stops the stack.",
        ]
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def down(workdir: Path, timeout_s: float = 60) -> int:
    """Stop the stack running from ``workdir`` (``make stack-down``): SIGTERM to the
    process in its pid file, which stops its services in order; wait for it to exit."""
    pid_file = workdir / PID_FILE
    try:
        pid = int(pid_file.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        print(f"devstack: no stack running from {workdir}/ (no {PID_FILE})", file=sys.stderr)
        return 0
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists() and b"callfloor.devstack" not in cmdline.read_bytes():
        # The stack died without removing its file, and the pid is someone else's now.
        pid_file.unlink(missing_ok=True)
        print(f"devstack: the stack (pid {pid}) had already stopped", file=sys.stderr)
        return 0
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        print(f"devstack: the stack (pid {pid}) had already stopped", file=sys.stderr)
        return 0
    # The stack removes its pid file once every service has stopped (a process that has
    # exited may linger as a zombie until its parent reaps it: not a sign of life).
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            pid_file.unlink(missing_ok=True)
            print(f"devstack: stopped (pid {pid})", file=sys.stderr)
            return 0
        if not pid_file.exists():
            print(f"devstack: stopped (pid {pid})", file=sys.stderr)
            return 0
        time.sleep(0.1)
    print(f"devstack: pid {pid} still running after {timeout_s:g} s", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    """Run the stack in the foreground until Ctrl-C (or SIGTERM, or a service exits);
    with ``--down``, stop the one running from the working directory."""
    parser = argparse.ArgumentParser(
        prog="python -m callfloor.devstack",
        description="Run docker-compose.yml's services as local processes (make stack).",
    )
    parser.add_argument("--workdir", default=".stack", help="config, data and logs")
    parser.add_argument("--callfloor-port", type=int, default=_local_port("callfloor"))
    parser.add_argument("--prometheus-port", type=int, default=_local_port("prometheus"))
    parser.add_argument("--alertmanager-port", type=int, default=_local_port("alertmanager"))
    parser.add_argument("--grafana-port", type=int, default=_local_port("grafana"))
    parser.add_argument("--redis-port", type=int, default=DEFAULT_REDIS_PORT)
    parser.add_argument("--mqtt-port", type=int, default=DEFAULT_MQTT_PORT)
    parser.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="NAME",
        help="also run the services of a compose profile (demo: the simulator)",
    )
    parser.add_argument("--down", action="store_true", help="stop the stack of --workdir")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir)
    if args.down:
        return down(workdir)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    stack: Stack | None = None
    pid_file = workdir / PID_FILE
    try:
        stack = start(
            workdir,
            callfloor_port=args.callfloor_port,
            prometheus_port=args.prometheus_port,
            alertmanager_port=args.alertmanager_port,
            grafana_port=args.grafana_port,
            redis_port=args.redis_port,
            mqtt_port=args.mqtt_port,
            profiles=tuple(args.profile),
        )
        pid_file.write_text(f"{os.getpid()}\n", encoding="utf-8")
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
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            print("devstack: stopping", file=sys.stderr, flush=True)
            stack.stop()
            pid_file.unlink(missing_ok=True)


if __name__ == "__main__":
    raise SystemExit(main())
