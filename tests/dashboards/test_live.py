"""Every dashboard query against a real Prometheus scraping the real stack.

One module-scoped stack: Redis (a standalone with maxmemory and key groups, a
primary/replica pair watched by a Sentinel, a cluster), PostgreSQL (a primary with
a replication slot and a streaming replica) behind PgBouncer, an HTTPS endpoint for
the probes (one with check_cache), NSD serving a sending domain's SPF/DKIM/DMARC, fakes
of the internet APIs (Lago, Postmark, Resend, a status page), stack-exporter itself (its RUM
endpoint fed browser beacons and its email webhook endpoint fed signed Postmark events
throughout), node_exporter, and Prometheus 2.42 with the
generated rule files loaded and a 1 s scrape interval.
Each panel query runs as an instant query with the template variables at "All"; it
must succeed, and it must return data unless NO_DATA_OK says why it cannot here.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import yaml

from peers.process import LOOPBACK, Process, free_port, wait_for_port, wait_until
from tests.dashboards.common import ROOT, RULES_GENERATED, Panel, all_panels, metric_names, substitute
from tests.fakes.common import FakeServer
from tests.fakes.email import FakePostmark
from tests.fakes.email_webhooks import postmark as postmark_webhook
from tests.fakes.lago import FakeLago
from tests.fakes.resend import FakeResend
from tests.fakes.statuspage import FakeStatuspage
from tests.servers.https import HttpsServer
from tests.servers.nsd import NsdServer, txt, zone_text
from tests.servers.postgres import (
    MONITOR_PASSWORD,
    PgBouncer,
    PgReplication,
    PostgresServer,
    _base,
    wait_replica_caught_up,
)
from tests.servers.redis import RedisCluster, RedisSentinelSetup, RedisServer

pytestmark = pytest.mark.timeout(180)

PROMETHEUS = "/usr/bin/prometheus"
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
STACK_EXPORTER = ROOT / ".venv" / "bin" / "stack-exporter"
LAGO_KEY = "lago-dash-key-0f1e"
POSTMARK_TOKEN = "postmark-dash-token-9a8b"
RESEND_KEY = "re_dash_key_5c6d"
# Scrapes to wait for: rate() over the 10 s that $__rate_interval becomes needs two.
SCRAPES = 12
RUM_ORIGIN = "https://shop.test"
# What a phone and a laptop send: their User-Agents pick the device label.
RUM_AGENTS = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
)

# The exporter's email webhook endpoint (email_webhooks:) on the RUM listener: Postmark posts
# with HTTP basic auth (the credentials are in the webhook URL set up at Postmark).
WEBHOOK_SENDER = postmark_webhook.PostmarkSender()
WEBHOOK_USER = WEBHOOK_SENDER.username
WEBHOOK_PASSWORD = WEBHOOK_SENDER.password
# Email types by Postmark Tag; "newsletter" stays under ratioMinRequests (no ratio recorded).
WEBHOOK_TYPES = {"receipt": "receipt", "newsletter": "newsletter"}
# Delivered and bounced receipts posted at once: above ratioMinRequests (100), so the per-type
# ratios are recorded.
WEBHOOK_BURST = 110

APP = "no application is scraped in this test (the app job's recording rules stay empty)"
OFFSET = "compares with data hours or days old, which a fresh Prometheus does not have"
# AWS SES is not in this stack: creating its botocore clients holds the exporter's event loop
# long enough that, with 1 s scrapes, Lago's collection misses its deadline.  The SES series
# are checked against a fake in tests/collectors/test_ses.py.
SES = "no AWS SES account in this stack (botocore's client set-up stalls the other collectors' 0.8 s deadlines)"
SES_PANELS = ("SES sending", "SES enforcement status", "SES production access", "Send quota used (24h)")
RATIO = (
    "the email ratios are recorded only with enough emails requested in the window (ratioMinRequests,"
    " openMinRequests), and the fakes' daily counters do not grow during the test"
)
NO_DIRECTUS = "the live stack runs no Directus (tests/collectors/test_directus.py scrapes a real one)"
BRIDGE = (
    "the live stack runs no status-page bridge; tests/bridge and the end-to-end pipeline test"
    " check its series against a real Alertmanager and a fake page"
)
BRIDGE_PANELS = ("Public components", "Time since last sync", "Notifications received", "Status-page API calls")
# (dashboard uid, panel title) -> why it may be empty here; None: every query of the panel,
# else only queries whose expression contains the given text.
NO_DATA_OK: dict[tuple[str, str], tuple[str, str | None]] = {
    ("stack-overview", "Error ratio (5xx)"): (APP, None),
    ("stack-overview", "Latency p50 / p95 / p99"): (APP, None),
    ("stack-overview", "Requests per second by status"): (APP, None),
    ("stack-overview", "Service state"): (NO_DIRECTUS, "directus_up"),
    ("stack-billing", "New failed payments (1h)"): (OFFSET, None),
    ("stack-email", "Delivered per email type (1h), now and 1d earlier"): (OFFSET, "offset 1d"),
    ("stack-billing", "Overdue balance growth (1d)"): (OFFSET, None),
    ("stack-billing", "Terminations per day against baseline"): (OFFSET, None),
    ("stack-email", "Delivered / requested (1h)"): (
        "the fakes' daily counters do not move, so no email is requested in the window",
        None,
    ),
    ("stack-email", "Bounce ratio"): (RATIO, "_per_requested:"),
    ("stack-email", "Complaint ratio"): (RATIO, "_per_requested:"),
    ("stack-email", "Open rate (1d)"): (RATIO, None),
    ("stack-email", "Click rate (1d)"): (RATIO, None),
    ("stack-postgres", "Slowest statements (mean time per call)"): (
        "the exporter leaves its own statements out of pg_stat_statements, and nothing else queries here",
        None,
    ),
    **{("stack-email", title): (SES, None) for title in SES_PANELS},
    **{("stack-exporter", title): (BRIDGE, None) for title in BRIDGE_PANELS},
}
# Metrics a panel may reference that nothing in this test emits.
NOT_EMITTED_OK = {
    "directus_up": NO_DIRECTUS,
    **dict.fromkeys(
        (
            "stack_exporter_bridge_sync_pending",
            "stack_exporter_bridge_component_status",
            "stack_exporter_bridge_last_sync_success_timestamp_seconds",
            "stack_exporter_bridge_notifications_total",
            "stack_exporter_bridge_api_calls_total",
        ),
        BRIDGE,
    ),
    **dict.fromkeys(
        (
            "ses_account_sending_enabled",
            "ses_account_enforcement_status",
            "ses_account_production_access",
            "email_send_quota_sent_24h",
            "email_send_quota_max_24h",
        ),
        SES,
    ),
}


class _FakeApis:
    """The fake HTTP APIs, served from a thread with its own event loop."""

    def __init__(self, fakes: list[FakeServer]) -> None:
        self.fakes = fakes
        self.loop = asyncio.new_event_loop()
        self.stack = AsyncExitStack()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fake-apis", daemon=True)

    def __enter__(self) -> _FakeApis:
        self.thread.start()

        async def start() -> None:
            for fake in self.fakes:
                await self.stack.enter_async_context(fake.running())

        asyncio.run_coroutine_threadsafe(start(), self.loop).result(30)
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        asyncio.run_coroutine_threadsafe(self.stack.aclose(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def _dkim_key(tmp: Path) -> str:
    key = tmp / "dkim.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key)],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    der = subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True, timeout=30).stdout  # fmt: skip
    return base64.b64encode(der).decode()


def _zone(tmp: Path) -> dict[str, str]:
    records = [
        f"shop IN TXT {txt('v=spf1 ip4:192.0.2.0/24 -all')}",
        "shop IN MX 10 mx.shop.test.",
        "mx.shop IN A 192.0.2.10",
        f"s1._domainkey.shop IN TXT {txt('v=DKIM1; k=rsa; p=' + _dkim_key(tmp))}",
        f"_dmarc.shop IN TXT {txt('v=DMARC1; p=none; rua=mailto:dmarc@shop.test')}",
    ]
    return {"test.": zone_text("test.", records)}


def _get(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as resp:
            return resp.status == 200
    except urllib.error.HTTPError as exc:  # 503 while starting up
        exc.close()
        return False


def _beacon(page: str, round_: int) -> bytes:
    """A page view's beacon with every metric, an error and a failed API call; the values
    move between rounds, so each metric has good, middling and poor reports."""
    lcp, inp, cls, fcp, ttfb, load = ((1200, 120, 0.05, 900, 300, 1500), (2950, 350, 0.15, 2100, 1000, 3100),
                                      (5200, 700, 0.4, 3500, 2100, 8000))[round_ % 3]  # fmt: skip
    metrics = {"LCP": lcp, "INP": inp, "CLS": cls, "FCP": fcp, "TTFB": ttfb, "load": load}
    return json.dumps(
        {
            "v": 1,
            "page": page,
            "view": True,
            "metrics": [{"name": n, "value": v, "navigation_type": "navigate"} for n, v in metrics.items()],
            "errors": {"error": 1, "unhandledrejection": round_ % 2},
            "api": {"4xx": 0, "5xx": 1, "network": round_ % 2},
        }
    ).encode()


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST from a thread (the feeders run beside the event loop); the status, also of a refusal."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        with exc:
            return int(exc.code)


def _post_beacon(url: str, body: bytes, agent: str) -> int:
    return _post(url, body, {"Origin": RUM_ORIGIN, "Content-Type": "text/plain;charset=UTF-8", "User-Agent": agent})


class _BeaconFeeder:
    """Browsers visiting two pages from a phone and a laptop, every second for as long
    as the stack runs: the panels rate over 10 s windows, so beacons must keep coming."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="rum-beacons", daemon=True)

    def send_round(self, round_: int) -> list[int]:
        return [
            _post_beacon(self.url, _beacon(page, round_), agent)
            for page in ("/", "/product/42")
            for agent in RUM_AGENTS
        ]

    def _run(self) -> None:
        round_ = 1
        while not self.stop.wait(1.0):
            try:
                self.send_round(round_)
            except OSError:  # the exporter is stopping
                return
            round_ += 1

    def __enter__(self) -> _BeaconFeeder:
        statuses = self.send_round(0)
        assert statuses == [204] * len(statuses), f"the RUM endpoint refused the test's beacons: {statuses}"
        self.thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop.set()
        self.thread.join(10)


def _postmark_event(neutral: str, tag: str) -> bytes:
    """One Postmark webhook body counted as ``neutral`` (tests/fakes/email_webhooks/postmark.py:
    real-shaped, from the saved payloads, each with its own MessageID and so its own request key)."""
    return postmark_webhook.encode(postmark_webhook.example(neutral, tags=(tag,)))


def _post_webhook(url: str, body: bytes, password: str = WEBHOOK_PASSWORD) -> int:
    headers, body = WEBHOOK_SENDER.sign(body, password=password)
    return _post(url, body, headers)


class _WebhookFeeder:
    """Postmark posting events of two email types to the exporter's webhook endpoint: one
    of each kind the panels show at the start, a delivered receipt every second after that
    (the panels rate over 10 s windows), and `burst()` enough receipts for the ratios."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="email-webhooks", daemon=True)

    def post(self, neutral: str, tag: str) -> int:
        return _post_webhook(self.url, _postmark_event(neutral, tag))

    def burst(self) -> None:
        statuses = [self.post("delivered", WEBHOOK_TYPES["receipt"]) for _ in range(WEBHOOK_BURST)]
        statuses += [self.post("bounced", WEBHOOK_TYPES["receipt"]) for _ in range(3)]
        assert set(statuses) == {200}, f"the webhook endpoint refused the test's events: {sorted(set(statuses))}"

    def _run(self) -> None:
        while not self.stop.wait(1.0):
            try:
                self.post("delivered", WEBHOOK_TYPES["receipt"])
            except OSError:  # the exporter is stopping
                return

    def __enter__(self) -> _WebhookFeeder:
        # every series the row reads, created before Prometheus scrapes: a counter that
        # first appears at its final value has no increase() in a fresh Prometheus
        receipt = _postmark_event("delivered", WEBHOOK_TYPES["receipt"])
        statuses = {
            "delivered": _post_webhook(self.url, receipt),
            "replayed": _post_webhook(self.url, receipt),  # a retry: counted as a duplicate
            "bounced": self.post("bounced", WEBHOOK_TYPES["receipt"]),
            "complained": self.post("complained", WEBHOOK_TYPES["receipt"]),
            "newsletter": self.post("delivered", WEBHOOK_TYPES["newsletter"]),
        }
        # a reactivation is no unsubscribe: ignored
        reactivation = postmark_webhook.payload("SubscriptionChange", tags=(WEBHOOK_TYPES["receipt"],), suppress=False)
        statuses["ignored"] = _post_webhook(self.url, postmark_webhook.encode(reactivation))
        assert set(statuses.values()) == {200}, f"the webhook endpoint refused the test's events: {statuses}"
        refused = _post_webhook(self.url, _postmark_event("delivered", "receipt"), "wrong-password-0123456789")
        assert refused != 200, "the webhook endpoint accepted a wrong password"
        self.thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop.set()
        self.thread.join(10)


@dataclass
class LiveStack:
    prometheus: str  # base URL

    def query(self, expr: str) -> dict[str, Any]:
        """The API's answer to an instant query (errors come back as data, not raised)."""
        url = f"{self.prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            answer: dict[str, Any] = _get(url)
        except urllib.error.HTTPError as exc:  # 400/422: a bad query, with the reason in the body
            with exc:
                answer = json.loads(exc.read())
        return answer


def _exporter_config(
    cache: RedisServer,
    sentinel: RedisSentinelSetup,
    cluster: RedisCluster,
    pg: PostgresServer,
    replica: PostgresServer,
    bouncer: PgBouncer,
    https: HttpsServer,
    nsd: NsdServer,
    lago: FakeLago,
    postmark: FakePostmark,
    statuspage: FakeStatuspage,
    resend: FakeResend,
    rum_port: int,
) -> str:
    types = "\n".join(f"    {name}: [{tag}]" for name, tag in WEBHOOK_TYPES.items())
    return f"""\
redis:
  - name: cache
    url: {cache.url}
    key_patterns:
      - name: sessions
        pattern: "session:*"
  - name: primary
    url: {sentinel.primary.url}
  - name: replica
    url: {sentinel.replica.url}
  - name: sentinel
    url: {sentinel.sentinel.url}
  - name: cluster
    url: {cluster.url}
postgres:
  - name: main
    dsn: {pg.dsn("monitor", "appdb", MONITOR_PASSWORD)}
    custom_queries_file: {ROOT / "examples" / "queries.yaml"}
  - name: standby
    dsn: {replica.dsn("monitor", "appdb", MONITOR_PASSWORD)}
pgbouncer:
  - name: bouncer
    dsn: {bouncer.dsn}
http_probes:
  - name: site
    url: {https.url("/ok", "valid")}
    tls:
      ca_file: {https.ca_file}
  - name: cdn
    url: {https.url("/cache/age", "valid")}
    check_cache: true
    tls:
      ca_file: {https.ca_file}
dns_resolver:
  nameservers: [{LOOPBACK}]
  port: {nsd.port}
  timeout: 1s
email_domains:
  - domain: shop.test
    dkim_selectors: [s1]
lago:
  - name: billing
    url: {lago.url}
    api_key: {LAGO_KEY}
postmark:
  - name: mail
    url: {postmark.url}
    server_token: {POSTMARK_TOKEN}
resend:
  - name: transactional
    url: {resend.url}
    api_key: {RESEND_KEY}
    requests_per_second: 100
statuspages:
  - name: postmark-status
    url: {statuspage.url}
rum:
  listen_address: "{LOOPBACK}:{rum_port}"
  allowed_origins: ["{RUM_ORIGIN}"]
  routes: ["/", "/product/:id"]
  rate_limit: 1000
  rate_burst: 1000
email_webhooks:
  email_types:
{types}
  postmark:
    username: '{WEBHOOK_USER}'
    password: '{WEBHOOK_PASSWORD}'
"""


def _prometheus_config(exporter_port: int, node_port: int) -> str:
    rule_files = [
        str(p)
        for p in (RULES_GENERATED / "prometheus_rules.yaml", RULES_GENERATED / "prometheus_alerts.yaml")
        if p.exists()
    ]
    return json.dumps(
        {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": rule_files,
            # job names as config.libsonnet's selectors expect them (exporterSelector, node.selector)
            "scrape_configs": [
                {"job_name": "stack-exporter", "static_configs": [{"targets": [f"{LOOPBACK}:{exporter_port}"]}]},
                {"job_name": "node", "static_configs": [{"targets": [f"{LOOPBACK}:{node_port}"]}]},
            ],
        }
    )


def _start(stack: ExitStack, args: list[str], log: Path, port: int, what: str) -> None:
    process = Process(args, log)
    process.start()
    stack.callback(process.stop)
    try:
        wait_for_port(LOOPBACK, port, timeout=20)
    except TimeoutError as exc:
        raise AssertionError(f"{what} did not start:\n{process.log_tail()}") from exc


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory,
    redis_sentinel: RedisSentinelSetup,
    redis_cluster: RedisCluster,
    https_server: HttpsServer,
    nsd_factory: Callable[..., NsdServer],
) -> Iterator[LiveStack]:
    tmp = tmp_path_factory.mktemp("dashboards-live")
    nsd = nsd_factory(_zone(tmp))
    lago, postmark, statuspage = FakeLago(LAGO_KEY), FakePostmark(POSTMARK_TOKEN), FakeStatuspage()
    resend = FakeResend(RESEND_KEY)
    with ExitStack() as stack:
        stack.enter_context(_FakeApis([lago, postmark, statuspage, resend]))
        cache = stack.enter_context(RedisServer(tmp / "redis-cache"))
        with cache.client() as r:
            # a limit, keys in a group, hits and misses: the memory, hit-ratio and key panels have something to show
            r.config_set("maxmemory", 64 * 1024 * 1024)
            r.mset({f"session:{i}": "x" for i in range(20)})
            for i in range(30):
                r.get(f"session:{i}")
        base = stack.enter_context(_base("stack-dash-pg-"))
        pg = stack.enter_context(PostgresServer(base))
        pg.setup_roles()
        # the retention example (examples/queries.yaml) reads this table as the exporter's role
        pg.execute("GRANT SELECT ON events TO monitor", "appdb")
        replica = stack.enter_context(PostgresServer(base, primary=pg, name="replica"))
        wait_replica_caught_up(PgReplication(pg, replica))
        # a slot nobody uses, reserving WAL at once: the slot panel's subject
        pg.query("SELECT pg_create_physical_replication_slot('dashboards_test', true)")
        bouncer = stack.enter_context(PgBouncer(base, pg))

        config = tmp / "exporter.yaml"
        config.write_text(
            _exporter_config(
                cache,
                redis_sentinel,
                redis_cluster,
                pg,
                replica,
                bouncer,
                https_server,
                nsd,
                lago,
                postmark,
                statuspage,
                resend,
                rum_port := free_port(),
            )
        )
        exporter_port, node_port, prom_port = free_port(), free_port(), free_port()
        listen = f"{LOOPBACK}:{exporter_port}"
        # a 1 s scrape leaves 0.8 s to collect; the default offset (0.5 s) is meant for 10 s scrapes
        exporter_args = [str(STACK_EXPORTER), "--config.file", str(config), "--web.listen-address", listen,
                         "--scrape.timeout-offset", "0.2"]  # fmt: skip
        _start(stack, exporter_args, tmp / "exporter.log", exporter_port, "stack-exporter")
        wait_for_port(LOOPBACK, rum_port, timeout=20)
        stack.enter_context(_BeaconFeeder(f"http://{LOOPBACK}:{rum_port}/rum/v1/beacon"))
        webhooks = stack.enter_context(_WebhookFeeder(f"http://{LOOPBACK}:{rum_port}/webhooks/v1/postmark"))
        _start(
            stack,
            [NODE_EXPORTER, f"--web.listen-address={LOOPBACK}:{node_port}"],
            tmp / "node.log",
            node_port,
            "node_exporter",
        )
        prom_config = tmp / "prometheus.yml"
        prom_config.write_text(_prometheus_config(exporter_port, node_port))
        _start(stack, [PROMETHEUS, f"--config.file={prom_config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
                       f"--web.listen-address={LOOPBACK}:{prom_port}", "--log.level=warn"],
               tmp / "prometheus.log", prom_port, "prometheus")  # fmt: skip

        live = LiveStack(f"http://{LOOPBACK}:{prom_port}")
        wait_until(lambda: _ready(live.prometheus), 30, interval=0.2, message="Prometheus is ready", ignore=(OSError,))

        def scraped_enough() -> bool:
            for job in ("stack-exporter", "node"):
                answer = live.query(f'count_over_time(up{{job="{job}"}}[1m]) >= {SCRAPES} and up{{job="{job}"}} == 1')
                if not answer["data"]["result"]:
                    return False
            return True

        wait_until(scraped_enough, 60, interval=0.5, message=f"{SCRAPES} successful scrapes of both jobs")
        # the per-type series exist by now (scraped at their first values): the burst is an increase
        webhooks.burst()

        def ratios_recorded() -> bool:
            answer = live.query('{__name__=~"provider_email_type:email_webhook_.*_per_sent:ratio.*"}')
            return len(answer["data"]["result"]) >= 2

        wait_until(ratios_recorded, 30, interval=0.5, message="the per-type ratios are recorded")
        yield live


def _expected_empty(panel: Panel, expr: str) -> bool:
    allowed = NO_DATA_OK.get((panel.dashboard, panel.title))
    return allowed is not None and (allowed[1] is None or allowed[1] in expr)


def test_every_panel_query_runs_and_returns_data(live: LiveStack) -> None:
    errors, empty, unexpected_data = [], [], []
    for panel in all_panels():
        for raw in panel.exprs:
            expr = substitute(raw)
            answer = live.query(expr)
            if answer.get("status") != "success":
                errors.append(f"{panel}: {answer.get('error')}\n    {expr}")
                continue
            has_data = bool(answer["data"]["result"])
            if not has_data and not _expected_empty(panel, expr):
                empty.append(f"{panel}: no data\n    {expr}")
            if has_data and _expected_empty(panel, expr) and NO_DATA_OK[(panel.dashboard, panel.title)][1] is None:
                unexpected_data.append(f"{panel}: has data now, drop it from NO_DATA_OK")
    assert not errors, "queries failed:\n" + "\n".join(errors)
    assert not empty, "panels without data:\n" + "\n".join(empty)
    assert not unexpected_data, "\n".join(unexpected_data)


def _recorded_empty_names() -> set[str]:
    """Recorded series that stay empty here: the app's (no app is scraped) and the email
    ratios (see RATIO)."""
    rules = RULES_GENERATED / "prometheus_rules.yaml"
    if not rules.exists():
        return set()
    groups = yaml.safe_load(rules.read_text())["groups"]
    recorded = [(g["name"], r["record"]) for g in groups for r in g["rules"] if "record" in r]
    return {r for g, r in recorded if ".app." in g or (".email." in g and "_per_requested:" in r)}


def test_every_metric_a_panel_uses_exists(live: LiveStack) -> None:
    present = set(_get(f"{live.prometheus}/api/v1/label/__name__/values")["data"])
    referenced: dict[str, set[str]] = {}
    for panel in all_panels():
        for expr in panel.exprs:
            for name in metric_names(expr):
                referenced.setdefault(name, set()).add(str(panel))
    recorded_empty = _recorded_empty_names()
    missing = {
        n: sorted(p)
        for n, p in referenced.items()
        if n not in present and n not in NOT_EMITTED_OK and n not in recorded_empty
    }
    assert not missing, "panels use metrics nothing emits:\n" + "\n".join(
        f"{n}: {p}" for n, p in sorted(missing.items())
    )
    # the allowances must stay true: once a collector emits the metric, drop it from the list
    assert not (set(NOT_EMITTED_OK) & present), (
        f"now emitted, drop from NOT_EMITTED_OK: {set(NOT_EMITTED_OK) & present}"
    )


def test_query_failures_are_reported(live: LiveStack) -> None:
    # the check above can fail: a broken expression comes back as an error, not as "no data"
    answer = live.query("rate(up[")
    assert answer["status"] == "error"
    assert not live.query('redis_up{target="no-such-target"}')["data"]["result"]
