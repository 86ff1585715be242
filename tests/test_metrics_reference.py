"""docs/metrics/ against what the collectors really emit, source by source, both ways.

Each source's page lists every series with its type, labels and help; the checks
here scrape the real collectors (real servers where the suite has them, fakes
serving recorded bodies otherwise) with every optional part configured, and fail
on a series the page lacks, a documented one that never appears, or any
difference in type, labels or help.  The page of a source comes from the source
registry, so a renamed or added source cannot slip past.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from exporter.collectors import SOURCES
from tests.collectors.test_email_domains import DOMAINS, dns_config, records
from tests.collectors.test_http_probes import probes_for
from tests.collectors.test_pgbouncer import bouncer_config
from tests.collectors.test_postgres import monitor_dsn, pg_config
from tests.collectors.test_redis import every_mode
from tests.collectors.test_service_apis import all_service_apis
from tests.collectors.test_ses import KEY_ID, REGION, SECRET
from tests.collectors.test_ses import config as ses_config
from tests.fakes.email import FakeMailgun, FakePostmark, FakeSendgrid
from tests.fakes.resend import FakeResend
from tests.fakes.ses import FakeSes
from tests.helpers import REFERENCE_DIR, exporter, promtool_check, reference_problems, scrape, value
from tests.servers.directus import DirectusServer
from tests.servers.https import HttpsServer
from tests.servers.nsd import zone_text
from tests.servers.postgres import PgBouncer, PgReplication
from tests.servers.redis import RedisSentinelSetup, RedisServer

pytestmark = pytest.mark.timeout(120)

# source key -> the test below that checks its page; filled by @checks
CHECKED: dict[str, str] = {}


def checks(*keys: str) -> Callable[[Callable[..., Awaitable[None]]], Callable[..., Awaitable[None]]]:
    """Mark a test as the reference check of these sources."""

    def mark(test: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        for key in keys:
            assert key in SOURCES, f"{test.__name__} checks {key!r}, which is not a source"
            CHECKED[key] = test.__name__
        return test

    return mark


def page(key: str) -> str:
    """The docs/metrics page (without .md) of a source, as the registry names it."""
    return str(getattr(SOURCES[key], "page", "") or key)


def one_page(*keys: str) -> str:
    """The page several sources share (the email providers have one)."""
    pages = {page(key) for key in keys}
    assert len(pages) == 1, f"{keys} are documented on several pages: {sorted(pages)}"
    return pages.pop()


def assert_matches(
    source_page: str,
    *texts: str,
    prefixes: tuple[str, ...],
    optional: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
) -> None:
    problems = [
        p
        for p in reference_problems(source_page, *texts, prefixes=prefixes, exclude=exclude)
        if not p.startswith(optional)
    ]
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- the registry and the landing page


def test_every_source_has_a_reference_check() -> None:
    missing = sorted(set(SOURCES) - set(CHECKED))
    assert not missing, f"no reference check in {Path(__file__).name} for {missing}"


@pytest.mark.parametrize("key", sorted(SOURCES))
def test_every_source_has_its_page_linked_from_the_landing_page(key: str) -> None:
    name = page(key)
    assert (REFERENCE_DIR / f"{name}.md").is_file(), f"{key}: docs/metrics/{name}.md is missing"
    landing = (REFERENCE_DIR / "README.md").read_text(encoding="utf-8")
    assert f"]({name}.md)" in landing, f"{key}: docs/metrics/README.md does not link {name}.md"


def test_every_page_is_linked_from_the_landing_page() -> None:
    landing = (REFERENCE_DIR / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(([\w-]+)\.md\)", landing))
    pages = {p.stem for p in REFERENCE_DIR.glob("*.md")} - {"README"}
    assert pages == linked


# --------------------------------------------------------------------------- per source


async def test_exporter_self_metrics(redis_server: RedisServer) -> None:
    async with exporter({"redis": [{"name": "r", "url": redis_server.url}]}) as http:
        text = await scrape(http)
    assert_matches("exporter", text, prefixes=("stack_exporter_", "process_"))


@checks("redis")
async def test_redis(tmp_path: Path, redis_cluster: Any, redis_sentinel: RedisSentinelSetup) -> None:
    text, down_text, _ = await every_mode(tmp_path, redis_cluster, redis_sentinel)
    assert_matches(page("redis"), text, down_text, prefixes=("redis_",))


@checks("postgres")
async def test_postgres(pg_replication: PgReplication, tmp_path: Path) -> None:
    primary, replica = pg_replication.primary, pg_replication.replica
    queries = tmp_path / "q.yaml"
    queries.write_text("pg_one:\n  query: SELECT 1 AS v\n  metrics:\n    - v: {usage: GAUGE, description: One.}\n")
    primary.query("SELECT pg_create_physical_replication_slot('reference_slot', true)")
    try:
        config = pg_config(("p", monitor_dsn(primary)), ("r", monitor_dsn(replica, "postgres")))
        config["postgres"].append({"name": "q", "dsn": monitor_dsn(primary), "custom_queries_file": str(queries)})
        async with exporter(config) as http:
            text = await scrape(http)
    finally:
        primary.query("SELECT pg_drop_replication_slot('reference_slot')")
    # autovacuum timing is not under the test's control; pg_one_v is the test's own query
    optional = ("pg_one_v", "pg_stat_user_tables_last_auto")
    assert_matches(
        page("postgres"),
        text,
        prefixes=("pg_", "stack_exporter_query_errors", "stack_exporter_postgres_"),
        optional=optional,
    )


@checks("pgbouncer")
async def test_pgbouncer(pgbouncer: PgBouncer) -> None:
    async with exporter(bouncer_config(("b", pgbouncer.dsn))) as http:
        text = await scrape(http)
    problems = reference_problems(page("pgbouncer"), text, prefixes=("pgbouncer_",))
    # columns newer PgBouncer versions add; 1.18 here has none of them
    newer = ("server_assignments", "client_parses", "server_parses", "binds")
    problems = [p for p in problems if not (any(n in p for n in newer) and "not emitted" in p)]
    assert problems == []


@checks("email_domains")
async def test_email_domains(nsd_factory: Any, tmp_path: Path) -> None:
    zone, _ = records(tmp_path)
    nsd = nsd_factory({"test.": zone_text("test.", zone)}, broken_zones=["servfail.test."])
    async with exporter(dns_config(nsd.port, DOMAINS)) as http:
        text = await scrape(http)
    assert_matches(page("email_domains"), text, prefixes=("email_dns_",))


@checks("http_probes")
async def test_http_probes(https_server: HttpsServer) -> None:
    async with exporter(probes_for(https_server)) as http:
        text = await scrape(http)
    assert_matches(page("http_probes"), text, prefixes=("probe_",))


@checks("lago", "directus", "statuspages")
async def test_service_apis(directus: DirectusServer) -> None:
    text = await all_service_apis(directus)
    for key, prefix in (("lago", "lago_"), ("directus", "directus_"), ("statuspages", "statuspage_")):
        assert_matches(page(key), text, prefixes=(prefix, "stack_exporter_http_"))


@checks("ses", "resend", "sendgrid", "mailgun", "postmark")
async def test_email_providers() -> None:
    """One page for the five providers, against one exposition with all of them configured."""
    async with AsyncExitStack() as stack:
        ses = await stack.enter_async_context(FakeSes(KEY_ID, SECRET, REGION).running())
        resend = await stack.enter_async_context(FakeResend("re_ref-key-1").running())
        sg = await stack.enter_async_context(FakeSendgrid("sg-ref-key-2").running())
        mg = await stack.enter_async_context(FakeMailgun("mg-ref-key-3", "mg.example.com").running())
        pm = await stack.enter_async_context(FakePostmark("pm-ref-token-4").running())
        config: dict[str, Any] = {
            **ses_config(("mail", ses.url)),
            "resend": [{"name": "mail", "url": resend.url, "api_key": "re_ref-key-1", "requests_per_second": 100}],
            "sendgrid": [{"name": "mail", "url": sg.url, "api_key": "sg-ref-key-2"}],
            "mailgun": [{"name": "mail", "url": mg.url, "domain": "mg.example.com", "api_key": "mg-ref-key-3"}],
            "postmark": [{"name": "mail", "url": pm.url, "server_token": "pm-ref-token-4"}],
        }
        async with exporter(config) as client:
            text = await scrape(client)
    for provider in ("ses", "resend", "sendgrid", "mailgun", "postmark"):
        assert value(text, "email_provider_up", provider=provider) == 1, provider
    source_page = one_page("ses", "resend", "sendgrid", "mailgun", "postmark")
    # the webhooks' email_webhook_* rows are checked by tests/email_webhooks/test_ingest.py
    assert_matches(
        source_page, text, prefixes=("email_", "ses_", "resend_", "stack_exporter_http_"), exclude=("email_webhook_",)
    )
    assert promtool_check(text) == ""
