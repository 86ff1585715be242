"""AWS SES through aiobotocore (the optional extra ``stack-exporter[ses]``): quota, account, events, reputation.

Three signed calls per collection, run concurrently:

* SES v2 ``GetAccount``: the send quota, whether sending is enabled, the
  enforcement status (healthy, probation, shutdown) and sandbox or production;
* SES v1 ``GetSendStatistics``: 15-minute buckets of the last two weeks, summed
  from 00:00 UTC into ``email_events_total``;
* CloudWatch ``GetMetricData``: ``Reputation.BounceRate`` and
  ``Reputation.ComplaintRate`` (namespace AWS/SES, fractions already), the
  newest hourly average within ``reputation_lookback``::

    email_send_quota_max_24h{provider="ses"} 50000.0
    email_send_quota_sent_24h{provider="ses"} 1234.0
    email_events_total{provider="ses",event="requested"} 9.0
    email_reputation_bounce_ratio{provider="ses"} 0.0123
    ses_account_enforcement_status{status="healthy"} 1.0

botocore's own retries are off (one attempt per call): the shared HTTP layer's
rules apply instead: every call fits in the target's deadline, a throttle puts
the target in backoff and serves the last good result, bodies are capped.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import json
import logging
import time
from collections.abc import Iterable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from xml.etree import ElementTree

from multidict import CIMultiDict
from prometheus_client.core import GaugeMetricFamily, Metric

from exporter.collectors.api import (
    AuthError,
    HttpError,
    RateLimited,
    ShapeError,
    field,
    gather_all,
    list_field,
    number,
    number_field,
)
from exporter.collectors.base import DEADLINE_MARGIN, CollectError, Context, time_left
from exporter.collectors.email.common import BOUNCE_RATIO_HELP, COMPLAINT_RATIO_HELP, EmailCollector, day_start
from exporter.redact import url_without_userinfo
from exporter.schema import Duration, Secret, TargetConfig, check_url

INSTALL_HINT = "AWS SES needs the optional extra: pip install 'stack-exporter[ses]' (aiobotocore is not installed)"
ENFORCEMENT_STATUSES = ("healthy", "probation", "shutdown")
# GetSendStatistics field -> neutral event
EVENT_MAP = {"DeliveryAttempts": "requested", "Bounces": "bounced", "Complaints": "complained", "Rejects": "dropped"}
THROTTLE_CODES = frozenset(
    {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded", "LimitExceededException"}
)
AUTH_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "AccessDenied",
        "AccessDeniedException",
        "ExpiredToken",
        "ExpiredTokenException",
        "IncompleteSignature",
        "MissingAuthenticationToken",
    }
)
# botocore logs every request's signed headers and, at debug level, tracebacks for the failures
# this module turns into one clear error: keep them out of the exporter's log
for _name in ("botocore", "aiobotocore"):
    logging.getLogger(_name).setLevel(logging.WARNING)


def aiobotocore_installed() -> bool:
    return importlib.util.find_spec("aiobotocore") is not None


@dataclass(frozen=True, kw_only=True)
class SesTarget(TargetConfig):
    name: str
    region: str
    # both, or neither for the default credential chain (environment, shared files, instance role)
    access_key_id: Secret | None = None
    secret_access_key: Secret | None = None
    endpoint_url: str | None = None  # SES v1 and v2 (a VPC endpoint, a test fake)
    cloudwatch_endpoint_url: str | None = None
    reputation_lookback: Duration = Duration(24 * 3600.0)
    refresh_interval: Duration = Duration(300.0)

    def check(self) -> Iterable[tuple[str, str]]:
        if not aiobotocore_installed():
            yield "", INSTALL_HINT
        if (self.access_key_id is None) != (self.secret_access_key is None):
            yield "access_key_id", "set both access_key_id and secret_access_key, or neither (default credential chain)"
        if not self.region or not self.region.replace("-", "").isalnum():
            yield "region", "must be an AWS region such as us-east-1"
        for key in ("endpoint_url", "cloudwatch_endpoint_url"):
            url = getattr(self, key)
            if url is not None:
                yield from check_url(url, key=key, example="https://email.us-east-1.amazonaws.com")
        if not 3600 <= self.reputation_lookback <= 14 * 86400:
            yield "reputation_lookback", "must be between 1h and 14d"


class BodyError(Exception):
    """The capped transport refused a body (too large, HTML, not the protocol's format)."""


_AWS_MODULES = ("aiobotocore.config", "aiobotocore.httpsession", "aiobotocore.session", "botocore.exceptions")


def _import_aws() -> None:
    """Import the AWS SDK modules the collector uses (slow: run in a thread)."""
    for name in _AWS_MODULES:
        importlib.import_module(name)


def _load_models(session: Any, services: tuple[str, ...]) -> None:
    """Read botocore's endpoint data and the services' models into the session's caches."""
    from botocore.exceptions import DataNotFoundError  # type: ignore[import-untyped]

    loader = session.get_component("data_loader")
    for name in ("endpoints", "partitions", "sdk-default-configuration"):
        loader.load_data(name)
    for service in services:
        for kind in ("service-2", "endpoint-rule-set-1", "paginators-1", "waiters-2"):
            with contextlib.suppress(DataNotFoundError):  # not every service ships every kind
                loader.load_service_model(service, kind)


@cache
def _prepared_session() -> Any:
    """One botocore session with the SDK imported and the models read, for every SES target.

    Cached and run in a thread: a collection cancelled at its deadline while this runs
    does not lose the work, the next one finds it done (credentials go per client).
    """
    _import_aws()
    from aiobotocore.session import get_session  # type: ignore[import-untyped]

    session = get_session()
    _load_models(session, ("ses", "sesv2", "cloudwatch"))
    return session


@cache
def _session_class(cap: int) -> type[Any]:
    """aiobotocore's aiohttp session with the exporter's body cap and a sanity check of the format."""
    from aiobotocore.httpsession import AIOHTTPSession  # type: ignore[import-untyped]

    class CappedSession(AIOHTTPSession):  # type: ignore[misc]
        async def send(self, request: Any) -> Any:
            streaming = request.stream_output
            # read the body here, under the cap, instead of letting aiobotocore buffer all of it
            request.stream_output = True
            try:
                response = await super().send(request)
            finally:
                request.stream_output = streaming
            if streaming:
                return response
            raw = response.raw
            try:
                length = raw.content_length
                if length is not None and length > cap:
                    raise BodyError(f"the response is {length} bytes, over the {cap}-byte cap")
                buf = bytearray()
                async for chunk in raw.content.iter_chunked(64 * 1024):
                    buf += chunk
                    if len(buf) > cap:
                        raise BodyError(f"the response is over the {cap}-byte cap")
            finally:
                raw.release()
            response._content = bytes(buf)
            _check_format(response.status_code, response.headers, response._content)
            return response

    return CappedSession


def _check_format(status: int, headers: Mapping[str, str], body: bytes) -> None:
    ctype = headers.get("content-type", "").lower()
    head = body.lstrip()[:100].lower()
    if "html" in ctype or head.startswith((b"<!doctype html", b"<html")):
        raise BodyError(f"answered HTML instead of an AWS response (HTTP {status}, {ctype or 'no content type'})")
    if status != 200:
        return  # botocore reads AWS error bodies itself
    if "json" in ctype:
        try:
            json.loads(body)
        except ValueError as exc:
            raise BodyError(f"answered invalid JSON ({exc})") from None
    elif "xml" in ctype:
        try:
            ElementTree.fromstring(body)  # noqa: S314 - parsed by botocore right after; this only classifies
        except ElementTree.ParseError as exc:
            raise BodyError(f"answered invalid XML ({exc})") from None


class SesCollector(EmailCollector[SesTarget]):
    config_class = SesTarget
    provider = "SES"
    provider_label = "ses"

    def __init__(self, config: SesTarget, ctx: Context) -> None:
        super().__init__(config, ctx)
        self._stack: AsyncExitStack | None = None
        self._clients: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    def describe(self) -> str:
        return url_without_userinfo(self.config.endpoint_url) if self.config.endpoint_url else self.config.region

    async def close(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
        self._stack = None
        self._clients = {}

    async def _client(self, service: str) -> Any:
        async with self._lock:
            if not self._clients:
                await self._open()
        return self._clients[service]

    async def _open(self) -> None:
        if not aiobotocore_installed():
            raise CollectError(f"SES: {INSTALL_HINT}")
        # Importing aiobotocore and botocore takes a quarter of a second, and botocore then
        # reads its JSON models synchronously when the first client is made: both would
        # block the event loop, and with it every other collector of the scrape.  Both run
        # in a thread; the imports and the session's loader cache what they produce.
        session = await asyncio.to_thread(_prepared_session)
        from aiobotocore.config import AioConfig  # type: ignore[import-untyped]

        cfg = self.config
        aio_config = AioConfig(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=5,
            read_timeout=10,
            http_session_cls=_session_class(self.max_body_bytes),
            user_agent_extra="stack-exporter",
        )
        keys: dict[str, str] = {}
        if cfg.access_key_id is not None and cfg.secret_access_key is not None:
            keys = {"aws_access_key_id": cfg.access_key_id.get(), "aws_secret_access_key": cfg.secret_access_key.get()}
        stack = AsyncExitStack()
        try:
            for service, url in (
                ("ses", cfg.endpoint_url),
                ("sesv2", cfg.endpoint_url),
                ("cloudwatch", cfg.cloudwatch_endpoint_url),
            ):
                client = session.create_client(
                    service, region_name=cfg.region, endpoint_url=url, config=aio_config, **keys
                )
                self._clients[service] = await stack.enter_async_context(client)
        except Exception as exc:  # noqa: BLE001 - any failure to build a client is one clear error
            await stack.aclose()
            self._clients = {}
            raise CollectError(f"SES: cannot set up the AWS clients: {type(exc).__name__}: {exc}") from None
        self._stack = stack

    async def _call(self, service: str, op: str, method: str, **params: Any) -> Any:
        """One AWS call under the collection's deadline, its outcome counted as the HTTP layer counts.

        Long because it is one translation table: each of botocore's failure types
        becomes the same error the HTTP layer would raise for an aiohttp request
        (throttling -> backoff, rejected credentials, timeouts, garbage), and
        splitting it would scatter that table over helpers that each catch part.
        """
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
        )
        from botocore.parsers import ResponseParserError  # type: ignore[import-untyped]

        client = await self._client(service)
        wait = self.http.backoff_remaining()
        if wait > 0:
            raise RateLimited(
                f"SES: throttled, backing off for {wait:.0f}s more (no request sent)", self.http.rate_limited_until
            )
        left = time_left() - DEADLINE_MARGIN
        if left <= 0:
            raise HttpError(f"SES: no time left for {op} within the target's deadline")
        try:
            async with asyncio.timeout(left):
                result = await getattr(client, method)(**params)
        except TimeoutError:
            self.http.count("timeout")
            raise HttpError(f"SES: no answer to {op} within the target's deadline ({left:.3g}s left)") from None
        except ClientError as exc:
            meta = exc.response.get("ResponseMetadata", {})
            status = int(meta.get("HTTPStatusCode") or 0)
            self.http.count(str(status))
            error = exc.response.get("Error", {})
            code = str(error.get("Code") or status)
            if code in THROTTLE_CODES or status == 429:
                until = self.http.note_rate_limit(CIMultiDict(meta.get("HTTPHeaders", {})), 429)
                assert until is not None
                raise RateLimited(
                    f"SES: throttled ({code}, HTTP {status}) on {op};"
                    f" backing off for {max(0, until - time.time()):.0f}s",
                    until,
                ) from None
            if code in AUTH_CODES or status in (401, 403):
                # AWS's own message may quote the string it signed: only the code is repeated
                raise AuthError(
                    f"SES: unauthorized ({code}, HTTP {status}) on {op}: AWS answered but rejected the configured"
                    " credentials",
                    status,
                ) from None
            message = " ".join(str(error.get("Message", "")).split())[:120]
            raise HttpError(f"SES: {code} (HTTP {status}) on {op}: {message}", status) from None
        except BodyError as exc:
            self.http.count("200")
            raise ShapeError(f"SES: {op} {exc}") from None
        except ResponseParserError:
            self.http.count("200")
            raise ShapeError(f"SES: {op} answered a body that does not parse in its protocol's format") from None
        except NoCredentialsError:
            raise CollectError(
                "SES: no AWS credentials: set access_key_id and secret_access_key, or provide them to the default"
                " chain (AWS_ACCESS_KEY_ID, ~/.aws/credentials, an instance role)"
            ) from None
        except EndpointConnectionError as exc:
            self.http.count("error")
            raise HttpError(
                f"SES: cannot connect to {url_without_userinfo(str(exc.kwargs.get('endpoint_url')))}"
            ) from None
        except BotoCoreError as exc:
            self.http.count("error")
            raise HttpError(f"SES: {op} failed: {type(exc).__name__}") from None
        self.http.count("200")
        return result

    async def fetch_provider(self) -> list[Metric]:
        now = datetime.now(UTC)
        queries = [
            {
                "Id": qid,
                "MetricStat": {
                    "Metric": {"Namespace": "AWS/SES", "MetricName": name, "Dimensions": []},
                    "Period": 3600,
                    "Stat": "Average",
                },
                "ReturnData": True,
            }
            for qid, name in (("bounce", "Reputation.BounceRate"), ("complaint", "Reputation.ComplaintRate"))
        ]
        account, stats, reputation = await gather_all(
            self._call("sesv2", "GetAccount", "get_account"),
            self._call("ses", "GetSendStatistics", "get_send_statistics"),
            self._call(
                "cloudwatch",
                "GetMetricData",
                "get_metric_data",
                MetricDataQueries=queries,
                StartTime=now - timedelta(seconds=float(self.config.reputation_lookback)),
                EndTime=now,
                ScanBy="TimestampDescending",
            ),
        )
        return [
            *self._account(account),
            self.events(self._events(stats)),
            *self._reputation(reputation),
        ]

    def _account(self, account: Any) -> list[Metric]:
        p, where = self.provider, "GetAccount"
        quota = field(account, "SendQuota", p, where)
        out: list[Metric] = []
        for name, key, help_text in (
            (
                "email_send_quota_max_24h",
                "Max24HourSend",
                "Most emails the account may send in a rolling 24 hours (SES Max24HourSend; -1 means unlimited).",
            ),
            (
                "email_send_quota_sent_24h",
                "SentLast24Hours",
                "Emails sent in the rolling 24 hours the send quota counts (SES SentLast24Hours).",
            ),
            (
                "email_send_quota_max_rate_per_second",
                "MaxSendRate",
                "Most emails the account may send per second (SES MaxSendRate).",
            ),
        ):
            out.append(self.ratio(name, help_text, number_field(quota, key, p, f"{where} SendQuota")))
        for name, key, help_text in (
            ("ses_account_sending_enabled", "SendingEnabled", "1 if SES lets the account send email, 0 if paused."),
            (
                "ses_account_production_access",
                "ProductionAccessEnabled",
                "1 if the account is out of the SES sandbox, 0 if it may only send to verified addresses.",
            ),
        ):
            flag = field(account, key, p, where)
            if not isinstance(flag, bool):
                raise ShapeError(f"SES: field {key!r} is {json.dumps(flag)[:40]}, expected true or false")
            fam = GaugeMetricFamily(name, help_text)
            fam.add_metric([], 1.0 if flag else 0.0)
            out.append(fam)
        status = str(field(account, "EnforcementStatus", p, where)).lower()
        enforcement = GaugeMetricFamily(
            "ses_account_enforcement_status",
            "SES enforcement status of the account as a state set (healthy, probation, shutdown):"
            " 1 for the current one.",
            labels=["status"],
        )
        for state in (*ENFORCEMENT_STATUSES, *([status] if status not in ENFORCEMENT_STATUSES else [])):
            enforcement.add_metric([state], 1.0 if state == status else 0.0)
        out.append(enforcement)
        return out

    def _events(self, stats: Any) -> dict[str, float]:
        start = day_start()
        counts = dict.fromkeys(EVENT_MAP.values(), 0.0)
        for i, point in enumerate(list_field(stats, "SendDataPoints", self.provider, "GetSendStatistics")):
            when = field(point, "Timestamp", self.provider, f"GetSendStatistics SendDataPoints[{i}]")
            if not isinstance(when, datetime):
                raise ShapeError(f"SES: field 'Timestamp' of SendDataPoints[{i}] is not a timestamp")
            # buckets are stamped with their start: the day's first starts at 00:00 UTC
            if when < start:
                continue
            for key, event in EVENT_MAP.items():
                counts[event] += number(
                    field(point, key, self.provider, f"GetSendStatistics SendDataPoints[{i}]"), self.provider, key
                )
        return counts

    def _reputation(self, reputation: Any) -> list[Metric]:
        newest: dict[str, float] = {}
        for i, result in enumerate(list_field(reputation, "MetricDataResults", self.provider, "GetMetricData")):
            where = f"GetMetricData MetricDataResults[{i}]"
            times = list_field(result, "Timestamps", self.provider, where)
            values = list_field(result, "Values", self.provider, where)
            if values and len(times) == len(values):
                latest = max(range(len(times)), key=lambda j: times[j])
                newest[str(field(result, "Id", self.provider, where))] = number(values[latest], self.provider, "Values")
        # no datapoint in the lookback (nothing sent lately): absent rather than a made-up 0
        out: list[Metric] = []
        if "bounce" in newest:
            out.append(self.ratio("email_reputation_bounce_ratio", BOUNCE_RATIO_HELP, newest["bounce"]))
        if "complaint" in newest:
            out.append(self.ratio("email_reputation_complaint_ratio", COMPLAINT_RATIO_HELP, newest["complaint"]))
        return out


COLLECTOR = SesCollector
