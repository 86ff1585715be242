"""AWS SES collector through aiobotocore against a fake speaking SES's and CloudWatch's wire formats."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from exporter.collectors.email import ses as ses_module
from tests.fakes.checks import assert_clean_error, assert_no_secret, capture, logged
from tests.fakes.common import Fault
from tests.fakes.ses import FakeSes
from tests.helpers import check_config, exporter, promtool_check, scrape, value, write_config

KEY_ID = "AKIAFAKESES000000001"
SECRET = "ses-secret-access-key-9f8e7d6c5b4a"
REGION = "eu-west-1"
ROOT = Path(__file__).resolve().parents[2]


def config(
    *targets: tuple[str, str], key_id: str = KEY_ID, secret: str = SECRET, timeout: str = "5s"
) -> dict[str, Any]:
    """One SES target per (name, url), both APIs served by the fake at url."""
    return {
        "ses": [
            {
                "name": name,
                "region": REGION,
                "endpoint_url": url,
                "cloudwatch_endpoint_url": url,
                "access_key_id": key_id,
                "secret_access_key": secret,
                "refresh_interval": "0s",
                "scrape_timeout": timeout,
            }
            for name, url in targets
        ]
    }


@asynccontextmanager
async def running(region: str = REGION) -> AsyncIterator[FakeSes]:
    async with FakeSes(KEY_ID, SECRET, region).running() as fake:
        yield fake  # type: ignore[misc]


async def test_quota_account_events_and_reputation() -> None:
    async with running() as fake, exporter(config(("mail", fake.url))) as client:
        text = await scrape(client)
    acct, quota = fake.account, fake.account["SendQuota"]
    assert value(text, "email_provider_up", provider="ses", target="mail") == 1
    assert value(text, "stack_exporter_collector_success", collector="ses") == 1
    assert value(text, "email_send_quota_max_24h", provider="ses") == quota["Max24HourSend"]
    assert value(text, "email_send_quota_sent_24h", provider="ses") == quota["SentLast24Hours"]
    assert value(text, "email_send_quota_max_rate_per_second", provider="ses") == quota["MaxSendRate"]
    assert value(text, "ses_account_sending_enabled") == float(acct["SendingEnabled"])
    assert value(text, "ses_account_production_access") == float(acct["ProductionAccessEnabled"])
    for status in ("healthy", "probation", "shutdown"):
        want = 1.0 if status == acct["EnforcementStatus"].lower() else 0.0
        assert value(text, "ses_account_enforcement_status", status=status) == want
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    today = [p for p in fake.points if p["Timestamp"] >= midnight]
    for event, key in (("requested", "DeliveryAttempts"), ("bounced", "Bounces"), ("complained", "Complaints")):
        assert value(text, "email_events_total", provider="ses", event=event) == sum(p[key] for p in today)
    assert value(text, "email_events_total", event="dropped") == sum(p["Rejects"] for p in today)
    assert value(text, "email_events_total", event="delivered") is None  # SES does not report it
    results = {r["Label"]: r for r in fake.reputation["MetricDataResults"]}
    for metric, label in (
        ("email_reputation_bounce_ratio", "Reputation.BounceRate"),
        ("email_reputation_complaint_ratio", "Reputation.ComplaintRate"),
    ):
        r = results[label]
        newest = r["Values"][r["Timestamps"].index(max(r["Timestamps"]))]
        assert value(text, metric, provider="ses") == pytest.approx(newest)
    asked = fake.metric_queries[0]["MetricDataQueries"]
    assert {q["MetricStat"]["Metric"]["MetricName"] for q in asked} == {
        "Reputation.BounceRate",
        "Reputation.ComplaintRate",
    }
    assert dict(fake.op_calls) == {"GetAccount": 1, "GetSendStatistics": 1, "GetMetricData": 1}
    assert promtool_check(text) == ""


async def test_events_follow_the_statistics() -> None:
    async with running() as fake, exporter(config(("mail", fake.url))) as client:
        first = await scrape(client)
        # a copy of the newest bucket (the current 15 minutes, so today even just after
        # midnight UTC, when the fixture's older buckets fall on yesterday)
        newest = max(fake.points, key=lambda p: p["Timestamp"])
        fake.points.append({**newest, "DeliveryAttempts": 40, "Bounces": 2})
        # a bucket from yesterday does not count today
        fake.points.append({**newest, "DeliveryAttempts": 1000, "Timestamp": datetime(2020, 1, 1, tzinfo=UTC)})
        second = await scrape(client)
    assert (
        value(second, "email_events_total", event="requested")
        == (value(first, "email_events_total", event="requested") or 0) + 40
    )
    assert (
        value(second, "email_events_total", event="bounced")
        == (value(first, "email_events_total", event="bounced") or 0) + 2
    )


async def test_no_reputation_datapoints_means_absent() -> None:
    async with running() as fake:
        for r in fake.reputation["MetricDataResults"]:
            r["Timestamps"], r["Values"] = [], []
        async with exporter(config(("mail", fake.url))) as client:
            text = await scrape(client)
    assert value(text, "stack_exporter_collector_success", collector="ses") == 1
    assert value(text, "email_reputation_bounce_ratio") is None
    assert value(text, "email_reputation_complaint_ratio") is None


@pytest.mark.parametrize(
    ("key_id", "secret", "region", "codes"),
    [
        (KEY_ID, "wrong-secret-key-0a1b2c", REGION, ("SignatureDoesNotMatch", "InvalidSignatureException")),
        ("AKIAUNKNOWNKEY000002", SECRET, REGION, ("InvalidClientTokenId", "UnrecognizedClientException")),
        (
            KEY_ID,
            SECRET,
            "us-east-1",
            ("SignatureDoesNotMatch", "InvalidSignatureException"),
        ),  # the fake lives in us-east-1: scope for the wrong region
    ],
    ids=["wrong-secret", "unknown-key", "wrong-region"],
)
async def test_rejected_credentials(
    key_id: str, secret: str, region: str, codes: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    capture(caplog)
    fake_region = "us-east-1" if region == "us-east-1" else REGION
    cfg = lambda url: config(("mail", url), key_id=key_id, secret=secret)  # noqa: E731
    async with running(region=fake_region) as fake, exporter(cfg(fake.url)) as client:
        text = await scrape(client)
    assert value(text, "email_provider_up", provider="ses") == 1  # AWS answered
    assert value(text, "stack_exporter_collector_success", collector="ses") == 0
    assert value(text, "stack_exporter_http_requests_total", code="403") is not None
    assert value(text, "email_send_quota_max_24h") is None
    err = assert_clean_error(caplog, "SES", "unauthorized", "403")
    assert any(code in err for code in codes), err  # v1/CloudWatch and v2 name the same rejection differently
    assert_no_secret(secret, text, logged(caplog))


async def test_throttling_backs_off(caplog: pytest.LogCaptureFixture) -> None:
    capture(caplog)
    async with running() as fake, exporter(config(("mail", fake.url))) as client:
        first = await scrape(client)
        fake.op_faults["GetAccount"] = Fault("throttle")
        limited = await scrape(client)
        calls = sum(fake.op_calls.values())
        for _ in range(3):
            again = await scrape(client)
        assert sum(fake.op_calls.values()) == calls, "requests sent during the backoff"
        assert fake.op_calls["GetAccount"] == 2  # botocore's own retries are off
    assert value(limited, "stack_exporter_http_requests_total", code="429") == 1
    until = value(limited, "stack_exporter_http_rate_limited_until_timestamp_seconds", target="mail")
    assert until is not None and time.time() + 50 < until < time.time() + 70  # no Retry-After from AWS: 60 s
    assert value(again, "email_send_quota_max_24h") == value(first, "email_send_quota_max_24h")
    assert value(again, "stack_exporter_collector_success", collector="ses") == 0
    assert_clean_error(caplog, "SES", "throttled")


async def test_v1_throttling_in_query_format(caplog: pytest.LogCaptureFixture) -> None:
    capture(caplog)
    async with running() as fake, exporter(config(("mail", fake.url))) as client:
        fake.op_faults["GetSendStatistics"] = Fault("throttle")
        text = await scrape(client)
    assert value(text, "email_provider_up", provider="ses") == 1
    assert value(text, "stack_exporter_http_requests_total", code="400") == 1
    assert_clean_error(caplog, "SES", "throttled (Throttling, HTTP 400)")


async def test_slow_target_fails_alone(caplog: pytest.LogCaptureFixture) -> None:
    capture(caplog)
    # the SDK's one-time import and model load (seconds on a loaded machine) is not what
    # this test is about: do it first, as the exporter's earlier scrapes would have
    await asyncio.to_thread(ses_module._prepared_session)
    async with running() as slow, running() as fast:
        slow.op_faults["GetSendStatistics"] = Fault("slow", seconds=5)
        async with exporter(config(("slow", slow.url), ("fast", fast.url), timeout="1s")) as client:
            started = time.monotonic()
            text = await scrape(client)
            assert time.monotonic() - started < 2.5
    assert value(text, "email_provider_up", target="slow") == 0
    assert value(text, "email_provider_up", target="fast") == 1
    assert value(text, "stack_exporter_collector_success", target="fast") == 1
    assert_clean_error(caplog, "SES", "GetSendStatistics", "deadline")


@pytest.mark.parametrize("op", ["GetAccount", "GetSendStatistics", "GetMetricData"])
@pytest.mark.parametrize(
    ("fault", "needle"),
    [(Fault("html"), "HTML instead of"), (Fault("truncated"), "invalid"), (Fault("huge"), "cap")],
    ids=["html", "truncated", "huge"],
)
async def test_bad_bodies(op: str, fault: Fault, needle: str, caplog: pytest.LogCaptureFixture) -> None:
    capture(caplog)
    async with running() as fake:
        fake.op_faults[op] = fault
        async with exporter(config(("mail", fake.url))) as client:
            text = await scrape(client)
    assert value(text, "email_provider_up", target="mail") == 1
    assert value(text, "stack_exporter_collector_success", target="mail") == 0
    assert_clean_error(caplog, "SES", op, needle)


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        (("SendQuota", "Max24HourSend"), "'Max24HourSend' missing"),
        (("EnforcementStatus",), "'EnforcementStatus' missing"),
    ],
)
async def test_missing_fields(path: tuple[str, ...], needle: str, caplog: pytest.LogCaptureFixture) -> None:
    capture(caplog)
    async with running() as fake:
        parent = fake.account
        for key in path[:-1]:
            parent = parent[key]
        del parent[path[-1]]
        async with exporter(config(("mail", fake.url))) as client:
            text = await scrape(client)
    assert value(text, "stack_exporter_collector_success", target="mail") == 0
    assert_clean_error(caplog, "SES", needle)


async def test_secrets_from_files(tmp_path: Path) -> None:
    (tmp_path / "key_id").write_text(KEY_ID + "\n")
    (tmp_path / "secret").write_text(SECRET + "\n")
    async with running() as fake:
        cfg = config(("mail", fake.url))
        (target,) = cfg["ses"]
        del target["access_key_id"], target["secret_access_key"]
        target.update(access_key_id_file="key_id", secret_access_key_file="secret")
        async with exporter(cfg, base_dir=tmp_path) as client:
            text = await scrape(client)
    assert value(text, "stack_exporter_collector_success", collector="ses") == 1
    assert SECRET not in text


def test_check_config_without_aiobotocore(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, {"ses": [{"name": "mail", "region": REGION}]})
    missing = check_config(cfg, hide_modules=("aiobotocore",))
    assert missing.returncode == 1
    assert "pip install 'stack-exporter[ses]'" in missing.stderr
    assert "ses[0]" in missing.stderr
    assert "Traceback" not in missing.stderr + missing.stdout
    installed = check_config(cfg)
    assert installed.returncode == 0, installed.stderr


def test_check_config_keys_come_in_pairs(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, {"ses": [{"name": "mail", "region": REGION, "access_key_id": KEY_ID}]})
    out = check_config(cfg)
    assert out.returncode == 1
    assert "ses[0].access_key_id: set both" in out.stderr


# The AWS SDK costs about a quarter of a second to import and more to read its JSON models;
# on the event loop that stalls every other collector of the first scrape after a start or
# a reload.  Which thread imports it is observable without timing anything.
_IMPORT_SPY = """
import asyncio, json, sys, threading

from tests.collectors.test_ses import KEY_ID, SECRET, config
from tests.fakes.ses import FakeSes
from tests.helpers import exporter, scrape, value

assert "aiobotocore.session" not in sys.modules, "imported before the collector ran"
on_loop_thread = {}


class Spy:
    def find_spec(self, name, path=None, target=None):
        if name in ("aiobotocore.session", "botocore.session"):
            on_loop_thread[name] = threading.current_thread() is threading.main_thread()
        return None


sys.meta_path.insert(0, Spy())


async def main():
    async with FakeSes(KEY_ID, SECRET, "eu-west-1").running() as fake, exporter(config(("mail", fake.url))) as client:
        text = await scrape(client)
    print(json.dumps({"imports": on_loop_thread, "up": value(text, "email_provider_up", target="mail")}))


asyncio.run(main())
"""


def test_the_aws_sdk_is_imported_off_the_event_loop() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_SPY], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["up"] == 1
    assert seen["imports"] == {"aiobotocore.session": False, "botocore.session": False}
