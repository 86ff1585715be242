"""HTTP probes against a real HTTP/TLS server on loopback with certificates of known expiry."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.helpers import exporter, promtool_check, scrape, value, values
from tests.servers.https import CACHE_HEADERS, HEALTHY_BODY, HttpsServer

pytestmark = pytest.mark.timeout(60)


def probe(name: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "url": url, **extra}


def config(*probes: dict[str, Any], timeout: str = "5s") -> dict[str, Any]:
    return {"global": {"scrape_timeout": timeout}, "http_probes": list(probes)}


def trusting(s: HttpsServer, **tls: Any) -> dict[str, Any]:
    """The ``tls`` key of a probe that trusts the test CA."""
    return {"ca_file": str(s.ca_file), **tls}


def probes_for(s: HttpsServer) -> dict[str, Any]:
    ca = trusting(s)
    insecure = {"insecure_skip_verify": True}
    return config(
        probe("valid", s.url("/ok", "valid", host="localhost"), tls=ca, body_regex="all systems go"),
        probe("expiring", s.url("/ok", "expiring"), tls=ca),
        probe("expired", s.url("/ok", "expired"), tls=ca),
        probe("expired-insecure", s.url("/ok", "expired"), tls=insecure),
        probe("wronghost", s.url("/ok", "wronghost"), tls=ca),
        probe("wronghost-sni", s.url("/ok", "wronghost"), tls=trusting(s, server_name="wrong.example")),
        probe("selfsigned", s.url("/ok", "selfsigned"), tls=ca),
        probe("selfsigned-insecure", s.url("/ok", "selfsigned"), tls=insecure),
        probe("redirects", s.url("/redirect/3")),
        probe("redirect-not-followed", s.url("/redirect/1"), follow_redirects=False),
        probe("redirect-expected", s.url("/redirect/1"), follow_redirects=False, expect_status=[302]),
        probe("status-503", s.url("/status/503")),
        probe("status-503-expected", s.url("/status/503"), expect_status=[503]),
        probe("post", s.url("/status/201"), method="POST", expect_status=[201]),
        probe("body-mismatch", s.url("/ok"), body_regex="maintenance mode"),
        probe("refused", "http://127.0.0.1:1/ok"),
        *(probe(f"cache-{kind}", s.url(f"/cache/{kind}"), check_cache=True) for kind in CACHE_HEADERS),
    )


@pytest.fixture(scope="module")
def exposition(https_server: HttpsServer) -> str:
    """One scrape of every probe (each test reads it; none changes the server)."""

    async def once() -> str:
        async with exporter(probes_for(https_server)) as http:
            return await scrape(http)

    return asyncio.run(once())


def v(text: str, name: str, target: str, **labels: str) -> float | None:
    return value(text, name, target=target, **labels)


def test_valid_certificate_and_phases(exposition: str, https_server: HttpsServer) -> None:
    t = exposition
    assert v(t, "probe_success", "valid") == 1
    assert v(t, "probe_http_status_code", "valid") == 200
    assert v(t, "probe_http_ssl", "valid") == 1
    assert v(t, "probe_ssl_earliest_cert_expiry", "valid") == https_server.certs["valid"].not_after
    assert v(t, "probe_http_redirects", "valid") == 0
    assert v(t, "probe_http_content_length", "valid") == len(HEALTHY_BODY)
    assert v(t, "probe_http_uncompressed_body_length", "valid") == len(HEALTHY_BODY)
    assert v(t, "probe_failed_due_to_regex", "valid") == 0
    assert v(t, "probe_http_version", "valid") == 1.1
    (tls,) = values(t, "probe_tls_version_info", target="valid")
    assert tls.labels["version"] == "TLS 1.3" and tls.value == 1  # both ends allow 1.3: they pick it
    phases = {s.labels["phase"]: s.value for s in values(t, "probe_http_duration_seconds", target="valid")}
    assert set(phases) == {"resolve", "connect", "tls", "processing", "transfer"}
    # localhost is resolved (127.0.0.1 literals are not); every phase took some time, less than the whole
    for phase, seconds in phases.items():
        assert 0 < seconds < 2, (phase, seconds)
    total = v(t, "probe_duration_seconds", "valid")
    assert total is not None and sum(phases.values()) <= total
    assert v(t, "probe_dns_lookup_time_seconds", "valid") == phases["resolve"]


def test_expiry_timestamps_and_certificate_failures(exposition: str, https_server: HttpsServer) -> None:
    t, certs = exposition, https_server.certs
    assert v(t, "probe_success", "expiring") == 1
    expiring = v(t, "probe_ssl_earliest_cert_expiry", "expiring")
    assert expiring == certs["expiring"].not_after
    assert 4.9 * 86400 < expiring - time.time() <= 5 * 86400
    # verification failures: no response, so no status and no certificate figures
    for target in ("expired", "wronghost", "selfsigned"):
        assert v(t, "probe_success", target) == 0, target
        assert v(t, "probe_http_status_code", target) == 0, target
        assert v(t, "probe_ssl_earliest_cert_expiry", target) is None, target
        assert value(t, "stack_exporter_collector_success", collector="http_probes", target=target) == 0
    # without verification the expiry is still read
    assert v(t, "probe_success", "expired-insecure") == 1
    expired = v(t, "probe_ssl_earliest_cert_expiry", "expired-insecure")
    assert expired == certs["expired"].not_after and expired < time.time()
    assert v(t, "probe_success", "selfsigned-insecure") == 1
    assert v(t, "probe_ssl_earliest_cert_expiry", "selfsigned-insecure") == certs["selfsigned"].not_after
    # the certificate names wrong.example: asking for that name makes it valid
    assert v(t, "probe_success", "wronghost-sni") == 1
    assert v(t, "probe_ssl_earliest_cert_expiry", "wronghost-sni") == certs["wronghost"].not_after


def test_redirects_status_and_body(exposition: str) -> None:
    t = exposition
    assert v(t, "probe_success", "redirects") == 1
    assert v(t, "probe_http_redirects", "redirects") == 3
    assert v(t, "probe_http_status_code", "redirects") == 200
    assert v(t, "probe_http_ssl", "redirects") == 0
    assert v(t, "probe_ssl_earliest_cert_expiry", "redirects") is None
    assert v(t, "probe_success", "redirect-not-followed") == 0
    assert v(t, "probe_http_status_code", "redirect-not-followed") == 302
    assert v(t, "probe_http_redirects", "redirect-not-followed") == 0
    assert v(t, "probe_success", "redirect-expected") == 1
    assert v(t, "probe_success", "status-503") == 0
    assert v(t, "probe_http_status_code", "status-503") == 503
    assert v(t, "probe_success", "status-503-expected") == 1
    assert v(t, "probe_success", "post") == 1
    assert v(t, "probe_http_status_code", "post") == 201
    assert v(t, "probe_success", "body-mismatch") == 0
    assert v(t, "probe_failed_due_to_regex", "body-mismatch") == 1
    assert v(t, "probe_http_status_code", "body-mismatch") == 200
    assert v(t, "probe_success", "refused") == 0
    assert v(t, "probe_http_status_code", "refused") == 0


def test_cache_headers(exposition: str) -> None:
    t = exposition
    expected = {
        # kind: (max-age, s-maxage, Age, hit)
        "xcache-hit": (3600, None, None, 1),
        "cf-miss": (60, None, 0, 0),
        "age": (300, 600, 120, 1),
        "none": (None, None, None, 0),
    }
    assert set(expected) == set(CACHE_HEADERS)
    for kind, (max_age, s_maxage, age, hit) in expected.items():
        target = f"cache-{kind}"
        assert v(t, "probe_success", target) == 1
        assert v(t, "probe_http_cache_max_age_seconds", target) == max_age, kind
        assert v(t, "probe_http_cache_shared_max_age_seconds", target) == s_maxage, kind
        assert v(t, "probe_http_cache_age_seconds", target) == age, kind
        assert v(t, "probe_http_cache_hit", target) == hit, kind
    # probes without check_cache say nothing about caching
    assert v(t, "probe_http_cache_hit", "valid") is None


async def test_slow_endpoint_fails_within_the_deadline_while_others_answer(https_server: HttpsServer) -> None:
    s = https_server
    text = config(
        probe("slow", s.url("/slow?seconds=20"), scrape_timeout="1s"),
        probe("fast", s.url("/ok")),
        probe("fast-tls", s.url("/ok", "valid"), tls=trusting(s)),
    )
    async with exporter(text) as http:
        start = time.monotonic()
        out = await scrape(http)
        elapsed = time.monotonic() - start
    assert elapsed < 2.5, elapsed
    assert v(out, "probe_success", "slow") == 0
    assert value(out, "stack_exporter_collector_success", collector="http_probes", target="slow") == 0
    assert v(out, "probe_success", "fast") == 1
    assert v(out, "probe_success", "fast-tls") == 1


async def test_probe_endpoint_fetches_only_configured_urls(https_server: HttpsServer) -> None:
    async with exporter(config(probe("home", https_server.url("/ok")))) as http:
        text = await scrape(http, "/probe?target=home")
        assert value(text, "probe_success", target="home") == 1
        for bad in (https_server.url("/status/200"), "home&url=http://127.0.0.1:1/"):
            resp = await http.get("/probe", params={"target": bad})
            assert resp.status == 400, bad
        resp = await http.get("/probe", params={"target": "home", "url": "http://127.0.0.1:1/"})
        assert resp.status == 200
        assert value(await resp.text(), "probe_success", target="home") == 1


async def test_header_credentials_stay_out_of_metrics_and_logs(
    https_server: HttpsServer, caplog: pytest.LogCaptureFixture
) -> None:
    token = "Bearer tok-9f8e7d6c5b4a"
    text = config(
        probe("auth", https_server.url("/status/401"), headers={"Authorization": token}),
        probe("userinfo", https_server.url("/status/401").replace("://", "://probe:pw-1a2b3c4d@")),
    )
    async with exporter(text) as http:
        out = await scrape(http)
        landing = await (await http.get("/")).text()
    assert v(out, "probe_http_status_code", "auth") == 401
    assert v(out, "probe_success", "userinfo") == 0
    logs = "\n".join(str(getattr(r, "kv", "")) + r.getMessage() for r in caplog.records)
    assert "status 401" in logs
    for secret in ("tok-9f8e7d6c5b4a", "pw-1a2b3c4d"):
        assert secret not in out
        assert secret not in logs
        assert secret not in landing


def test_exposition_is_clean(exposition: str) -> None:
    assert promtool_check(exposition) == ""


async def test_failure_reasons_are_logged(https_server: HttpsServer, caplog: pytest.LogCaptureFixture) -> None:
    s = https_server
    text = config(probe("expired", s.url("/ok", "expired"), tls=trusting(s)), probe("down", s.url("/status/503")))
    async with exporter(text) as http:
        await scrape(http)
    errors = {getattr(r, "kv", {}).get("target"): getattr(r, "kv", {}).get("err", "") for r in caplog.records}
    assert "certificate has expired" in errors["expired"]
    assert "status 503, expected 2xx" in errors["down"]
