"""``make stack``: the docker-compose topology as local processes, from the same files.

docker-compose.yml runs callfloor and Prometheus in containers with the files in
``deploy/``. Where there is no Docker engine, :func:`start` runs the same two
services as local processes with the same files: callfloor with
``deploy/callfloor.toml``, Prometheus with ``deploy/prometheus.yml`` whose
``callfloor:8080`` target is pointed at the local process. End-to-end tests use it.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
COMPOSE_TARGET = "callfloor:8080"


@dataclass
class Stack:
    """Running stack processes and where they listen."""

    callfloor_url: str
    prometheus_url: str | None
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop(self) -> None:
        """Terminate every process (then kill what does not stop)."""
        for proc in reversed(self.processes):
            proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_ready(url: str, timeout_s: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as resp:
            if resp.status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout_s} s")


def start(
    workdir: Path,
    *,
    callfloor_port: int = 8080,
    prometheus_port: int = 9090,
    config: Path = DEPLOY / "callfloor.toml",
    prometheus_config: Path = DEPLOY / "prometheus.yml",
    scrape_interval_s: float | None = None,
) -> Stack:
    """Start callfloor and (when installed) Prometheus; return once both are ready."""
    workdir.mkdir(parents=True, exist_ok=True)
    callfloor = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "callfloor",
            "serve",
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(callfloor_port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stack = Stack(f"http://127.0.0.1:{callfloor_port}", None, [callfloor])
    try:
        _wait_ready(f"{stack.callfloor_url}/readyz", 20, callfloor)
        binary = shutil.which("prometheus")
        if binary is None:
            print("devstack: prometheus not installed; running callfloor only", file=sys.stderr)
            return stack
        text = prometheus_config.read_text().replace(COMPOSE_TARGET, f"127.0.0.1:{callfloor_port}")
        if scrape_interval_s is not None:
            text = text.replace("scrape_interval: 5s", f"scrape_interval: {scrape_interval_s:g}s")
        local_config = workdir / "prometheus.yml"
        local_config.write_text(text)
        prometheus = subprocess.Popen(
            [
                binary,
                f"--config.file={local_config}",
                f"--storage.tsdb.path={workdir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stack.processes.append(prometheus)
        stack.prometheus_url = f"http://127.0.0.1:{prometheus_port}"
        _wait_ready(f"{stack.prometheus_url}/-/ready", 30, prometheus)
    except BaseException:
        stack.stop()
        raise
    return stack


def main() -> int:
    """Run the stack in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m callfloor.devstack")
    parser.add_argument("--workdir", default=".stack", help="Prometheus data and config")
    parser.add_argument("--callfloor-port", type=int, default=8080)
    parser.add_argument("--prometheus-port", type=int, default=9090)
    args = parser.parse_args()
    stack = start(
        Path(args.workdir),
        callfloor_port=args.callfloor_port,
        prometheus_port=args.prometheus_port,
    )
    print(f"callfloor   {stack.callfloor_url}/  (metrics at /metrics)")
    if stack.prometheus_url:
        print(f"prometheus  {stack.prometheus_url}/")
    print("Ctrl-C stops the stack.", flush=True)
    try:
        while all(p.poll() is None for p in stack.processes):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
