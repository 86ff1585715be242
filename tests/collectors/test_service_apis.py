"""Every service API collector configured at once: one /metrics that promtool accepts."""

from __future__ import annotations

from contextlib import AsyncExitStack

from tests.fakes.email import FakeMailgun, FakePostmark, FakeSendgrid
from tests.fakes.lago import FakeLago
from tests.fakes.statuspage import FakeStatuspage
from tests.helpers import exporter, promtool_check, scrape, value
from tests.servers.directus import ADMIN_TOKEN, DirectusServer


async def test_all_service_apis_together(directus: DirectusServer) -> None:
    async with AsyncExitStack() as stack:
        lago = await stack.enter_async_context(FakeLago("lago-key-all-1").running())
        sg_page = await stack.enter_async_context(FakeStatuspage().running())
        mg_page = await stack.enter_async_context(FakeStatuspage().running())
        sg = await stack.enter_async_context(FakeSendgrid("sg-key-all-2").running())
        mg = await stack.enter_async_context(FakeMailgun("mg-key-all-3", "mg.example.com").running())
        pm = await stack.enter_async_context(FakePostmark("pm-token-all-4").running())
        cfg = f"""
        lago:
          - {{name: billing, url: "{lago.url}", api_key: lago-key-all-1}}
        directus:
          - {{name: cms, url: "{directus.url}", token: {ADMIN_TOKEN}, collections: [widgets]}}
        sendgrid:
          - {{name: mail, url: "{sg.url}", api_key: sg-key-all-2}}
        mailgun:
          - {{name: mail, url: "{mg.url}", domain: mg.example.com, api_key: mg-key-all-3}}
        postmark:
          - {{name: mail, url: "{pm.url}", server_token: pm-token-all-4}}
        statuspages:
          - {{name: sendgrid, url: "{sg_page.url}"}}
          - {{name: mailgun, url: "{mg_page.url}"}}
        """
        async with exporter(cfg) as client:
            text = await scrape(client)
    for collector in ("lago", "directus", "sendgrid", "mailgun", "postmark", "statuspages"):
        assert value(text, "stack_exporter_targets", collector=collector) is not None
    for s in [s for s in text.splitlines() if s.startswith("stack_exporter_collector_success{")]:
        assert s.endswith(" 1.0"), s
    assert promtool_check(text) == ""
