"""HTTP probes: is the URL up, fast, on a valid certificate and cached by the CDN?

Metric names follow blackbox_exporter's http prober so its community alerts and
dashboards work unchanged; docs/metrics/http_probes.md lists the differences.
A sample of the exposition (target label added by the engine)::

    probe_success{target="home"} 1.0
    probe_duration_seconds{target="home"} 0.043
    probe_http_status_code{target="home"} 200.0
    probe_http_duration_seconds{target="home",phase="resolve"} 0.001
    probe_http_duration_seconds{target="home",phase="connect"} 0.004
    probe_http_duration_seconds{target="home",phase="tls"} 0.012
    probe_http_duration_seconds{target="home",phase="processing"} 0.021
    probe_http_duration_seconds{target="home",phase="transfer"} 0.005
    probe_http_redirects{target="home"} 1.0
    probe_http_ssl{target="home"} 1.0
    probe_ssl_earliest_cert_expiry{target="home"} 1.7565e+09
    probe_tls_version_info{target="home",version="TLS 1.3"} 1.0
    probe_http_cache_hit{target="logo"} 1.0

Only the configured URL is fetched (and the redirects it answers with); the
``/probe`` endpoint selects a configured probe by name and never takes an
address from the request.  Each probe opens a new connection, as blackbox
does, so the connect and TLS phases are measured every time.

How the phases are measured: aiohttp's tracing gives DNS resolution and the
connection set-up (TCP plus TLS); the TLS handshake alone is timed by an
``ssl.SSLObject`` subclass (the documented ``SSLContext.sslobject_class`` hook)
whose ``do_handshake`` notes its first call and its success, and which also
reads the peer certificate and the TLS version.  Python 3.11 exposes only the
leaf certificate of the peer (the chain needs 3.13's ``get_unverified_chain``),
so ``probe_ssl_earliest_cert_expiry`` is the leaf's notAfter.
"""

from __future__ import annotations

import asyncio
import calendar
import re
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp
from prometheus_client.core import GaugeMetricFamily, Metric
from yarl import URL

from exporter.collectors.base import CollectError, Collector, Context
from exporter.der import read_tlv
from exporter.redact import url_without_userinfo
from exporter.schema import TargetConfig, check_url, url_password

# Go's http.Client, which blackbox uses, stops after 10 redirects.
MAX_REDIRECTS = 10
PHASES = ("resolve", "connect", "tls", "processing", "transfer")
# Header names whose values are credentials: masked in logs and errors.
_SECRET_HEADER_RE = re.compile(r"authorization|cookie|token|secret|key|auth", re.IGNORECASE)
_REDIRECT_STATUSES = {301, 302, 303, 307, 308}

# --------------------------------------------------------------------------- config


@dataclass(frozen=True, kw_only=True)
class ProbeTLS:
    ca_file: str | None = None
    insecure_skip_verify: bool = False
    # SNI and the name the certificate must match, when it differs from the URL's host.
    server_name: str | None = None


@dataclass(frozen=True, kw_only=True)
class HttpProbe(TargetConfig):
    name: str
    url: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    # Empty: any 2xx, as blackbox's default.
    expect_status: tuple[int, ...] = ()
    body_regex: str | None = None
    follow_redirects: bool = True
    tls: ProbeTLS | None = None
    check_cache: bool = False

    def check(self) -> Iterable[tuple[str, str]]:
        # userinfo is allowed: it is how a probe sends basic auth, and it is redacted
        url_problems = list(check_url(self.url, example="https://example.com/health", credentials_allowed=True))
        yield from url_problems
        if url_problems:
            return
        scheme = urlsplit(self.url).scheme
        if not re.match(r"^[A-Z]+$", self.method):
            yield "method", f"expected an upper-case HTTP method such as GET, got {self.method!r}"
        for i, code in enumerate(self.expect_status):
            if not 100 <= code <= 599:
                yield f"expect_status[{i}]", f"{code} is not an HTTP status code"
        if self.body_regex is not None:
            try:
                re.compile(self.body_regex)
            except re.error as exc:
                yield "body_regex", f"invalid regular expression: {exc}"
        for header in self.headers:
            if not re.match(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", header):
                yield f"headers.{header}", "invalid header name"
        # tls.ca_file is checked by the loader, as every *_file path
        if self.tls is not None and scheme != "https":
            yield "tls", "tls settings need an https:// URL"

    def secret_values(self) -> list[str]:
        found = [v for k, v in self.headers.items() if _SECRET_HEADER_RE.search(k) and v]
        return found + url_password(self.url)


# --------------------------------------------------------------------------- timing


@dataclass
class Hop:
    """Timestamps (perf_counter) of one request; a redirect starts a new hop."""

    start: float = 0.0
    dns_start: float | None = None
    dns_end: float | None = None
    conn_start: float | None = None
    conn_end: float | None = None
    tls_start: float | None = None
    tls_end: float | None = None
    headers_at: float | None = None
    body_end: float | None = None
    # set by the TLS handshake
    cert_der: bytes | None = None
    tls_version: str | None = None

    def phases(self) -> dict[str, float]:
        def span(a: float | None, b: float | None) -> float:
            return b - a if a is not None and b is not None and b >= a else 0.0

        resolve = span(self.dns_start, self.dns_end)
        tls = span(self.tls_start, self.tls_end)
        connect = max(0.0, span(self.conn_start, self.conn_end) - resolve - tls)
        return {
            "resolve": resolve,
            "connect": connect,
            "tls": tls,
            "processing": span(self.conn_end or self.start, self.headers_at),
            "transfer": span(self.headers_at, self.body_end),
        }


class _HopHolder:
    """The hop in progress: the TLS hook has no request context, and one probe runs at a time."""

    hop: Hop | None = None


def _timed_ssl_object(holder: _HopHolder) -> type[ssl.SSLObject]:
    class TimedSSLObject(ssl.SSLObject):
        def do_handshake(self) -> None:
            hop = holder.hop
            if hop is not None and hop.tls_start is None:
                hop.tls_start = time.perf_counter()
            super().do_handshake()
            if hop is not None:
                hop.tls_end = time.perf_counter()
                hop.cert_der = self.getpeercert(binary_form=True)
                hop.tls_version = self.version()

    return TimedSSLObject


def _trace_config() -> aiohttp.TraceConfig:
    trace = aiohttp.TraceConfig()

    def mark(attr: str) -> Any:
        async def handler(session: aiohttp.ClientSession, ctx: Any, params: Any) -> None:
            hop = ctx.trace_request_ctx
            if isinstance(hop, Hop) and getattr(hop, attr) is None:
                setattr(hop, attr, time.perf_counter())

        return handler

    trace.on_dns_resolvehost_start.append(mark("dns_start"))
    trace.on_dns_resolvehost_end.append(mark("dns_end"))
    trace.on_connection_create_start.append(mark("conn_start"))
    trace.on_connection_create_end.append(mark("conn_end"))
    return trace


# --------------------------------------------------------------------------- certificates


def cert_not_after(der: bytes) -> float:
    """Unix time of an X.509 certificate's notAfter (RFC 5280 4.1.2.5)."""
    _, cert, _ = read_tlv(der, 0)
    _, tbs, _ = read_tlv(cert, 0)
    pos = 0
    tag, _, pos = read_tlv(tbs, pos)
    if tag == 0xA0:  # [0] version; serialNumber follows
        tag, _, pos = read_tlv(tbs, pos)
    for _ in range(2):  # signature algorithm, issuer
        _, _, pos = read_tlv(tbs, pos)
    _, validity, _ = read_tlv(tbs, pos)
    _, _, after = read_tlv(validity, 0)
    tag, text, _ = read_tlv(validity, after)
    raw = text.decode("ascii")
    if tag == 0x17:  # UTCTime YYMMDDHHMMSSZ; 50-99 are 19xx (RFC 5280)
        year = int(raw[:2])
        raw = f"{1900 + year if year >= 50 else 2000 + year}{raw[2:]}"
    elif tag != 0x18:  # GeneralizedTime YYYYMMDDHHMMSSZ
        raise ValueError("unexpected time type")
    parsed = time.strptime(raw, "%Y%m%d%H%M%SZ")
    return float(calendar.timegm(parsed))


# blackbox's labels come from Go's tls.VersionName
_TLS_VERSIONS = {"TLSv1": "TLS 1.0", "TLSv1.1": "TLS 1.1", "TLSv1.2": "TLS 1.2", "TLSv1.3": "TLS 1.3"}


# --------------------------------------------------------------------------- collector


@dataclass
class ProbeResult:
    hops: list[Hop] = field(default_factory=list)
    status: int = 0
    http_version: float | None = None
    redirects: int = 0
    ssl: bool = False
    content_length: int | None = None
    body_length: int | None = None
    regex_failed: bool | None = None
    headers: dict[str, str] = field(default_factory=dict)
    duration: float = 0.0
    error: str | None = None


class HttpProbeCollector(Collector[HttpProbe]):
    config_class = HttpProbe
    up_metric = "probe_success"
    up_help = "1 if the probe succeeded: the expected status, the body matched, TLS valid."

    _CACHE_HIT_VALUES: ClassVar[frozenset[str]] = frozenset({"hit", "stale", "revalidated", "updating"})

    def __init__(self, config: HttpProbe, ctx: Context) -> None:
        super().__init__(config, ctx)
        self._session: aiohttp.ClientSession | None = None
        self._holder = _HopHolder()
        self._regex = re.compile(config.body_regex.encode()) if config.body_regex else None

    def describe(self) -> str:
        return f"{self.config.method} {url_without_userinfo(self.config.url)}"

    def _ssl_context(self) -> ssl.SSLContext:
        tls = self.config.tls or ProbeTLS()
        context = ssl.create_default_context(cafile=tls.ca_file)
        if tls.insecure_skip_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        context.sslobject_class = _timed_ssl_object(self._holder)
        return context

    async def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # Loading the CA store takes tens of milliseconds of blocking file I/O: off the
            # loop, or it would stall (and inflate the timings of) every concurrent probe.
            context = await asyncio.to_thread(self._ssl_context)
            connector = aiohttp.TCPConnector(
                ssl=context,
                force_close=True,  # a fresh connection per probe: connect and TLS are measured
                use_dns_cache=False,  # and so is resolution
                limit=0,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                trace_configs=[_trace_config()],
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None),  # the engine's deadline applies
                auto_decompress=True,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def collect(self) -> list[Metric]:
        result = ProbeResult()
        start = time.perf_counter()
        try:
            await self._probe(result)
        finally:
            self._holder.hop = None
        result.duration = time.perf_counter() - start
        families = self._families(result)
        if result.error is not None:
            raise CollectError(f"probe {self.config.name} failed: {result.error}", partial=families)
        return families

    async def _probe(self, result: ProbeResult) -> None:
        session = await self._get_session()
        url = URL(self.config.url)
        method = self.config.method
        server_name = self.config.tls.server_name if self.config.tls else None
        while True:
            hop = Hop(start=time.perf_counter())
            result.hops.append(hop)
            self._holder.hop = hop
            try:
                async with session.request(
                    method,
                    url,
                    headers=self.config.headers,
                    allow_redirects=False,
                    trace_request_ctx=hop,
                    server_hostname=server_name if url.scheme == "https" else None,
                ) as resp:
                    hop.headers_at = time.perf_counter()
                    body = await resp.read()
                    hop.body_end = time.perf_counter()
            except aiohttp.ClientSSLError as exc:
                result.error = f"TLS with {url.host}: {_ssl_reason(exc)}"
                return
            except aiohttp.ClientError as exc:
                result.error = f"{method} {url.with_user(None)}: {type(exc).__name__}: {exc}"
                return
            result.status = resp.status
            result.http_version = resp.version.major + resp.version.minor / 10 if resp.version else None
            result.ssl = url.scheme == "https"
            result.headers = {k.lower(): v for k, v in resp.headers.items()}
            length = resp.headers.get("Content-Length")
            result.content_length = int(length) if length and length.isdigit() else -1
            result.body_length = len(body)
            location = resp.headers.get("Location")
            if self.config.follow_redirects and resp.status in _REDIRECT_STATUSES and location:
                if result.redirects >= MAX_REDIRECTS:
                    result.error = f"more than {MAX_REDIRECTS} redirects"
                    return
                result.redirects += 1
                url = url.join(URL(location))
                if resp.status == 303 or (resp.status in (301, 302) and method == "POST"):
                    method = "GET"  # as browsers and Go do
                continue
            break
        expected = self.config.expect_status
        ok = resp.status in expected if expected else 200 <= resp.status < 300
        if not ok:
            wanted = ", ".join(map(str, expected)) if expected else "2xx"
            result.error = f"status {resp.status}, expected {wanted}"
        if self._regex is not None:
            result.regex_failed = self._regex.search(body) is None
            if result.regex_failed and result.error is None:
                result.error = f"body does not match {self.config.body_regex!r}"

    def _families(self, r: ProbeResult) -> list[Metric]:
        """blackbox_exporter's probe_* families for one result, in its order.

        A flat list of one-line families (a little over 60 lines): it reads best
        side by side with blackbox_exporter's http prober it mirrors.
        """
        fams: list[Metric] = []

        def gauge(name: str, doc: str, value: float) -> None:
            fams.append(GaugeMetricFamily(name, doc, value=value))

        gauge("probe_success", self.up_help, float(r.error is None))
        gauge("probe_duration_seconds", "Seconds the probe took, redirects included.", r.duration)
        phases = GaugeMetricFamily(
            "probe_http_duration_seconds",
            "Seconds per phase of the HTTP request, summed over redirects.",
            labels=["phase"],
        )
        totals = dict.fromkeys(PHASES, 0.0)
        for hop in r.hops:
            for phase, seconds in hop.phases().items():
                totals[phase] += seconds
        for phase in PHASES:
            phases.add_metric([phase], totals[phase])
        fams.append(phases)
        gauge("probe_dns_lookup_time_seconds", "Seconds DNS resolution took, summed over redirects.", totals["resolve"])
        gauge("probe_http_status_code", "Status code of the final response; 0 if none came.", r.status)
        gauge("probe_http_redirects", "Redirects followed.", r.redirects)
        gauge("probe_http_ssl", "1 if the final response came over TLS.", float(r.ssl))
        if r.content_length is not None:
            gauge(
                "probe_http_content_length",
                "Content-Length of the final response; -1 when the header is absent.",
                r.content_length,
            )
        if r.body_length is not None:
            gauge(
                "probe_http_uncompressed_body_length",
                "Bytes of the final response body after decompression.",
                r.body_length,
            )
        if r.http_version is not None:
            gauge("probe_http_version", "HTTP version of the final response.", r.http_version)
        if r.regex_failed is not None:
            gauge("probe_failed_due_to_regex", "1 if the body did not match body_regex.", float(r.regex_failed))
        last_tls = next((h for h in reversed(r.hops) if h.tls_version is not None), None)
        if last_tls is not None and r.ssl:
            version = GaugeMetricFamily(
                "probe_tls_version_info", "TLS version of the final connection.", labels=["version"]
            )
            version.add_metric([_TLS_VERSIONS.get(last_tls.tls_version or "", last_tls.tls_version or "")], 1.0)
            fams.append(version)
            if last_tls.cert_der:
                try:
                    expiry = cert_not_after(last_tls.cert_der)
                except (ValueError, UnicodeDecodeError):
                    self.log.warning("cannot read the peer certificate", extra={"kv": {"target": self.config.name}})
                else:
                    gauge(
                        "probe_ssl_earliest_cert_expiry",
                        "Unix time the server's certificate expires (the leaf's notAfter).",
                        expiry,
                    )
        if self.config.check_cache and r.status:
            fams.extend(self._cache_families(r.headers))
        return fams

    def _cache_families(self, headers: dict[str, str]) -> list[Metric]:
        fams: list[Metric] = []
        max_age = _cache_control_seconds(headers.get("cache-control", ""), "max-age")
        if max_age is not None:
            fams.append(
                GaugeMetricFamily(
                    "probe_http_cache_max_age_seconds",
                    "max-age of the final response's Cache-Control header.",
                    value=max_age,
                )
            )
        s_maxage = _cache_control_seconds(headers.get("cache-control", ""), "s-maxage")
        if s_maxage is not None:
            fams.append(
                GaugeMetricFamily(
                    "probe_http_cache_shared_max_age_seconds",
                    "s-maxage of the final response's Cache-Control header (what CDNs obey).",
                    value=s_maxage,
                )
            )
        age = headers.get("age", "").strip()
        if age.isdigit():
            fams.append(
                GaugeMetricFamily(
                    "probe_http_cache_age_seconds",
                    "Age header of the final response: seconds in cache.",
                    value=int(age),
                )
            )
        hit = _cache_hit(headers, self._CACHE_HIT_VALUES)
        fams.append(
            GaugeMetricFamily(
                "probe_http_cache_hit",
                "1 if the response came from a cache: CF-Cache-Status, else X-Cache, else an Age above 0.",
                value=float(hit),
            )
        )
        return fams


def _cache_control_seconds(header: str, directive: str) -> int | None:
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == directive:
            value = value.strip().strip('"')
            return int(value) if value.isdigit() else None
    return None


def _cache_hit(headers: dict[str, str], hit_values: frozenset[str]) -> bool:
    cf = headers.get("cf-cache-status")
    if cf is not None:
        return cf.strip().lower() in hit_values
    x_cache = headers.get("x-cache")
    if x_cache is not None:
        # "HIT", "Hit from cloudfront", "HIT, MISS" (shield, edge): the edge is the last one
        last = x_cache.split(",")[-1].strip().lower()
        return last.startswith("hit")
    age = headers.get("age", "").strip()
    return age.isdigit() and int(age) > 0


def _ssl_reason(exc: aiohttp.ClientSSLError) -> str:
    cause = exc.__cause__ or getattr(exc, "certificate_error", None) or exc
    if isinstance(cause, ssl.SSLCertVerificationError):
        return cause.verify_message or str(cause)
    if isinstance(cause, ssl.SSLError):
        return cause.reason or str(cause)
    return str(cause)


COLLECTOR = HttpProbeCollector
