"""Fake AWS SES (v1 query/XML, v2 REST-JSON) and CloudWatch (awsJson1.0) on one loopback port.

Bodies come from tests/fakes/api-fixtures/aws-ses, in the wire formats its
``*_wire_format.yaml`` files describe; send-statistics buckets and reputation
datapoints are re-dated to today so a collector asking for "today" finds them.

Every request's SigV4 ``Authorization`` header is verified the way AWS does:
the signature is recomputed from the canonical request with the fake's secret,
and an unknown key, a scope for another region/service, a skewed clock or a
wrong secret get AWS's error codes in each protocol's error format.

CloudWatch's model lists smithy-rpc-v2-cbor, json and query; botocore picks
json (``PRIORITY_ORDERED_SUPPORTED_PROTOCOLS``): ``POST /`` with ``X-Amz-Target``,
epoch-second timestamps and ``x-amzn-query-error`` on errors.  On AWS it has its
own host (monitoring.<region>.amazonaws.com); here the target header tells it
apart from SES v1's form posts.

Faults are injected per operation (``fake.op_faults["GetAccount"] = Fault(...)``)
because SES v1 puts every operation on ``POST /``.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote
from xml.sax.saxutils import escape

import yaml
from aiohttp import web

from tests.fakes.common import HUGE_BYTES, FakeServer, Fault, fixture, fixture_text

SES_NS = "http://ses.amazonaws.com/doc/2010-12-01/"
CW_TARGET = "GraniteServiceVersion20100801."
INVALID_TOKEN = "The security token included in the request is invalid."
BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access"
    " Key and signing method. Consult the service documentation for details."
)


class AwsError(Exception):
    def __init__(self, status: int, code: str, message: str, rest_code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code  # the query-protocol code (v1, CloudWatch's x-amzn-query-error)
        self.rest_code = rest_code or code  # the REST-JSON / CBOR __type
        self.message = message


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


class FakeSes(FakeServer):
    name = "aws-ses"

    def __init__(self, access_key_id: str, secret_access_key: str, region: str = "eu-west-1") -> None:
        super().__init__()
        self.keys = {access_key_id: secret_access_key}
        self.region = region
        self.op_calls: Counter[str] = Counter()
        self.op_faults: dict[str, Fault] = {}
        self.account: dict[str, Any] = copy.deepcopy(fixture("aws-ses", "v2_get_account.json"))
        self.quota: dict[str, Any] = copy.deepcopy(fixture("aws-ses", "v1_get_send_quota.json"))
        # the fixture's buckets keep their spacing; the newest lands in the current 15-minute bucket
        points = copy.deepcopy(fixture("aws-ses", "v1_get_send_statistics.json")["SendDataPoints"])
        newest = max(datetime.fromisoformat(p["Timestamp"].replace("Z", "+00:00")) for p in points)
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        bucket = now.replace(minute=now.minute - now.minute % 15)
        for p in points:
            when = datetime.fromisoformat(p["Timestamp"].replace("Z", "+00:00"))
            p["Timestamp"] = bucket - (newest - when)
        self.points: list[dict[str, Any]] = points
        cw = yaml.safe_load(fixture_text("aws-ses", "cloudwatch_reputation_query.yaml"))
        self.reputation: dict[str, Any] = cw["GetMetricData"]["response"]
        # hourly datapoints ending in the current hour
        hour = now.replace(minute=0)
        for result in self.reputation["MetricDataResults"]:
            result["Timestamps"] = [hour - timedelta(hours=i) for i in range(len(result["Values"]))]
        self.metric_queries: list[Any] = []

    # ------------------------------------------------------------------ routing

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/", self.post_root)
        app.router.add_get("/v2/email/account", self.v2_account)

    async def post_root(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        target = request.headers.get("X-Amz-Target")
        if target is not None:
            return await self.cloudwatch(request, body, target)
        form = dict(parse_qsl(body.decode()))
        op = form.get("Action", "")
        handlers = {"GetSendStatistics": self._send_statistics, "GetSendQuota": self._send_quota}
        return await self._serve(request, body, "ses", "query", op, lambda: handlers[op]() if op in handlers else None)

    async def v2_account(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, await request.read(), "ses", "rest-json", "GetAccount", self._get_account)

    async def cloudwatch(self, request: web.Request, body: bytes, target: str) -> web.StreamResponse:
        op = target.removeprefix(CW_TARGET)
        if not target.startswith(CW_TARGET) or "x-amz-json-1.0" not in request.headers.get("Content-Type", ""):
            return web.json_response({"__type": "UnknownOperationException"}, status=400)
        handlers = {"GetMetricData": lambda: self._get_metric_data(body)}
        return await self._serve(request, body, "monitoring", "json", op, handlers.get(op, lambda: None))

    async def _serve(
        self, request: web.Request, body: bytes, service: str, proto: str, op: str, handle: Any
    ) -> web.StreamResponse:
        self.op_calls[op] += 1
        try:
            self.verify_sigv4(request, body, service)
            fault = self.op_faults.get(op)
            if fault is not None and fault.kind == "slow":
                await asyncio.sleep(fault.seconds)
            if fault is not None and fault.kind == "throttle":
                if proto == "rest-json":
                    raise AwsError(429, "TooManyRequestsException", "Too Many Requests")
                raise AwsError(400, "Throttling", "Rate exceeded", "ThrottlingException")
            if fault is not None and fault.kind == "html":
                page = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
                return web.Response(
                    text=page, content_type="text/html", status=fault.status if fault.status != 500 else 200
                )
            result = handle()
            if result is None:
                raise AwsError(400, "InvalidAction", f"Could not find operation {op}", "UnknownOperationException")
        except AwsError as exc:
            return self._error(proto, exc)
        resp = self._success(proto, op, result)
        if fault is not None and fault.kind == "truncated":
            raw = bytes(resp.body)  # type: ignore[arg-type]
            return web.Response(body=raw[: len(raw) // 2], headers={"Content-Type": resp.headers["Content-Type"]})
        if fault is not None and fault.kind == "huge":
            filler = b'{"padding": "' + b"x" * HUGE_BYTES + b'"}'
            return web.Response(body=filler, headers={"Content-Type": resp.headers["Content-Type"]})
        return resp

    # ------------------------------------------------------------------ SigV4

    def verify_sigv4(self, request: web.Request, body: bytes, service: str) -> None:
        auth = request.headers.get("Authorization", "")
        if not auth:
            raise AwsError(403, "MissingAuthenticationToken", "Request is missing Authentication Token")
        algo, _, rest = auth.partition(" ")
        parts = dict(p.strip().split("=", 1) for p in rest.split(",") if "=" in p)
        if algo != "AWS4-HMAC-SHA256" or not {"Credential", "SignedHeaders", "Signature"} <= parts.keys():
            raise AwsError(
                400,
                "IncompleteSignature",
                f"Authorization header requires 'Credential', 'Signature' and 'SignedHeaders'. Authorization={algo}",
            )
        scope = parts["Credential"].split("/")
        if len(scope) != 5 or scope[4] != "aws4_request":
            raise AwsError(400, "IncompleteSignature", "Credential must have exactly 5 slash-delimited elements")
        key_id, day, region, svc, _ = scope
        secret = self.keys.get(key_id)
        if secret is None:
            raise AwsError(403, "InvalidClientTokenId", INVALID_TOKEN, "UnrecognizedClientException")
        if region != self.region:
            raise AwsError(
                403,
                "SignatureDoesNotMatch",
                f"Credential should be scoped to a valid region, not '{region}'.",
                "InvalidSignatureException",
            )
        if svc != service:
            raise AwsError(
                403,
                "SignatureDoesNotMatch",
                f"Credential should be scoped to correct service: '{service}'.",
                "InvalidSignatureException",
            )
        amz_date = request.headers.get("X-Amz-Date", "")
        try:
            when = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            raise AwsError(400, "IncompleteSignature", "Missing or invalid X-Amz-Date") from None
        if abs((datetime.now(UTC) - when).total_seconds()) > 300 or amz_date[:8] != day:
            raise AwsError(
                403,
                "SignatureDoesNotMatch",
                "Signature expired or date outside the credential scope",
                "InvalidSignatureException",
            )
        signed = parts["SignedHeaders"].split(";")
        if "host" not in signed:
            raise AwsError(403, "SignatureDoesNotMatch", "'Host' must be a signed header", "InvalidSignatureException")
        canonical_headers = "".join(f"{h}:{' '.join(request.headers.get(h, '').split())}\n" for h in signed)
        query = "&".join(
            f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
            for k, v in sorted(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))
        )
        canonical = "\n".join(
            [
                request.method,
                quote(request.rel_url.raw_path, safe="/~"),
                query,
                canonical_headers,
                parts["SignedHeaders"],
                hashlib.sha256(body).hexdigest(),
            ]
        )
        credential_scope = "/".join(scope[1:])  # the scope signed leaves the key id out
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", amz_date, credential_scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret}".encode(), day), region), svc), "aws4_request")
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, parts["Signature"]):
            raise AwsError(403, "SignatureDoesNotMatch", BAD_SIGNATURE, "InvalidSignatureException")

    # ------------------------------------------------------------------ operations

    def _send_statistics(self) -> str:
        members = "".join(
            "<member>"
            + "".join(f"<{k}>{v}</{k}>" for k, v in p.items() if k != "Timestamp")
            + f"<Timestamp>{p['Timestamp'].strftime('%Y-%m-%dT%H:%M:%SZ')}</Timestamp></member>"
            for p in self.points
        )
        return f"<SendDataPoints>{members}</SendDataPoints>"

    def _send_quota(self) -> str:
        return "".join(f"<{k}>{float(v)}</{k}>" for k, v in self.quota.items())

    def _get_account(self) -> dict[str, Any]:
        return self.account

    def _get_metric_data(self, body: bytes) -> dict[str, Any]:
        try:
            request = json.loads(body)
        except ValueError as exc:
            raise AwsError(400, "SerializationException", f"cannot decode JSON: {exc}") from None
        queries = request.get("MetricDataQueries") or []
        for key in ("StartTime", "EndTime"):
            if not isinstance(request.get(key), int | float):
                raise AwsError(
                    400, "MissingParameter", f"The parameter {key} is required.", "MissingRequiredParameterException"
                )
            request[key] = datetime.fromtimestamp(request[key], UTC)
        self.metric_queries.append(request)
        results = []
        for q in queries:
            metric = q["MetricStat"]["Metric"]
            for r in self.reputation["MetricDataResults"]:
                if (
                    metric["Namespace"] == "AWS/SES"
                    and metric["MetricName"] == r["Label"]
                    and not metric.get("Dimensions")
                ):
                    pairs = [
                        (t, v)
                        for t, v in zip(r["Timestamps"], r["Values"], strict=True)
                        if request["StartTime"] <= t < request["EndTime"]
                    ]
                    results.append(
                        {
                            "Id": q["Id"],
                            "Label": r["Label"],
                            "Timestamps": [t for t, _ in pairs],
                            "Values": [float(v) for _, v in pairs],
                            "StatusCode": "Complete",
                        }
                    )
                    break
            else:
                results.append(
                    {
                        "Id": q["Id"],
                        "Label": metric["MetricName"],
                        "Timestamps": [],
                        "Values": [],
                        "StatusCode": "Complete",
                    }
                )
        return {"MetricDataResults": results, "Messages": []}

    # ------------------------------------------------------------------ wire formats

    def _success(self, proto: str, op: str, result: Any) -> web.Response:
        request_id = str(uuid.uuid4())
        if proto == "query":
            xml = (
                f'<{op}Response xmlns="{SES_NS}"><{op}Result>{result}</{op}Result>'
                f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{op}Response>"
            )
            return web.Response(body=xml.encode(), headers={"Content-Type": "text/xml", "x-amzn-RequestId": request_id})
        if proto == "rest-json":
            return web.Response(
                body=json.dumps(result).encode(),
                headers={"Content-Type": "application/json", "x-amzn-RequestId": request_id},
            )
        return web.Response(
            body=json.dumps(result, default=lambda t: t.timestamp()).encode(),  # epoch seconds
            headers={"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": request_id},
        )

    def _error(self, proto: str, exc: AwsError) -> web.Response:
        request_id = str(uuid.uuid4())
        if proto == "query":
            kind = "Receiver" if exc.status >= 500 else "Sender"
            xml = (
                f'<ErrorResponse xmlns="{SES_NS}"><Error><Type>{kind}</Type><Code>{exc.code}</Code>'
                f"<Message>{escape(exc.message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
            )
            return web.Response(status=exc.status, body=xml.encode(), headers={"Content-Type": "text/xml"})
        if proto == "rest-json":
            return web.Response(
                status=exc.status,
                body=json.dumps({"message": exc.message}).encode(),
                headers={
                    "Content-Type": "application/json",
                    "x-amzn-ErrorType": f"{exc.rest_code}:http://internal.amazon.com/coral/com.amazon.coral.service/",
                    "x-amzn-RequestId": request_id,
                },
            )
        return web.Response(
            status=exc.status,
            body=json.dumps({"__type": f"com.amazon.coral.service#{exc.rest_code}", "message": exc.message}).encode(),
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                # CloudWatch is awsQueryCompatible: the old query code rides along
                "x-amzn-query-error": f"{exc.code};{'Receiver' if exc.status >= 500 else 'Sender'}",
                "x-amzn-RequestId": request_id,
            },
        )
