"""The bridge in the real exporter process: its own listen address, and secrets kept out of everything it says."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from peers.process import free_port, port_is_open
from tests.bridge.test_bridge import CACHE, TOKEN, alert, bridge_section, payload
from tests.fakes.statuspage_api import FakeStatusPageAPI
from tests.helpers import ROOT, value, write_config

pytestmark = pytest.mark.timeout(60)


async def wait_for_port(port: int, proc: asyncio.subprocess.Process, log: Path) -> None:
    deadline = time.monotonic() + 15
    while not port_is_open("127.0.0.1", port):
        assert proc.returncode is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        await asyncio.sleep(0.1)


async def test_own_listen_address_and_no_secret_in_metrics_logs_or_answers(tmp_path: Path) -> None:
    main_port, bridge_port = free_port(), free_port()
    async with FakeStatusPageAPI("statuspage", components=[CACHE, "cmp-api"]) as page:
        section = bridge_section(page, tmp_path, listen_address=f"127.0.0.1:{bridge_port}")
        config = write_config(tmp_path, {"statuspage_bridge": section})
        log = tmp_path / "exporter.log"
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "exporter", "--config.file", str(config),
                "--web.listen-address", f"127.0.0.1:{main_port}", "--log.level", "debug",
                cwd=ROOT, stdout=out, stderr=out,
            )  # fmt: skip
        try:
            await wait_for_port(main_port, proc, log)
            await wait_for_port(bridge_port, proc, log)
            answers: list[str] = []
            async with aiohttp.ClientSession() as http:

                async def post(port: int, token: str, body: bytes) -> int:
                    url = f"http://127.0.0.1:{port}/bridge/alertmanager"
                    async with http.post(url, data=body, headers={"Authorization": f"Bearer {token}"}) as resp:
                        answers.append(await resp.text())
                        return resp.status

                firing = alert("RedisDown", instance="10.1.2.3:6379")
                down = payload(firing)
                # the webhook is on its own address only
                assert await post(main_port, TOKEN, down) == 404
                assert await post(bridge_port, TOKEN[:-1], down) == 401
                assert await post(bridge_port, TOKEN, b"{") == 400
                # the page refuses the first update (as with a revoked key): logged, not retried
                page.fail_next(401)
                assert await post(bridge_port, TOKEN, down) == 200
                await asyncio.sleep(0.5)
                assert page.status_of(CACHE) == "operational"
                # a new status is tried again and goes through
                slow = payload(alert("RedisSlow", severity="warning"), {**firing, "status": "resolved"})
                assert await post(bridge_port, TOKEN, slow) == 200
                deadline = time.monotonic() + 5
                while page.status_of(CACHE) != "degraded_performance":
                    assert time.monotonic() < deadline, log.read_text()
                    await asyncio.sleep(0.05)
                async with http.get(f"http://127.0.0.1:{bridge_port}/metrics") as resp:
                    assert resp.status == 404  # /metrics stays on the exporter's address
                async with http.get(f"http://127.0.0.1:{main_port}/metrics") as resp:
                    metrics = await resp.text()
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(proc.wait(), 10)
    text = log.read_text()
    assert value(metrics, "stack_exporter_bridge_notifications_total", outcome="unauthorized") == 1
    assert value(metrics, "stack_exporter_bridge_component_status", component="Cache", status="degraded_performance")
    assert "status page refused the update" in text
    assert "webhook notification rejected" in text
    assert "Traceback" not in text
    for blob in (metrics, text, *answers):
        assert TOKEN not in blob
        assert page.api_key not in blob
    # what reached the page never carried the alert's address
    assert all("10.1.2.3" not in str(r.json) for r in page.requests)
