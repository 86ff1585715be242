"""YAML config -> typed, frozen objects.

The loader is strict and reports every problem at once, each with its key path
(``redis[1].url: ...``), so a user fixes a config in one round instead of one
error per restart.  The schema is the dataclasses themselves: each source's
target class lives next to its collector and is found through the source
registry (``exporter.collectors.SOURCES``); the value types and the converter
they share are one floor down, in ``exporter.schema``.

Conventions every section gets for free:

* ``${VAR}`` (or ``${VAR:-default}``) is expanded in every string value; a
  variable that is not set is an error, never an empty string.  ``$$`` is a
  literal ``$``.
* Every field typed :class:`Secret` also accepts ``<field>_file``: the secret
  is read from that file (trailing newline stripped).  Secrets never print.
* Every other ``*_file`` path (CA files, client certificates, query files) is
  resolved against the config file's directory and must be readable when the
  config loads, so ``--check-config`` catches a wrong path instead of the first
  scrape.
* A duration is written with a unit (``500ms``, ``30s``, ``1m30s``); a bare
  number other than 0 is an error, as in Prometheus's own config.
* Unknown keys and duplicate keys are errors, with the allowed keys listed.
* Hostile files are refused with a message, never a hang or a traceback: a config
  file is a regular file of at most 10 MiB, a secret file one of at most 64 KiB (a
  named pipe or /dev/zero is an error), YAML nests at most 100 levels, holds at most
  200,000 values and its aliases add at most 100,000, and every duration is finite
  and bounded (``Duration.bounds_problem``).
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter.bridge.config import BridgeConfig
from exporter.collectors import SETTINGS, SOURCES
from exporter.email_webhooks.config import EmailWebhooksConfig
from exporter.rum.config import RumConfig
from exporter.schema import (
    MAX_CONFIG_BYTES,
    ConfigError,
    Converter,
    Duration,
    FileProblem,
    Secret,
    TargetConfig,
    describe,
    expand_env,
    file_problem,
    load_yaml,
    read_file,
    secrets_in,
)

__all__ = [
    "Config",
    "ConfigError",
    "Duration",
    "GlobalConfig",
    "Secret",
    "TargetConfig",
    "default_config",
    "file_problem",
    "load_config",
    "parse_config",
]

# The status-page bridge's section: not a source (nothing to scrape), one mapping.
BRIDGE_SECTION = "statuspage_bridge"
# Real user monitoring's section: browser beacons on their own listener, one mapping.
RUM_SECTION = "rum"
# The email providers' signed webhooks: on the RUM listener (the public ingest one), one mapping.
WEBHOOKS_SECTION = "email_webhooks"
# the providers whose signatures need the cryptography package (ECDSA, RSA)
_NEEDS_CRYPTOGRAPHY = ("sendgrid", "ses")

# generous: far above what a built-in collector exports for a sane target, far below
# the hundreds of thousands a runaway API body or custom query can produce
DEFAULT_SERIES_LIMIT = 10_000

TARGET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")


@dataclass(frozen=True, kw_only=True)
class GlobalConfig:
    scrape_timeout: Duration = Duration(10.0)
    # series one target may export per collection (targets override with series_limit); 0: no limit
    series_limit_per_target: int = DEFAULT_SERIES_LIMIT

    def check(self) -> Iterator[tuple[str, str]]:
        if self.series_limit_per_target < 0:
            yield "series_limit_per_target", f"must be 0 (no limit) or more, got {self.series_limit_per_target}"


@dataclass(frozen=True)
class Config:
    global_: GlobalConfig
    # section key (e.g. "redis") -> its targets, in config order
    sources: Mapping[str, tuple[TargetConfig, ...]]
    # section key -> settings object for single-mapping sections (e.g. dns_resolver)
    settings: Mapping[str, Any] = field(default_factory=dict)
    source: str = "<built-in defaults>"
    # the status-page bridge; None (the default) leaves it off
    bridge: BridgeConfig | None = None
    # real user monitoring; None (the default) leaves it off
    rum: RumConfig | None = None
    # the email providers' signed webhooks; None (the default) leaves them off
    email_webhooks: EmailWebhooksConfig | None = None

    def targets(self) -> Iterator[tuple[str, TargetConfig]]:
        for kind, targets in self.sources.items():
            for target in targets:
                yield kind, target

    def secrets(self) -> set[str]:
        found: set[str] = set()
        for _, target in self.targets():
            found.update(secrets_in(target))
        for value in self.settings.values():
            found.update(secrets_in(value))
        found.update(secrets_in(self.bridge))
        found.update(secrets_in(self.email_webhooks))
        return {s for s in found if s}


# --------------------------------------------------------------------------- entry points


def parse_config(
    text: str,
    source: str = "<config>",
    *,
    base_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    enabled: Iterable[str] | None = None,
) -> Config:
    """Parse config text; raise ConfigError listing every problem."""
    raw = load_yaml(text, source)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(source, [f"the top level must be a mapping, got {describe(raw)}"])

    env_problems: list[str] = []
    raw = expand_env(raw, "", env_problems, os.environ if env is None else env)
    conv = Converter(base_dir or Path.cwd())
    conv.problems.extend(env_problems)

    global_cfg = GlobalConfig()
    sources: dict[str, tuple[TargetConfig, ...]] = {}
    settings: dict[str, Any] = {}
    bridge: BridgeConfig | None = None
    rum: RumConfig | None = None
    webhooks: EmailWebhooksConfig | None = None
    allowed = ["global", *SOURCES, *SETTINGS, BRIDGE_SECTION, RUM_SECTION, WEBHOOKS_SECTION]
    for key, value in raw.items():
        if key == "global":
            converted = conv.convert(GlobalConfig, value if value is not None else {}, "global")
            if converted is not None:
                global_cfg = converted
        elif key in SOURCES:
            if value is None:
                continue
            if not isinstance(value, list):
                conv.fail(str(key), f"expected a list of targets, got {describe(value)}")
                continue
            # the schema only: the collector and its client library load when the engine builds it
            cls = SOURCES[key].target_class()
            targets = [conv.convert(cls, item, f"{key}[{i}]") for i, item in enumerate(value)]
            good = tuple(t for t in targets if t is not None)
            _check_names(key, targets, conv)
            sources[key] = good
        elif key in SETTINGS:
            converted = conv.convert(SETTINGS[key].settings_class(), value or {}, str(key))
            if converted is not None:
                settings[key] = converted
        elif key == BRIDGE_SECTION:
            bridge = conv.convert(BridgeConfig, value, BRIDGE_SECTION)
        elif key == RUM_SECTION:
            rum = conv.convert(RumConfig, value, RUM_SECTION)
        elif key == WEBHOOKS_SECTION:
            webhooks = conv.convert(EmailWebhooksConfig, value, WEBHOOKS_SECTION)
            if webhooks is not None:
                _check_webhook_modules(webhooks, conv)
        else:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            conv.fail(str(key), f"unknown section (allowed: {', '.join(allowed)}){hint}")

    if conv.problems:
        raise ConfigError(source, conv.problems)
    if enabled is not None:
        keep = set(enabled)
        sources = {k: v for k, v in sources.items() if k in keep}
    return Config(
        global_=global_cfg,
        sources=sources,
        settings=settings,
        source=source,
        bridge=bridge,
        rum=rum,
        email_webhooks=webhooks,
    )


def _check_webhook_modules(webhooks: EmailWebhooksConfig, conv: Converter) -> None:
    """Each configured provider's module and library can be found, without importing them.

    Loading a config never imports a provider (nor ``cryptography``): the listener does,
    at start and on reload.  A broken install is still a config-time error here.
    """
    for name in webhooks.providers():
        where = f"{WEBHOOKS_SECTION}.{name}"
        if not _findable(f"exporter.email_webhooks.{name}"):
            conv.fail(where, "this installation has no webhook module for the provider (exporter.email_webhooks)")
        elif name in _NEEDS_CRYPTOGRAPHY and not _findable("cryptography"):
            conv.fail(where, "needs the cryptography package to check signatures: pip install 'cryptography>=42'")


def _findable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a module without a spec, a package that is not one
        return False


def _check_names(key: str, targets: list[TargetConfig | None], conv: Converter) -> None:
    seen: dict[str, int] = {}
    for i, target in enumerate(targets):
        if target is None:
            continue
        name = target.target_name()
        if not TARGET_NAME_RE.match(name):
            conv.fail(
                f"{key}[{i}].name",
                f"invalid target name {name!r}: use letters, digits and _ . : @ -"
                " (it becomes the target label and the /probe?target= value)",
            )
        elif name in seen:
            conv.fail(
                f"{key}[{i}].name",
                f"duplicate target name {name!r} (also {key}[{seen[name]}])",
            )
        else:
            seen[name] = i


def load_config(path: str | Path, *, enabled: Iterable[str] | None = None) -> Config:
    file = Path(path)
    try:
        # a regular file of at most MAX_CONFIG_BYTES: never a FIFO that blocks or /dev/zero
        text = read_file(file, MAX_CONFIG_BYTES).decode("utf-8")
    except FileProblem as exc:
        raise ConfigError(str(file), [f"cannot read config file: {exc.reason}"]) from None
    except UnicodeDecodeError:
        raise ConfigError(str(file), ["config file is not UTF-8 text"]) from None
    return parse_config(text, str(file), base_dir=file.parent.resolve(), enabled=enabled)


DEFAULT_CONFIG_YAML = """\
# Built-in defaults, used when --config.file is not given: the local Redis
# and PostgreSQL of a development machine.
global:
  scrape_timeout: 10s
redis:
  - name: local
    url: redis://127.0.0.1:6379/0
postgres:
  - name: local
    dsn: postgresql://postgres@127.0.0.1:5432/postgres
"""


def default_config(*, enabled: Iterable[str] | None = None) -> Config:
    return parse_config(DEFAULT_CONFIG_YAML, "<built-in defaults>", env={}, enabled=enabled)
