"""HTTP probes as variants: plain HTTP, HTTPS, and static assets behind a CDN.

Captured from the real exporter probing the real HTTP/HTTPS server the suite starts
(tests/servers/https.py): a plain-HTTP page has no certificate series, only probes with
`check_cache: true` have cache series, and which cache series depends on the headers
the CDN sends (X-Cache and max-age only; Age with s-maxage and max-age).
"""

from __future__ import annotations

import pytest

from tests.helpers import exporter, scrape
from tests.rules.variants import (
    EXPORTER_HEALTHY,
    Change,
    Incident,
    Rule,
    Source,
    Variant,
    becomes,
    constant,
    exporter_incidents,
    vanishes,
)
from tests.servers.https import HttpsServer

DAY = 86400


async def _capture(request: pytest.FixtureRequest, path: str, cert: str | None, cache: bool) -> str:
    server: HttpsServer = request.getfixturevalue("https_server")
    config = f"http_probes:\n  - name: page\n    url: {server.url(path, cert)}\n"
    if cert is not None:
        config += f"    tls:\n      ca_file: {server.ca_file}\n"
    if cache:
        config += "    check_cache: true\n"
    async with exporter(config) as client:
        return await scrape(client)


async def http(request: pytest.FixtureRequest) -> str:
    return await _capture(request, "/ok", None, cache=False)


async def https(request: pytest.FixtureRequest) -> str:
    return await _capture(request, "/ok", "valid", cache=False)


async def cdn_x_cache(request: pytest.FixtureRequest) -> str:
    """An asset behind CloudFront: `X-Cache: Hit from cloudfront`, max-age only."""
    return await _capture(request, "/cache/xcache-hit", "valid", cache=True)


async def cdn_age(request: pytest.FixtureRequest) -> str:
    """An asset behind a CDN that says so with Age, with s-maxage and max-age."""
    return await _capture(request, "/cache/age", "valid", cache=True)


HEALTHY = (
    Rule("probe_success", constant(1)),
    Rule("probe_duration_seconds", constant(0.2)),
    # a static asset: cached a day by browsers and the CDN, served from the CDN
    Rule("probe_http_cache_max_age_seconds", constant(DAY)),
    Rule("probe_http_cache_shared_max_age_seconds", constant(DAY)),
    Rule("probe_http_cache_hit", constant(1)),
    *EXPORTER_HEALTHY,
)


INCIDENTS = (
    Incident(
        "the endpoint stops answering",
        "ProbeEndpointDown",
        "critical",
        (Change("probe_success", becomes(0)),),
        fires_within=10,
        # escalation.probeEndpointDown (15m) instead of the 2m `for`
        escalates_within=23,
    ),
    Incident(
        "the endpoint answers slowly",
        "ProbeSlow",
        "warning",
        (Change("probe_duration_seconds", becomes(3.5)),),
        fires_within=20,
    ),
    Incident(
        # the expiry as a Unix time: ten (or two) days after the run's time 0
        "the certificate expires within the warning window",
        "ProbeCertificateExpiringSoon",
        "warning",
        (Change("probe_ssl_earliest_cert_expiry", becomes(10 * DAY)),),
        fires_within=10,
    ),
    Incident(
        "the certificate expires within the critical window",
        "ProbeCertificateExpiringSoon",
        "critical",
        (Change("probe_ssl_earliest_cert_expiry", becomes(2 * DAY)),),
        fires_within=10,
    ),
    Incident(
        # a deploy drops Cache-Control: the directive series are no longer exposed
        "a static asset loses its long cache lifetime",
        "ProbeCacheHeadersLost",
        "warning",
        (
            Change("probe_http_cache_max_age_seconds", vanishes()),
            Change("probe_http_cache_shared_max_age_seconds", vanishes()),
        ),
        fires_within=45,
        required=(("probe_http_cache_hit", {}),),
    ),
    Incident(
        "the CDN stops serving an asset from its cache",
        "ProbeCacheMissing",
        "warning",
        (Change("probe_http_cache_hit", becomes(0)),),
        fires_within=70,
    ),
    *exporter_incidents("probe_success"),
)

SOURCE = Source(
    name="http_probes",
    docs="http_probes",
    variants=tuple(
        Variant("http_probes", name, fn)
        for name, fn in (("http", http), ("https", https), ("cdn-x-cache", cdn_x_cache), ("cdn-age", cdn_age))
    ),
    healthy=HEALTHY,
    incidents=INCIDENTS,
)
