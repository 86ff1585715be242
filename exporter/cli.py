"""Command line, in node_exporter's flag style.

The exporter's modules (and aiohttp, prometheus_client, the collectors' client
libraries with them) are imported inside the functions below, after :func:`main`
has made the cyclic garbage collector's runs rarer: start-up builds some 300,000
objects that live as long as the process and frees few, and the collector would
walk them over and over (about a tenth of start-up's CPU).  Once the exporter
serves, what start-up built is frozen and the usual thresholds come back.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import math
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from exporter import __version__

if TYPE_CHECKING:
    from exporter.config import Config
    from exporter.redact import Redactor
    from exporter.sd import ReachedAt
    from exporter.webconfig import WebSettings

# 9847: inside the exporter range 9100-9999 and clear of every exporter this
# stack runs beside (node 9100, blackbox 9115, redis 9121, pgbouncer 9127,
# postgres 9187) and of Prometheus/Alertmanager (9090-9094).
DEFAULT_LISTEN_ADDRESS = ":9847"

log = logging.getLogger("exporter")

# The collector's thresholds during start-up: young collections every 10,000
# allocations instead of 700, and (almost) no full ones, which walk every object.
# Not off altogether: the cycles start-up drops are still freed as it goes.
STARTUP_GC_THRESHOLD = (10_000, 100, 100)


def build_parser() -> argparse.ArgumentParser:
    from exporter.collectors import SOURCES
    from exporter.log import LEVELS
    from exporter.scrape import DEFAULT_TIMEOUT_OFFSET
    from exporter.webguard import ServerLimits

    parser = argparse.ArgumentParser(
        prog="stack-exporter",
        description="Prometheus exporter for a SaaS stack: Redis, PostgreSQL, PgBouncer, APIs, DNS and HTTP probes.",
        epilog="`stack-exporter healthcheck` asks a running exporter's /-/healthy, for container health checks"
        " (its --help says more).",
    )
    parser.add_argument(
        "--config.file",
        dest="config_file",
        metavar="PATH",
        help="YAML config; without it, built-in defaults scrape the local Redis and PostgreSQL",
    )
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        # the environment variables are the health check's too (exporter/healthcheck.py)
        default=os.environ.get("STACK_EXPORTER_WEB_LISTEN_ADDRESS") or DEFAULT_LISTEN_ADDRESS,
        metavar="ADDR",
        help=f"address to serve on (default {DEFAULT_LISTEN_ADDRESS}; $STACK_EXPORTER_WEB_LISTEN_ADDRESS)",
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        default=os.environ.get("STACK_EXPORTER_WEB_CONFIG_FILE") or None,
        metavar="PATH",
        help="TLS and basic auth, exporter-toolkit web-config format ($STACK_EXPORTER_WEB_CONFIG_FILE)",
    )
    parser.add_argument(
        "--web.external-url",
        dest="external_url",
        metavar="URL",
        help="the exporter as Prometheus reaches it, for the targets /sd lists"
        " (default: the Host header of the /sd request)",
    )
    parser.add_argument(
        "--rum.listen-address",
        dest="rum_listen_address",
        metavar="ADDR",
        help="address of the public ingest listener, which browsers post beacons and email providers"
        " their webhooks to (overrides rum.listen_address and email_webhooks.listen_address;"
        " needs a rum: or email_webhooks: section)",
    )
    limits = ServerLimits()
    parser.add_argument(
        "--web.max-connections",
        dest="max_connections",
        type=_positive(int),
        default=limits.max_connections,
        metavar="N",
        help=f"open connections served at once; more are answered 503 and closed (default {limits.max_connections})",
    )
    parser.add_argument(
        "--web.idle-timeout",
        dest="idle_timeout",
        type=_positive(float),
        default=limits.idle_timeout,
        metavar="SECONDS",
        help=f"close a keep-alive connection idle this long (default {limits.idle_timeout:g})",
    )
    parser.add_argument(
        "--web.read-header-timeout",
        dest="read_header_timeout",
        type=_positive(float),
        default=limits.read_header_timeout,
        metavar="SECONDS",
        help=f"close a new connection whose request head is not in by then (default {limits.read_header_timeout:g})",
    )
    parser.add_argument(
        "--web.auth.failure-burst",
        dest="auth_failure_burst",
        type=_positive(int, zero=True),
        default=limits.auth_failure_burst,
        metavar="N",
        help=f"failed basic-auth attempts a client may burst before 429 (default {limits.auth_failure_burst}; 0: off)",
    )
    parser.add_argument(
        "--web.auth.failure-rate",
        dest="auth_failure_rate",
        type=_positive(float),
        default=limits.auth_failure_rate,
        metavar="PER_SECOND",
        help=f"failed attempts per second a client earns back (default {limits.auth_failure_rate:g})",
    )
    parser.add_argument("--log.level", dest="log_level", choices=list(LEVELS), default="info")
    parser.add_argument("--log.format", dest="log_format", choices=["logfmt", "json"], default="logfmt")
    parser.add_argument(
        "--scrape.timeout-offset",
        dest="timeout_offset",
        type=float,
        default=DEFAULT_TIMEOUT_OFFSET,
        metavar="SECONDS",
        help="subtracted from Prometheus's scrape-timeout header to leave time to answer (default 0.5)",
    )
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="validate the config (and web config), print every problem, exit 1 if any",
    )
    parser.add_argument("--version", action="version", version=f"stack-exporter {__version__}")
    for key, spec in SOURCES.items():
        parser.add_argument(
            f"--collector.{key}",
            dest=f"collector_{key}",
            action=argparse.BooleanOptionalAction,
            default=True,
            help=f"{spec.summary} (default on; --no-collector.{key} to disable)",
        )
    return parser


def _positive(kind: type[float] | type[int], *, zero: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number above 0 (or 0 too when ``zero``)."""

    def parse(text: str) -> float:
        try:
            number = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(number) or number < 0 or (number == 0 and not zero):
            raise argparse.ArgumentTypeError(f"{text!r} must be a finite number {'>= 0' if zero else '> 0'}")
        return number

    return parse


def _fix_negated_flags(argv: Sequence[str]) -> list[str]:
    # argparse spells the negation --no-collector.redis already; accept the
    # node_exporter spelling --collector.redis=false too.
    out = []
    for arg in argv:
        if arg.startswith("--collector.") and arg.endswith(("=false", "=true")):
            name, _, value = arg.partition("=")
            out.append(name if value == "true" else "--no-" + name[2:])
        else:
            out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["healthcheck"]:  # for container health checks: exporter/healthcheck.py
        from exporter import healthcheck

        return healthcheck.main(args[1:])
    normal = gc.get_threshold()
    gc.set_threshold(*STARTUP_GC_THRESHOLD)  # see the module's docstring

    def serving() -> None:
        # everything imported and built so far lives as long as the process: keep it out
        # of the collector's generations, so full collections stay short (tail latency)
        gc.freeze()
        gc.set_threshold(*normal)

    try:
        return _main(argv, serving)
    finally:
        gc.set_threshold(*normal)


def _main(argv: Sequence[str] | None, serving: Callable[[], None]) -> int:
    from exporter.collectors import SOURCES
    from exporter.config import ConfigError, default_config, load_config
    from exporter.log import setup
    from exporter.redact import Redactor
    from exporter.sd import parse_external_url
    from exporter.server import parse_listen_address
    from exporter.webconfig import default_web_settings, load_web_config
    from exporter.webguard import ServerLimits

    args = build_parser().parse_args(_fix_negated_flags(sys.argv[1:] if argv is None else argv))
    enabled = [key for key in SOURCES if getattr(args, f"collector_{key}")]

    def load() -> Config:
        if args.config_file:
            return load_config(args.config_file, enabled=enabled)
        return default_config(enabled=enabled)

    problems: list[str] = []
    config: Config | None = None
    web_settings: WebSettings | None = None
    limits = ServerLimits(
        max_connections=int(args.max_connections),
        idle_timeout=args.idle_timeout,
        read_header_timeout=args.read_header_timeout,
        auth_failure_burst=int(args.auth_failure_burst),
        auth_failure_rate=args.auth_failure_rate,
    )
    try:
        config = load()
    except ConfigError as exc:
        problems.append(str(exc))
    except Exception as exc:  # noqa: BLE001 - a loader bug is still a message, never a traceback
        problems.append(f"{args.config_file or '<built-in defaults>'}: {type(exc).__name__}: {exc}")
    if args.web_config_file:
        try:
            web_settings = load_web_config(args.web_config_file, limits)
        except ConfigError as exc:
            problems.append(str(exc))
    try:
        parse_listen_address(args.listen_address)
    except ValueError as exc:
        problems.append(str(exc))
    external_url: ReachedAt | None = None
    if args.external_url:
        try:
            external_url = parse_external_url(args.external_url)
        except ValueError as exc:
            problems.append(str(exc))
    if config is not None and config.bridge is not None and config.bridge.listen_address == args.listen_address:
        problems.append(
            f"statuspage_bridge.listen_address: {args.listen_address} is --web.listen-address already;"
            " leave listen_address out to serve the webhook there"
        )
    problems.extend(_rum_address_problems(args, config))

    if args.check_config:
        if problems:
            print("\n".join(problems), file=sys.stderr)
            return 1
        assert config is not None
        count = sum(1 for _ in config.targets())
        bridge = f", status-page bridge with {len(config.bridge.components)} component(s)" if config.bridge else ""
        rum = f", real user monitoring for {len(config.rum.allowed_origins)} origin(s)" if config.rum else ""
        hooks = config.email_webhooks
        webhooks = f", email webhooks for {', '.join(hooks.providers())}" if hooks else ""
        print(f"{config.source}: OK ({count} target{'s' if count != 1 else ''}{bridge}{rum}{webhooks})")
        return 0

    redactor = Redactor(config.secrets() if config else ())
    setup(args.log_level, args.log_format, redactor)
    if problems or config is None:
        for problem in problems:
            log.error("invalid configuration", extra={"kv": {"err": problem}})
        return 1
    if web_settings is None:
        web_settings = default_web_settings(limits)
    from exporter.email_webhooks.host import BuildError

    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(
                _run(
                    config,
                    load,
                    args.listen_address,
                    web_settings,
                    args.timeout_offset,
                    redactor,
                    serving,
                    external_url=external_url,
                    rum_address=args.rum_listen_address,
                )
            )
    except OSError as exc:
        log.error("cannot serve", extra={"kv": {"address": args.listen_address, "err": str(exc)}})
        return 1
    except BuildError as exc:  # a webhook provider's module failed to import: nothing was served
        log.error("invalid configuration", extra={"kv": {"err": str(exc)}})
        return 1
    return 0


def ingest_address(flag: str | None, config: Config) -> tuple[str, str] | None:
    """The public ingest listener's address and where it was set, None when no section needs it.

    One listener serves the RUM beacons and the email webhooks: --rum.listen-address, else
    rum.listen_address, else email_webhooks.listen_address, else the default :9848.
    """
    from exporter.rum.config import DEFAULT_LISTEN_ADDRESS

    if config.rum is None and config.email_webhooks is None:
        return None
    if flag is not None:
        return flag, "--rum.listen-address"
    if config.rum is not None:
        return config.rum.listen_address, "rum.listen_address"
    assert config.email_webhooks is not None
    if config.email_webhooks.listen_address is not None:
        return config.email_webhooks.listen_address, "email_webhooks.listen_address"
    return DEFAULT_LISTEN_ADDRESS, "the default ingest address"


def _rum_address_problems(args: argparse.Namespace, config: Config | None) -> list[str]:
    """The ingest listener's address: valid, one for both sections, neither the main listener's nor the bridge's."""
    from exporter.server import parse_listen_address

    flag = args.rum_listen_address
    if flag is not None:
        try:
            parse_listen_address(flag)
        except ValueError:
            return [f"invalid --rum.listen-address {flag!r}: expected HOST:PORT such as :9848"]
        if config is not None and config.rum is None and config.email_webhooks is None:
            return ["--rum.listen-address is set but the config has no rum: section (nor email_webhooks:)"]
    if config is None:
        return []
    found = ingest_address(flag, config)
    if found is None:
        return []
    address, key = found
    problems = []
    hooks = config.email_webhooks
    if (
        flag is None
        and config.rum is not None
        and hooks is not None
        and hooks.listen_address is not None
        and hooks.listen_address != config.rum.listen_address
    ):
        problems.append(
            f"email_webhooks.listen_address: {hooks.listen_address} is not rum.listen_address"
            f" ({config.rum.listen_address}); one listener serves both: leave it out or write the same address"
        )
    others = [("--web.listen-address", args.listen_address)]
    if config.bridge is not None and config.bridge.listen_address is not None:
        others.append(("statuspage_bridge.listen_address", config.bridge.listen_address))
    for name, other in others:
        if _same_listener(address, other):
            problems.append(
                f"{key}: {address} is {name} already; browsers and email providers must reach the ingest"
                " endpoints on an address of its own"
            )
    return problems


def _same_listener(a: str, b: str) -> bool:
    """Whether two listen addresses would bind the same port (an empty host or 0.0.0.0/:: is every address)."""
    from exporter.server import parse_listen_address

    try:
        (host_a, port_a), (host_b, port_b) = parse_listen_address(a), parse_listen_address(b)
    except ValueError:
        return False  # reported on its own
    wildcard = (None, "", "0.0.0.0", "::")  # noqa: S104 - compared, never bound
    return port_a == port_b and (host_a == host_b or host_a in wildcard or host_b in wildcard)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (the `speedups` extra): a scrape spends much of its time in the loop."""
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


async def _run(
    config: Config,
    load: Callable[[], Config],
    address: str,
    web_settings: WebSettings | None,
    timeout_offset: float,
    redactor: Redactor,
    serving: Callable[[], None] = lambda: None,
    *,
    external_url: ReachedAt | None = None,
    rum_address: str | None = None,
) -> None:
    from exporter.bridge.bridge import BridgeHost
    from exporter.config import ConfigError
    from exporter.email_webhooks.host import WebhookHost
    from exporter.rum.ingest import SERVER_LOG, RumHost, make_rum_app
    from exporter.scrape import Engine
    from exporter.server import RELOAD, make_app, make_bridge_app, make_reloader, serve

    engine = Engine(config, timeout_offset=timeout_offset, redactor=redactor)
    host = BridgeHost(redact=redactor.redact)
    rum_host = RumHost()
    webhook_host = WebhookHost()
    app = make_app(
        engine,
        make_reloader(engine, load),
        web_settings,
        bridge_host=host,
        external_url=external_url,
        rum_host=rum_host,
        webhook_host=webhook_host,
    )
    # every reload goes through the app's: it reloads the bridge too
    reloader = app[RELOAD]
    ingest = ingest_address(rum_address, config)
    rum_listen = ingest[0] if ingest is not None else "off"
    if ingest is not None:
        for each in (rum_host, webhook_host):
            each.own_address, each.from_flag = rum_listen, rum_address is not None
        # a webhook provider that cannot be built stops the start here (BuildError), before
        # anything listens
        await webhook_host.apply(config.email_webhooks)
    bridge_runner = None
    bridge_address = config.bridge.listen_address if config.bridge else None
    if bridge_address is not None:
        # the webhook on its own address (another interface than /metrics); TLS applies
        # there too, and the bridge itself runs in the main app
        host.own_address = bridge_address
        bridge_runner = await serve(make_bridge_app(host, web_settings), bridge_address, web_settings)
    rum_runner = None
    if ingest is not None:
        # browsers and email providers on the public internet post here; /metrics stays on
        # the private address.  The listener is fixed at start; the main app applies the
        # sections (and reloads)
        rum_host.apply(config.rum)
        ingest_app = make_rum_app(rum_host, web_settings, webhook_host)
        rum_runner = await serve(ingest_app, rum_listen, web_settings, logger=SERVER_LOG)
    runner = await serve(app, address, web_settings)
    serving()
    log.info(
        "listening",
        extra={
            "kv": {
                "address": address,
                "version": __version__,
                "targets": len(engine.runners),
                "tls": bool(web_settings and web_settings.ssl_context),
                "bridge": bridge_address or ("on" if config.bridge else "off"),
                "rum": rum_listen if config.rum else "off",
                "email_webhooks": rum_listen if config.email_webhooks else "off",
            }
        },
    )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    pending: set[asyncio.Task[None]] = set()

    def on_hup() -> None:
        async def go() -> None:
            # every failure is logged once and counted, never left in the task
            # ("Task exception was never retrieved")
            try:
                await reloader()
            except ConfigError:
                pass  # make_reloader logged and counted it
            except Exception as exc:  # noqa: BLE001 - e.g. the bridge's apply after the config loaded
                engine.reload_failed()
                log.error("config reload failed", extra={"kv": {"err": f"{type(exc).__name__}: {exc}"}})

        task = loop.create_task(go())
        pending.add(task)
        task.add_done_callback(pending.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hup)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    log.info("shutting down")
    if bridge_runner is not None:
        await bridge_runner.cleanup()
    if rum_runner is not None:
        await rum_runner.cleanup()
    await runner.cleanup()
