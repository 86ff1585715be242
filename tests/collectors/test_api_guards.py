"""Guards of the shared HTTP client (exporter/collectors/api.py) under hostile or unlucky backends.

* Per-target fairness: slow targets on one host:port cannot take every connection
  from a healthy target on the same host:port, and a request that never got a
  connection says so instead of blaming the server.
* Retry-After / rate-limit reset parsing: one parser for every form a server sends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from aiohttp import web
from multidict import CIMultiDict

from exporter.collectors.api import (
    DEFAULT_RATE_LIMIT_BACKOFF,
    MAX_RATE_LIMIT_BACKOFF,
    HttpClient,
    HttpError,
)
from exporter.collectors.base import Context, deadline_scope
from exporter.retry_after import parse_reset, parse_retry_after
from tests.fakes.checks import capture, collection_errors
from tests.fakes.common import Fault
from tests.fakes.statuspage import FakeStatuspage
from tests.helpers import exporter, scrape, value

SLOW_TARGETS = 8


class SharedHostStatuspage(FakeStatuspage):
    """One server, two pages: ``/slow/`` never answers within a deadline, ``/fast/`` answers at once."""

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/slow/api/v2/summary.json", self.serve_summary)
        app.router.add_get("/fast/api/v2/summary.json", self.serve_summary)


@pytest.fixture
async def shared_host() -> AsyncIterator[SharedHostStatuspage]:
    async with SharedHostStatuspage().running() as fake:
        fake.faults["/slow/"] = Fault("slow", seconds=5.0)
        yield fake  # type: ignore[misc]


async def test_slow_targets_on_one_host_do_not_starve_a_healthy_one(
    shared_host: SharedHostStatuspage, caplog: pytest.LogCaptureFixture
) -> None:
    capture(caplog)
    items = [
        {"name": f"slow{i}", "url": f"{shared_host.url}/slow", "refresh_interval": "0s", "scrape_timeout": "1.5s"}
        for i in range(SLOW_TARGETS)
    ]
    # listed last, so before the fix it queued behind every slow target for the host's connections
    healthy = {"name": "healthy", "url": f"{shared_host.url}/fast", "refresh_interval": "0s", "scrape_timeout": "1.5s"}
    items.append(healthy)
    ups = []
    async with exporter({"statuspages": items}) as client:
        for _ in range(5):
            text = await scrape(client)
            ups.append(value(text, "statuspage_up", target="healthy"))
            assert value(text, "statuspage_up", target="slow0") == 0
    assert ups == [1.0] * 5, f"healthy target failed scrapes: {ups}; errors: {collection_errors(caplog)}"
    assert shared_host.calls["/fast/api/v2/summary.json"] == 5


async def test_a_request_that_never_got_a_connection_says_so(shared_host: SharedHostStatuspage) -> None:
    ctx = Context()
    http = HttpClient(ctx, collector="statuspages", provider="Status page", concurrency=1)
    url = f"{shared_host.url}/slow/api/v2/summary.json"
    try:
        with deadline_scope(1.0):
            results = await asyncio.gather(http.request("GET", url), http.request("GET", url), return_exceptions=True)
    finally:
        await ctx.close()
    messages = sorted(str(r) for r in results)
    assert all(isinstance(r, HttpError) for r in results), results
    # the one that was sent timed out waiting for the answer ...
    assert "no answer to GET /slow/api/v2/summary.json" in messages[0], messages
    # ... the other never left: it waited for the target's only connection
    waited = messages[1]
    assert f"for a free connection to 127.0.0.1:{shared_host.port}; no request sent" in waited, waited
    assert waited.startswith("Status page: waited "), waited
    assert shared_host.calls["/slow/api/v2/summary.json"] == 1
    fams = {f.name: f for f in http.families()}
    assert fams["stack_exporter_http_connection_wait_timeouts"].samples[0].value == 1
    assert {s.labels["code"]: s.value for s in fams["stack_exporter_http_requests"].samples} == {"timeout": 1}


# --------------------------------------------------------------------------- Retry-After and reset headers

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 0.5 ", 0.5),
        ("0", 0.0),
        ("-5", 0.0),  # negative: no wait, not a negative one
        ("99999999", 3600.0),  # huge: capped
        ("9" * 60, 3600.0),  # bigger than any int64: still capped, no error
        (format_datetime(datetime.fromtimestamp(NOW + 90, UTC), usegmt=True), 90.0),  # HTTP-date
        (format_datetime(datetime.fromtimestamp(NOW - 90, UTC), usegmt=True), 0.0),  # in the past
        # no zone ("-0000" or none): GMT as RFC 9110 says, never the exporter's local time
        ("Tue, 14 Nov 2023 22:15:20 -0000", 120.0),
        ("Tue, 14 Nov 2023 22:15:20", 120.0),
        ("Tue, 14 Nov 2023 23:15:20 +0100", 120.0),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 3600.0),
        # unusable: the caller's default applies
        ("nan", None),
        ("NaN", None),
        ("inf", None),
        ("-inf", None),
        ("Infinity", None),
        ("1e3", None),
        ("1_000", None),
        ("\u0661\u0662", None),  # Arabic-Indic digits: float() takes them, HTTP does not
        ("soon", None),
        ("", None),
        (None, None),
        ("9" * 65, None),  # longer than any delay, date or Unix time
        ("Wed, 99 Foo 2023 25:61:61 GMT", None),
    ],
)
def test_retry_after(value: str | None, seconds: float | None) -> None:
    got = parse_retry_after(value, NOW)
    if seconds is None:
        assert got is None
    else:
        assert got == pytest.approx(seconds, abs=1.0)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30", 30.0),  # IETF draft / Resend: a delay
        (str(int(NOW + 45)), 45.0),  # SendGrid / GitHub: a Unix time
        (str(int(NOW - 45)), 0.0),
        ("-1", 0.0),
        (str(10**12), 3600.0),
        ("nan", None),
        ("inf", None),
        ("", None),
        ("Tue, 14 Nov 2023 22:15:20 GMT", None),
    ],
)
def test_rate_limit_reset(value: str, seconds: float | None) -> None:
    got = parse_reset(value, NOW)
    assert got == (None if seconds is None else pytest.approx(seconds, abs=1.0))


def test_one_parser_for_collectors_and_bridge() -> None:
    from exporter.bridge import providers

    assert providers.parse_retry_after is parse_retry_after


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The exporter's local time zone five hours behind GMT, as on an unlucky host."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(
    ("headers", "backoff"),
    [
        # a date without a zone, ten minutes ahead: read as local time it was five hours (capped to one)
        ({"Retry-After": "<naive date ten minutes ahead>"}, 600.0),
        # NaN: was "now + max(0, nan)", i.e. no backoff at all after a 429
        ({"Retry-After": "nan"}, DEFAULT_RATE_LIMIT_BACKOFF),
        ({"Retry-After": "inf"}, DEFAULT_RATE_LIMIT_BACKOFF),
        ({"Retry-After": "0"}, 0.0),
        ({"X-RateLimit-Reset": "nan"}, DEFAULT_RATE_LIMIT_BACKOFF),
        ({"Retry-After": "99999999999"}, MAX_RATE_LIMIT_BACKOFF),
    ],
)
def test_429_backoff_from_odd_headers(new_york: None, headers: dict[str, str], backoff: float) -> None:
    if headers.get("Retry-After") == "<naive date ten minutes ahead>":
        ahead = format_datetime(datetime.now(UTC) + timedelta(minutes=10))  # "... 22:15:20 +0000"
        headers = {"Retry-After": ahead.rsplit(" ", 1)[0]}
    http = HttpClient(Context(), collector="mailgun", provider="Mailgun")
    until = http.note_rate_limit(CIMultiDict(headers), 429)
    assert until is not None
    assert until - time.time() == pytest.approx(backoff, abs=2.0)
