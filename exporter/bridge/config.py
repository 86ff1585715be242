"""The ``statuspage_bridge:`` section: frozen dataclasses the strict converter fills.

It stands on ``exporter.schema`` only: the loader (``exporter.config``) imports
this module, never the other way round.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from exporter.bridge.matchers import Matcher
from exporter.bridge.templates import template_problems
from exporter.schema import Duration, Secret, check_url

ProviderKind = Literal["statuspage", "instatus"]
# What an alert of a given severity does to its component; "none" leaves it alone.
SeverityEffect = Literal["none", "degraded_performance", "partial_outage", "major_outage"]

# The public API roots; ``url`` overrides them (a proxy, a test double).
DEFAULT_URLS: Mapping[str, str] = {
    "statuspage": "https://api.statuspage.io",
    "instatus": "https://api.instatus.com",
}

# Critical alerts mean users cannot use the thing (major outage); warnings mean it
# works but worse (degraded performance); info alerts are for the team, not for customers.
DEFAULT_STATUS_BY_SEVERITY: Mapping[str, SeverityEffect] = {
    "critical": "major_outage",
    "warning": "degraded_performance",
    "info": "none",
}

# ids go into URL paths: anything else could point a request somewhere else on the API
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_LISTEN_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]*):(\d{1,5})$")


def _id_problem(value: str) -> str | None:
    if _ID_RE.match(value):
        return None
    return f"invalid id {value!r}: use the provider's id (letters, digits, _ and -)"


@dataclass(frozen=True, kw_only=True)
class ProviderConfig:
    kind: ProviderKind
    page_id: str
    # one of api_key / api_key_file (checked below, so the message can say which)
    api_key: Secret | None = None
    url: str | None = None
    # per request; a page update is small, a provider slower than this is failing
    timeout: Duration = Duration(10.0)

    def base_url(self) -> str:
        return (self.url or DEFAULT_URLS[self.kind]).rstrip("/")

    def check(self) -> Iterable[tuple[str, str]]:
        if self.url is not None:
            yield from check_url(self.url, example=DEFAULT_URLS[self.kind], credential_key="api_key")
        problem = _id_problem(self.page_id)
        if problem:
            yield "page_id", problem
        if self.api_key is None:
            yield "api_key", "missing required key: set api_key_file (or api_key)"
        elif not self.api_key.get():
            yield "api_key", "is empty"
        if self.timeout <= 0:
            yield "timeout", "must be greater than 0s"


@dataclass(frozen=True, kw_only=True)
class ComponentConfig:
    # The name customers see on the page (used in incident texts) and the
    # ``component`` label of the bridge's metrics.
    name: str
    id: str
    # every matcher must hold (as in an Alertmanager route); list several
    # components to let one alert move several
    match: tuple[str, ...]
    # per-severity overrides of the section's status_by_severity
    status_by_severity: dict[str, SeverityEffect] = field(default_factory=dict)

    def matchers(self) -> tuple[Matcher, ...]:
        return tuple(Matcher.parse(m) for m in self.match)

    def check(self) -> Iterable[tuple[str, str]]:
        problem = _id_problem(self.id)
        if problem:
            yield "id", problem
        if not self.name.strip():
            yield "name", "must not be empty"
        if not self.match:
            yield "match", 'needs at least one matcher, such as alertname="RedisDown"'
        for i, text in enumerate(self.match):
            try:
                Matcher.parse(text)
            except ValueError as exc:
                yield f"match[{i}]", str(exc)


@dataclass(frozen=True, kw_only=True)
class RetryConfig:
    # first wait after a failed update (5xx, 429, timeout); doubled on each failure, with jitter
    initial_backoff: Duration = Duration(1.0)
    # the longest wait between attempts; the bridge never gives up on a retryable error
    max_backoff: Duration = Duration(300.0)

    def check(self) -> Iterable[tuple[str, str]]:
        if self.initial_backoff <= 0:
            yield "initial_backoff", "must be greater than 0s"
        if self.max_backoff < self.initial_backoff:
            yield "max_backoff", "must be at least initial_backoff"


@dataclass(frozen=True, kw_only=True)
class IncidentMessages:
    investigating: str = (
        "We are investigating a problem affecting {component} since {since}. We will post an update here."
    )
    resolved: str = "{component} is operating normally again. We are sorry for the trouble."


@dataclass(frozen=True, kw_only=True)
class IncidentConfig:
    enabled: bool = False
    title: str = "{component}: {status}"
    messages: IncidentMessages = field(default_factory=IncidentMessages)

    def check(self) -> Iterable[tuple[str, str]]:
        texts = {"title": self.title, "messages.investigating": self.messages.investigating}
        texts["messages.resolved"] = self.messages.resolved
        for key, text in texts.items():
            for problem in template_problems(text):
                yield key, problem
        if self.enabled and not self.title.strip():
            yield "title", "must not be empty when incidents are enabled"


@dataclass(frozen=True, kw_only=True)
class BridgeConfig:
    provider: ProviderConfig
    components: tuple[ComponentConfig, ...]
    # the bearer token Alertmanager sends (http_config.authorization.credentials_file):
    # token_file, or token; checked below so a missing one names token_file
    token: Secret | None = None
    # serve the webhook on its own address (another interface than /metrics); by
    # default it is one more endpoint on --web.listen-address
    listen_address: str | None = None
    status_by_severity: dict[str, SeverityEffect] = field(default_factory=lambda: dict(DEFAULT_STATUS_BY_SEVERITY))
    # a component goes down and back up at most once within this interval
    min_flap_interval: Duration = Duration(300.0)
    # drop a firing alert Alertmanager has not repeated for this long (0s: never); see
    # docs/statuspage-bridge.md: needs the bridge route's repeat_interval well below it
    forget_after: Duration = Duration(0.0)
    # a real notification of a few hundred alerts is far below this
    max_body_bytes: int = 1024 * 1024
    retry: RetryConfig = field(default_factory=RetryConfig)
    incidents: IncidentConfig = field(default_factory=IncidentConfig)

    def effects(self, component: ComponentConfig) -> dict[str, SeverityEffect]:
        """severity -> effect for ``component``: the section's mapping with its overrides."""
        return {**self.status_by_severity, **component.status_by_severity}

    def check(self) -> Iterator[tuple[str, str]]:
        if self.token is None:
            yield (
                "token",
                "missing required key: set token_file to the file holding the bearer token"
                " Alertmanager sends (http_config.authorization.credentials_file)",
            )
        elif not self.token.get().strip():
            yield "token", "is empty"
        if self.listen_address is not None:
            match = _LISTEN_RE.match(self.listen_address)
            if match is None or not 0 < int(match.group(2)) < 65536:
                yield "listen_address", f"expected HOST:PORT such as :9848, got {self.listen_address!r}"
        if self.max_body_bytes <= 0:
            yield "max_body_bytes", "must be greater than 0"
        if self.min_flap_interval < 0:
            yield "min_flap_interval", "must not be negative"
        if self.forget_after < 0:
            yield "forget_after", "must not be negative"
        if not self.components:
            yield "components", "needs at least one component"
        names: dict[str, int] = {}
        ids: dict[str, int] = {}
        for i, component in enumerate(self.components):
            if component is None:
                continue  # already reported
            if component.name in names:
                yield (
                    f"components[{i}].name",
                    f"duplicate name {component.name!r} (also components[{names[component.name]}])",
                )
            names.setdefault(component.name, i)
            if component.id in ids:
                yield f"components[{i}].id", f"duplicate id {component.id!r} (also components[{ids[component.id]}])"
            ids.setdefault(component.id, i)
