"""The alerting pipeline's real processes on loopback: Alertmanager, Prometheus, node_exporter,
the exporter itself, and a webhook sink that stands in for Slack, PagerDuty and the rest.

Used by tests/alertmanager/ (inhibition on a real Alertmanager), tests/test_e2e_alerts.py and
``make demo``, so the demo runs exactly what the end-to-end test checks.  Everything here is
synchronous: the processes are children (peers.process.Process) and the sink is a thread, so
a caller drives them with plain calls and ``wait_until``.
"""

from __future__ import annotations

import copy
import http.server
import json
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from peers.process import LOOPBACK, STACK_EXPORTER, Process, ProcessError, free_port, wait_until

ROOT = Path(__file__).resolve().parents[1]
ALERTMANAGER_CONFIG = ROOT / "alertmanager" / "alertmanager.yml"
ALERTMANAGER_TEMPLATES = ROOT / "alertmanager" / "templates"
RULES_GENERATED = ROOT / "rules" / "generated"

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
AMTOOL = "/usr/bin/amtool"
PROMETHEUS = "/usr/bin/prometheus"
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"

START_TIMEOUT = 20.0


def http_json(url: str, body: Any = None, *, method: str | None = None, timeout: float = 5.0) -> Any:
    """GET (or POST ``body`` as JSON) and decode the JSON answer; raise on non-2xx."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        text = response.read()
    return json.loads(text) if text else None


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _wait_ready(process: Process, url: str, timeout: float = START_TIMEOUT) -> None:
    def ready() -> bool:
        process.check_running()
        return answers(url)

    try:
        wait_until(ready, timeout, interval=0.05, message=f"{url} answers")
    except BaseException:
        process.kill()
        raise


# -- Alertmanager ------------------------------------------------------------------------


class Alertmanager:
    """One Alertmanager on a free loopback port.

    ``cluster_port=None`` turns gossip off (``--cluster.listen-address=``), which also
    skips the cluster settle wait; an HA pair gets ports and each other as peers.
    """

    def __init__(
        self,
        base: Path,
        config: str | Path,
        *,
        name: str = "am",
        cluster_port: int | None = None,
        peers: Sequence[int] = (),
        peer_timeout: str = "15s",
        port: int | None = None,
    ) -> None:
        self.dir = base / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.config_path = Path(config)
        self.port = port or free_port()
        self.cluster_port = cluster_port
        self.peers = list(peers)
        self.peer_timeout = peer_timeout
        self.process: Process | None = None

    def __repr__(self) -> str:
        return f"<Alertmanager {self.name} {self.url}>"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def args(self) -> list[str]:
        cluster = f"{LOOPBACK}:{self.cluster_port}" if self.cluster_port is not None else ""
        args = [
            ALERTMANAGER,
            f"--config.file={self.config_path}",
            f"--storage.path={self.dir / 'data'}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
            # Receivers see which replica sent a notification in the payload's externalURL.
            f"--web.external-url={self.url}",
            f"--cluster.listen-address={cluster}",
            f"--cluster.peer-timeout={self.peer_timeout}",
            "--log.level=debug",
        ]
        if self.cluster_port is not None:
            # Gossip on loopback: an advertise address is needed when listening on 127.0.0.1.
            args.append(f"--cluster.advertise-address={LOOPBACK}:{self.cluster_port}")
            args += [f"--cluster.peer={LOOPBACK}:{port}" for port in self.peers]
        return args

    def start(self) -> None:
        self.process = Process(self.args(), self.dir / "alertmanager.log")
        self.process.start()
        _wait_ready(self.process, f"{self.url}/-/ready")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()

    def __enter__(self) -> Alertmanager:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def post_alerts(self, alerts: Iterable[Mapping[str, Any]]) -> None:
        http_json(f"{self.url}/api/v2/alerts", list(alerts))

    def alerts(self, **params: str) -> list[dict[str, Any]]:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        result: list[dict[str, Any]] = http_json(f"{self.url}/api/v2/alerts?{query}")
        return result

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = http_json(f"{self.url}/api/v2/status")
        return result

    def cluster_peers(self) -> list[str]:
        """Names of the cluster members this replica sees (itself included)."""
        return sorted(peer["name"] for peer in self.status()["cluster"].get("peers") or [])

    def log_tail(self, lines: int = 40) -> str:
        return self.process.log_tail(lines) if self.process is not None else ""


def cluster_position(am: Alertmanager) -> int:
    """The replica's place in the HA pair's notification order.

    Alertmanager sorts the member names; the replica at position N waits N peer
    timeouts before sending, and sends nothing if the notification log (gossiped)
    says a replica before it already has.
    """
    status = am.status()["cluster"]
    return sorted(peer["name"] for peer in status["peers"]).index(status["name"])


# -- the webhook sink --------------------------------------------------------------------


@dataclass
class Notification:
    """One webhook POST: which receiver (the path), which Alertmanager (externalURL)."""

    path: str
    body: dict[str, Any]
    received: float = field(default_factory=time.monotonic)

    @property
    def receiver(self) -> str:
        return self.path.strip("/").split("/")[0]

    @property
    def status(self) -> str:
        return str(self.body.get("status"))

    @property
    def sender(self) -> str:
        return str(self.body.get("externalURL"))

    @property
    def alertnames(self) -> set[str]:
        return {a["labels"].get("alertname", "") for a in self.body.get("alerts", [])}

    def labels(self, name: str) -> set[str]:
        return {a["labels"].get(name, "") for a in self.body.get("alerts", [])}


class WebhookSink:
    """A small HTTP server recording every POSTed notification, for Alertmanager receivers.

    ``on_notification`` (optional) is called with each one: ``make demo`` prints them.
    """

    def __init__(self, port: int | None = None, on_notification: Any = None) -> None:
        self.port = port if port is not None else free_port()
        self.notifications: list[Notification] = []
        self._lock = threading.Lock()
        self._on_notification = on_notification
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"unparsed": raw.decode(errors="replace")}
                notification = Notification(self.path, body)
                with sink._lock:
                    sink.notifications.append(notification)
                if sink._on_notification is not None:
                    sink._on_notification(notification)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                text = b"webhook receiver: Alertmanager POSTs notifications to /<receiver>/<integration>\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer((LOOPBACK, self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-sink", daemon=True)

    def url(self, path: str = "") -> str:
        return f"http://{LOOPBACK}:{self.port}/{path.lstrip('/')}"

    def __enter__(self) -> WebhookSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def received(
        self, *, receiver: str | None = None, alertname: str | None = None, status: str | None = None
    ) -> list[Notification]:
        with self._lock:
            found = list(self.notifications)
        return [
            n
            for n in found
            if (receiver is None or n.receiver == receiver)
            and (alertname is None or alertname in n.alertnames)
            and (status is None or n.status == status)
        ]


def sink_config(
    base_config: Path,
    sink: WebhookSink,
    *,
    group_wait: str = "1s",
    group_interval: str = "2s",
    also: Mapping[str, list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """alertmanager.yml with every receiver's integrations replaced by webhooks to ``sink``.

    Routes, inhibit rules, time intervals and templates stay exactly as shipped, so the
    test exercises the real routing tree; only where notifications go changes (one path
    per receiver and integration: ``/<receiver>/<integration>``) and the group timers,
    which are minutes in production, shrink to seconds.  ``send_resolved`` is kept per
    integration, with each integration's own default when the file does not set it.
    ``also`` adds webhooks of one's own to a receiver, beside the sink's (the real
    status-page bridge for ``statuspage``, say).
    """
    config: dict[str, Any] = copy.deepcopy(yaml.safe_load(base_config.read_text()))
    config["templates"] = [str(ALERTMANAGER_TEMPLATES / "*.tmpl")]
    config["global"] = {"resolve_timeout": config.get("global", {}).get("resolve_timeout", "5m")}
    # Alertmanager's defaults: PagerDuty and webhooks send resolves, the rest do not.
    resolved_default = {"pagerduty_configs": True, "webhook_configs": True}
    for receiver in config["receivers"]:
        webhooks = []
        for key in [k for k in receiver if k.endswith("_configs")]:
            for integration in receiver.pop(key):
                send_resolved = integration.get("send_resolved", resolved_default.get(key, False))
                kind = key.removesuffix("_configs")
                webhooks.append({"url": sink.url(f"{receiver['name']}/{kind}"), "send_resolved": send_resolved})
        webhooks.extend((also or {}).get(receiver["name"], []))
        if webhooks:
            receiver["webhook_configs"] = webhooks

    def shrink(route: dict[str, Any]) -> None:
        for key, value in (("group_wait", group_wait), ("group_interval", group_interval)):
            if key in route:
                route[key] = value
        for child in route.get("routes", []):
            shrink(child)

    shrink(config["route"])
    config["route"]["group_wait"] = group_wait
    config["route"]["group_interval"] = group_interval
    return config


def bridge_webhook(exporter_address: str, token_file: Path, base_config: Path = ALERTMANAGER_CONFIG) -> dict[str, Any]:
    """The shipped ``statuspage`` receiver's webhook, pointed at a local exporter's bridge.

    Taken from alertmanager.yml rather than written again, so ``send_resolved``,
    ``max_alerts`` and the Bearer authorization the bridge relies on are the shipped ones;
    only the address and the token file change.
    """
    config = yaml.safe_load(base_config.read_text())
    receiver = next(r for r in config["receivers"] if r["name"] == "statuspage")
    webhook: dict[str, Any] = copy.deepcopy(receiver["webhook_configs"][0])
    path = urllib.parse.urlsplit(webhook["url"]).path
    webhook["url"] = f"http://{exporter_address}{path}"
    webhook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    return webhook


# -- Prometheus, node_exporter, the exporter ---------------------------------------------


_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def duration_seconds(text: str) -> float:
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


def fast_rules(path: Path, divisor: float = 60.0, minimum: float = 1.0) -> dict[str, Any]:
    """A generated rule file with every ``for`` divided by ``divisor`` (at least ``minimum``).

    The expressions, names, labels and annotations stay exactly as generated; only the
    waits shrink (1m -> 1s, 5m -> 5s, 30m -> 30s), keeping their order, so an escalated
    copy still fires after its warning.
    """
    rules: dict[str, Any] = yaml.safe_load(path.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                seconds = max(minimum, duration_seconds(rule["for"]) / divisor)
                rule["for"] = f"{int(seconds * 1000)}ms"
    return rules


class Prometheus:
    """Prometheus with a temp data dir, a 1 s resend delay and the given config."""

    def __init__(
        self, base: Path, config: Mapping[str, Any], rule_files: Mapping[str, Any], port: int | None = None
    ) -> None:
        self.dir = base / "prometheus"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.config = dict(config)
        self.rule_files = rule_files
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        paths = []
        for name, content in self.rule_files.items():
            path = self.dir / name
            path.write_text(yaml.safe_dump(content, sort_keys=False))
            paths.append(str(path))
        config = dict(self.config, rule_files=paths)
        config_path = self.dir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.process = Process(
            [
                PROMETHEUS,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address={LOOPBACK}:{self.port}",
                # The default 1m drops the first sends of an alert until Alertmanager is
                # discovered (~5 s) and then waits a minute to send again.
                "--rules.alert.resend-delay=1s",
                "--log.level=warn",
            ],
            self.dir / "prometheus.log",
        )
        self.process.start()
        _wait_ready(self.process, f"{self.url}/-/ready")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def __enter__(self) -> Prometheus:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def alerts(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = http_json(f"{self.url}/api/v1/alerts")["data"]["alerts"]
        return result

    def firing(self, alertname: str) -> list[dict[str, Any]]:
        return [a for a in self.alerts() if a["labels"]["alertname"] == alertname and a["state"] == "firing"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.url}/api/v1/query?query={urllib.parse.quote(expr)}"
        result: list[dict[str, Any]] = http_json(url)["data"]["result"]
        return result

    def targets_up(self) -> dict[str, str]:
        active = http_json(f"{self.url}/api/v1/targets?state=active")["data"]["activeTargets"]
        return {t["labels"]["job"]: t["health"] for t in active}


class NodeExporter:
    def __init__(self, base: Path, port: int | None = None) -> None:
        self.dir = base / "node-exporter"
        self.port = port or free_port()
        self.process: Process | None = None

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def __enter__(self) -> NodeExporter:
        self.process = Process(
            [NODE_EXPORTER, f"--web.listen-address={self.address}", "--log.level=warn"],
            self.dir / "node-exporter.log",
        )
        self.process.start()
        _wait_ready(self.process, f"http://{self.address}/metrics")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.stop()


class StackExporter:
    """The real exporter as a process (the venv's ``stack-exporter``), as users run it."""

    def __init__(self, base: Path, config_yaml: str | None, port: int | None = None) -> None:
        self.dir = base / "stack-exporter"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.config_yaml = config_yaml
        self.process: Process | None = None

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def __enter__(self) -> StackExporter:
        args = [str(STACK_EXPORTER), f"--web.listen-address={self.address}"]
        if self.config_yaml is not None:
            config = self.dir / "config.yml"
            config.write_text(self.config_yaml)
            args.append(f"--config.file={config}")
        self.process = Process(args, self.dir / "stack-exporter.log")
        self.process.start()
        _wait_ready(self.process, f"http://{self.address}/-/healthy")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.stop()


def check_running(*processes: Process | None) -> None:
    """Fail with the dead process's log rather than with a puzzling timeout later."""
    for process in processes:
        if process is not None:
            process.check_running()


def iter_alert_rules(rule_file: Path) -> Iterator[dict[str, Any]]:
    for group in yaml.safe_load(rule_file.read_text())["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                yield rule


__all__ = [
    "ALERTMANAGER_CONFIG",
    "AMTOOL",
    "RULES_GENERATED",
    "Alertmanager",
    "NodeExporter",
    "Notification",
    "ProcessError",
    "Prometheus",
    "StackExporter",
    "WebhookSink",
    "check_running",
    "cluster_position",
    "fast_rules",
    "http_json",
    "iter_alert_rules",
    "sink_config",
]
