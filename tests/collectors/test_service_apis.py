"""Every service API collector configured at once: one /metrics that promtool accepts."""

from __future__ import annotations

from contextlib import AsyncExitStack

from tests.fakes.email import FakeMailgun, FakePostmark, FakeSendgrid
from tests.fakes.lago import FakeLago
from tests.fakes.resend import FakeResend
from tests.fakes.ses import FakeSes
from tests.fakes.statuspage import FakeStatuspage
from tests.helpers import exporter, promtool_check, scrape, value
from tests.servers.directus import ADMIN_TOKEN, DirectusServer


async def all_service_apis(directus: DirectusServer) -> str:
    """One scrape with every service API configured: fakes, and the real Directus."""
    async with AsyncExitStack() as stack:
        lago = await stack.enter_async_context(FakeLago("lago-key-all-1").running())
        sg_page = await stack.enter_async_context(FakeStatuspage().running())
        mg_page = await stack.enter_async_context(FakeStatuspage().running())
        sg = await stack.enter_async_context(FakeSendgrid("sg-key-all-2").running())
        mg = await stack.enter_async_context(FakeMailgun("mg-key-all-3", "mg.example.com").running())
        pm = await stack.enter_async_context(FakePostmark("pm-token-all-4").running())
        rs = await stack.enter_async_context(FakeResend("re_key-all-5").running())
        ses = await stack.enter_async_context(FakeSes("AKIAALLSOURCES000006", "ses-secret-all-6").running())
        cfg = {
            "lago": [{"name": "billing", "url": lago.url, "api_key": "lago-key-all-1"}],
            "directus": [{"name": "cms", "url": directus.url, "token": ADMIN_TOKEN, "collections": ["widgets"]}],
            "sendgrid": [{"name": "mail", "url": sg.url, "api_key": "sg-key-all-2"}],
            "mailgun": [{"name": "mail", "url": mg.url, "domain": "mg.example.com", "api_key": "mg-key-all-3"}],
            "postmark": [{"name": "mail", "url": pm.url, "server_token": "pm-token-all-4"}],
            "resend": [{"name": "mail", "url": rs.url, "api_key": "re_key-all-5", "requests_per_second": 100}],
            "ses": [
                {
                    "name": "mail",
                    "region": "eu-west-1",
                    "endpoint_url": ses.url,
                    "cloudwatch_endpoint_url": ses.url,
                    "access_key_id": "AKIAALLSOURCES000006",
                    "secret_access_key": "ses-secret-all-6",
                }
            ],
            "statuspages": [{"name": "sendgrid", "url": sg_page.url}, {"name": "mailgun", "url": mg_page.url}],
        }
        async with exporter(cfg) as client:
            return await scrape(client)


async def test_all_service_apis_together(directus: DirectusServer) -> None:
    text = await all_service_apis(directus)
    for collector in ("lago", "directus", "sendgrid", "mailgun", "postmark", "resend", "ses", "statuspages"):
        assert value(text, "stack_exporter_targets", collector=collector) is not None
    for s in [s for s in text.splitlines() if s.startswith("stack_exporter_collector_success{")]:
        assert s.endswith(" 1.0"), s
    assert promtool_check(text) == ""
