#!/usr/bin/env python3
"""`make demo`: the whole pipeline on this machine, until Ctrl-C.

Starts stack-exporter on its built-in defaults (the local Redis on 127.0.0.1:6379 and
PostgreSQL on 127.0.0.1:5432), node_exporter, Prometheus with the rule pack from
rules/generated/, and an Alertmanager running alertmanager/alertmanager.yml whose
receivers all point at a webhook receiver in this process, which prints every
notification.  The `statuspage` receiver also posts to the exporter's status-page bridge,
which keeps a component of a local fake Atlassian Statuspage (the one the tests use) in
step with RedisDown; every change of that public page is printed too.  Everything binds
to 127.0.0.1, on the usual ports when they are free.
Ctrl-C stops all of it and removes the temporary data.

The processes and the receiver are the ones the end-to-end test uses (peers/alerting.py),
so the demo cannot drift from what is tested.  Run it from the repository root as a module,
``python -m scripts.demo``, so ``peers`` is importable.
"""

from __future__ import annotations

import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType

import yaml

from peers.alerting import (
    ALERTMANAGER_CONFIG,
    RULES_GENERATED,
    Alertmanager,
    NodeExporter,
    Notification,
    Prometheus,
    StackExporter,
    WebhookSink,
    answers,
    bridge_webhook,
    sink_config,
)
from peers.process import LOOPBACK, AsyncInThread, ProcessError, free_port
from tests.fakes.statuspage_api import FakeStatusPageAPI

ROOT = Path(__file__).resolve().parent.parent


def port(preferred: int) -> int:
    """The usual port if nothing listens there, else any free one (a real Prometheus may run)."""
    with socket.socket() as sock:
        try:
            sock.bind((LOOPBACK, preferred))
        except OSError:
            return free_port()
    return preferred


def show(notification: Notification) -> None:
    body = notification.body
    print(f"\n--> notification to {notification.receiver} ({notification.path}): {str(body.get('status')).upper()}")
    for alert in body.get("alerts", []):
        labels = alert.get("labels", {})
        summary = alert.get("annotations", {}).get("summary", "")
        where = f" on {labels['target']}" if "target" in labels else ""
        print(f"    [{labels.get('severity', '?')}] {labels.get('alertname')}{where}: {summary}")
    sys.stdout.flush()


# The public component the bridge keeps in step with Redis.
COMPONENT = "redis"


def watch_page(page: FakeStatusPageAPI, stop: threading.Event) -> None:
    """Print each change of the fake public page: what a customer would see."""
    seen = (page.status_of(COMPONENT), tuple(page.open_incidents()))
    while not stop.wait(0.5):
        now = (page.status_of(COMPONENT), tuple(page.open_incidents()))
        if now != seen:
            incidents = f", open incident {', '.join(now[1])}" if now[1] else ", no open incident"
            print(f"\n==> public status page: component Redis is {now[0]}{incidents}", flush=True)
            seen = now


def bridge_config(base: Path, page: FakeStatusPageAPI) -> tuple[str, Path]:
    """The exporter's built-in defaults plus a bridge to ``page``; and the bridge's token file."""
    token = base / "bridge-token"
    token.write_text("demo-bridge-token\n")
    config = {
        "redis": [{"name": "local", "url": "redis://127.0.0.1:6379/0"}],
        "postgres": [{"name": "local", "dsn": "postgresql://postgres@127.0.0.1:5432/postgres"}],
        "statuspage_bridge": {
            "token_file": str(token),
            "provider": {"kind": "statuspage", "url": page.url, "page_id": page.page_id, "api_key": page.api_key},
            "components": [{"name": "Redis", "id": COMPONENT, "match": ['alertname="RedisDown"']}],
            "min_flap_interval": "30s",
            "incidents": {"enabled": True},
        },
    }
    return yaml.safe_dump(config), token


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    """Start the whole pipeline, print where each part listens, wait for Ctrl-C.

    Long (about 70 lines) because it is the demo's script, read top to bottom in the
    order the parts start; each step is one call into peers.
    """
    for path in (RULES_GENERATED / "prometheus_alerts.yaml", RULES_GENERATED / "prometheus_rules.yaml"):
        if not path.exists():
            print(f"demo: {path.relative_to(ROOT)} is missing: run `make generate` first", file=sys.stderr)
            return 1
    # SIGINT explicitly too: a shell starting us in the background without job control
    # leaves SIGINT ignored, and Python then keeps it ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    base = Path(tempfile.mkdtemp(prefix="stack-exporter-demo-"))
    stop = threading.Event()
    try:
        with (
            WebhookSink(port(9099), on_notification=show) as sink,
            AsyncInThread(FakeStatusPageAPI("statuspage", components=[COMPONENT])) as page,
        ):
            exporter_port = port(9847)
            exporter_config, token = bridge_config(base, page)
            bridge = bridge_webhook(f"{LOOPBACK}:{exporter_port}", token)
            am_config = base / "alertmanager.yml"
            # Demo timers: seconds instead of minutes, so changes show up quickly.
            config = sink_config(
                ALERTMANAGER_CONFIG, sink, group_wait="5s", group_interval="30s", also={"statuspage": [bridge]}
            )
            am_config.write_text(yaml.safe_dump(config))
            threading.Thread(target=watch_page, args=(page, stop), daemon=True).start()
            with (
                StackExporter(base, exporter_config, exporter_port) as exporter,
                NodeExporter(base, port(9100)) as node,
                Alertmanager(base, am_config, port=port(9093)) as alertmanager,
            ):
                prometheus_config = {
                    "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
                    "alerting": {
                        "alertmanagers": [{"static_configs": [{"targets": [f"{LOOPBACK}:{alertmanager.port}"]}]}]
                    },
                    "scrape_configs": [
                        {"job_name": "stack-exporter", "static_configs": [{"targets": [exporter.address]}]},
                        {"job_name": "node", "static_configs": [{"targets": [node.address]}]},
                    ],
                }
                rules = {
                    "alerts.yaml": yaml.safe_load((RULES_GENERATED / "prometheus_alerts.yaml").read_text()),
                    "recording.yaml": yaml.safe_load((RULES_GENERATED / "prometheus_rules.yaml").read_text()),
                }
                with Prometheus(base, prometheus_config, rules, port(9090)) as prometheus:
                    # Debian's Prometheus build ships only the classic UI.
                    alerts_page = next(
                        (
                            f"{prometheus.url}{p}"
                            for p in ("/alerts", "/classic/alerts")
                            if answers(f"{prometheus.url}{p}")
                        ),
                        f"{prometheus.url}/",
                    )
                    print(
                        f"""
stack-exporter is running with the whole alerting pipeline (Ctrl-C stops everything):

  stack-exporter   http://{exporter.address}/          metrics: http://{exporter.address}/metrics
  node_exporter    http://{node.address}/metrics
  Prometheus       {alerts_page}     (rules from rules/generated/)
  Alertmanager     {alertmanager.url}/#/alerts
  notifications    printed below, as the webhook receiver at {sink.url()} gets them
  status page      a fake Statuspage at {page.url}, fed by the bridge; its changes are printed

The Watchdog alert arrives within seconds and every minute after: that is the pipeline
working.  Stop the local Redis (or PostgreSQL) to see RedisDown after its 1-minute `for`,
the public page's Redis component go to major_outage, and, started again, back to
operational with its incident resolved.
""",
                        flush=True,
                    )
                    while True:
                        for process in (exporter.process, node.process, alertmanager.process, prometheus.process):
                            if process is not None:
                                process.check_running()
                        time.sleep(1)
    except KeyboardInterrupt:
        print("\ndemo: stopping", flush=True)
        return 0
    except (ProcessError, TimeoutError) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    finally:
        stop.set()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
