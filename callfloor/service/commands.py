"""``callfloor serve`` and ``callfloor demo``: run a service until SIGTERM or SIGINT.

The start banner (the URLs) is printed only once the port is bound; a taken port
ends the command with one line naming the address and how to pick another.
``serve`` on an address beyond loopback without ``[http] write_tokens`` ends with
one line naming that key (exit code 2) before it listens, and so does a configuration
error (a TLS certificate that does not load included). What the configuration has that
is weak (a short token) is logged as a warning at start. SIGTERM
stops exactly like Ctrl-C: the service task is cancelled, open streams end, the
final checkpoint hook runs, "stopped" is logged and the exit code is 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Sequence

from callfloor.config import Config, load_config
from callfloor.ingest.source import Source
from callfloor.service.floor import FloorService, ListenError
from callfloor.service.sources import SourceSetupError, configured_sources
from callfloor.store.base import StoreError
from callfloor.web import auth as access

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def log_config_warnings(config: Config) -> None:
    """Log what the configuration has that works but is weak (a short token, ...): one
    WARNING line each, naming file and key."""
    for warning in (*config.warnings, *unknown_site_warnings(config)):
        logging.getLogger("callfloor").warning("config_warning %s", warning)


def unknown_site_warnings(config: Config) -> list[str]:
    """A queue (or a source) naming a site that ``[sites]`` does not have: accepted (every
    key stays optional, SPEC §8), but its days and intervals are in the default time
    zone, which the operator probably did not mean. File, key and the zone in use."""
    out: list[str] = []
    named: list[tuple[str, str]] = [
        (f"queues.{name}.site", queue.site)
        for name, queue in config.queues.items()
        if queue.site is not None
    ]
    named += [
        (f"sources[{i}].site", entry.site)
        for i, entry in enumerate(config.sources)
        if entry.site is not None
    ]
    for key, site in named:
        if site not in config.sites:
            zone = config.site(site).timezone
            out.append(
                f"{config.source}: {key}: site {site!r} is not in [sites]: its days and "
                f"intervals use the time zone {zone} (add [sites.{site}] with its timezone "
                f"if that is not meant)"
            )
    return out


def serve_until_stopped(
    service: FloorService,
    sources: Sequence[Source] = (),
    on_listening: Callable[[str], None] | None = None,
) -> int:
    """Run ``service`` until SIGTERM or SIGINT; the exit code.

    1 if the port is taken, 2 if the store cannot be opened or recovered.
    """

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        # A signal cancels this task: run() has stopped everything it started.
        with contextlib.suppress(asyncio.CancelledError):
            await service.run(sources, on_listening=on_listening)

    try:
        asyncio.run(main())
    except ListenError as exc:
        hint = "pick another port with --port" if exc.port_problem else "check the address (--host)"
        print(
            f"callfloor: cannot listen on {exc.host}:{exc.port} ({exc.reason}); {hint}",
            file=sys.stderr,
            flush=True,
        )
        return 1
    except StoreError as exc:
        # Nothing was served: the state could not be opened or recovered.
        print(f"callfloor: store: {exc}", file=sys.stderr, flush=True)
        return 2
    print("callfloor: stopped", flush=True)
    return 0


def run_serve(args: argparse.Namespace) -> int:
    """``callfloor serve``: HTTP ingest, API and metrics on the configured address."""
    logging.basicConfig(level=logging.INFO, format=_LOG_FORMAT)
    config = load_config(args.config)
    log_config_warnings(config)
    host = args.host if args.host is not None else config.http.host
    refused = access.refusal(host, config.http)
    if refused is not None:
        print(f"callfloor: {refused}", file=sys.stderr, flush=True)
        return 2
    service = FloorService(config, host=host, port=args.port)

    def banner(url: str) -> None:
        # Logged once listening: a start that fails (a taken port) says only why.
        for line in access.notes(host, config.http):
            logging.getLogger("callfloor").info(line)
        print(f"callfloor: serving on {url}", flush=True)

    try:
        sources = configured_sources(config, service)
    except SourceSetupError as exc:
        print(f"callfloor: {exc}", file=sys.stderr, flush=True)
        return 2
    return serve_until_stopped(service, sources, banner)


def run_demo(args: argparse.Namespace) -> int:
    """``callfloor demo``: a simulated floor feeding the live service, nothing else needed."""
    from callfloor.ingest.simulated import demo_setup

    logging.basicConfig(level=logging.WARNING, format=_LOG_FORMAT)
    setup = demo_setup(
        seed=args.seed,
        agents=args.agents,
        queues=args.queues,
        speed=args.speed,
        config_path=args.config,
    )
    log_config_warnings(setup.config)
    service = FloorService(setup.config, clock=setup.clock, host=args.host, port=args.port)
    # The simulated minutes before now go in first, so the wallboard has numbers at
    # once and the clock never runs ahead of them (they would count as late).
    service.proc.apply_all(setup.warmup)

    def banner(url: str) -> None:
        base = url.rstrip("/")
        print(
            "callfloor demo: a simulated contact centre "
            f"({args.agents} agents, {args.queues} queues, "
            f"sites {', '.join(setup.site_names)})\n"
            f"  wallboard        {base}/wallboard  (supervisor: {base}/supervisor)\n"
            f"  live metrics     {base}/metrics\n"
            f"  state document   {base}/api/v1/snapshot\n"
            f"  queues / agents  {base}/api/v1/queues  {base}/api/v1/agents\n"
            f"  violations       {base}/api/v1/violations\n"
            f"  alerts           {base}/api/v1/alerts\n"
            f"  changes (SSE)    {base}/api/v1/changes\n"
            "Ctrl-C stops it.",
            flush=True,
        )

    return serve_until_stopped(service, (setup.source,), banner)
