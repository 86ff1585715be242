"""What the operator sees when a target fails: the landing page and the debug probe.

* The landing page lists every target with its state (up, down, never scraped),
  last error, last success and last duration, like Prometheus's targets page.
* ``/probe?target=NAME&debug=true`` (blackbox_exporter's convention) runs a fresh
  collection of that target and answers, as text, its timings, its result, the log
  lines it emitted and then the metrics a plain probe would have returned.

Every text taken from a target or an error is redacted before it is escaped: the
redactor's patterns must see ``password="x"``, not ``password=&quot;x&quot;``.
"""

from __future__ import annotations

import html
import time
from urllib.parse import urlencode

from exporter import __version__
from exporter.debuglog import capture
from exporter.exposition import render_text
from exporter.scrape import Engine, TargetRunner

# targets with a debug probe running: one at a time each, since a debug probe
# never shares its collection and so costs the backend a full round every time
_DEBUGGING: set[TargetRunner] = set()


class DebugBusy(Exception):
    """A debug probe of this target is already running."""


def _when(at: float | None, now: float) -> str:
    if at is None:
        return "never"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
    return f"{stamp} ({max(0.0, now - at):.1f}s ago)"


def target_row(engine: Engine, runner: TargetRunner, now: float) -> str:
    def cell(text: str, code: bool = False) -> str:
        escaped = html.escape(engine.redactor.redact(text))
        return f"<td><code>{escaped}</code></td>" if code else f"<td>{escaped}</td>"

    result = runner.last_result
    if result is None:
        state, error, duration = "never scraped", "", ""
    elif result.success:
        state, error, duration = "up", "", f"{result.duration:.3f}s"
    else:
        state, error, duration = "down", result.error or "failed", f"{result.duration:.3f}s"
    query = {"target": runner.name, "collector": runner.kind}
    probe_link = f"/probe?{urlencode(query)}"
    debug_link = f"/probe?{urlencode({**query, 'debug': 'true'})}"
    return (
        f'<tr class="{state.replace(" ", "-")}">'
        + cell(runner.kind)
        + cell(runner.name)
        + cell(runner.collector.describe(), code=True)
        + cell(state)
        + cell(_when(runner.last_success_at, now))
        + cell(duration)
        + cell(error)
        + f'<td><a href="{html.escape(probe_link, quote=True)}">probe</a>'
        f' <a href="{html.escape(debug_link, quote=True)}">debug</a></td>'
        "</tr>"
    )


def landing_page(engine: Engine) -> str:
    now = time.time()
    rows = "\n".join(target_row(engine, runner, now) for runner in engine.runners.values())
    source = html.escape(engine.redactor.redact(engine.config.source))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>stack-exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em 1em;text-align:left;vertical-align:top}}
tr.down td{{background:#fdd}}tr.up td:nth-child(4){{color:#060}}</style></head>
<body><h1>stack-exporter</h1>
<p>Version {html.escape(__version__)}. Config: <code>{source}</code></p>
<ul><li><a href="/metrics">Metrics</a></li><li><a href="/-/healthy">Health</a></li>
<li><a href="/-/ready">Readiness</a></li>
<li><a href="/sd">Service discovery</a> (Prometheus <code>http_sd_configs</code>)</li></ul>
<h2>Targets</h2>
<table><tr><th>Collector</th><th>Target</th><th>Address</th><th>State</th><th>Last success</th>
<th>Last duration</th><th>Last error</th><th></th></tr>
{rows or '<tr><td colspan="8">none configured</td></tr>'}
</table></body></html>
"""
    # every cell was redacted before it was escaped; redacting the page again would
    # match the escaped text and leave a raw "<redacted>" inside the HTML
    return page


async def debug_probe(engine: Engine, runner: TargetRunner, header_bound: float | None) -> str:
    """A fresh collection of ``runner``'s target, described as text (see the module doc)."""
    if runner in _DEBUGGING:
        raise DebugBusy(f"a debug probe of target {runner.name!r} is already running; try again when it ends")
    _DEBUGGING.add(runner)
    try:
        timeout = runner.timeout(float(engine.config.global_.scrape_timeout), header_bound)
        with capture() as captured:
            result = await runner.scrape(timeout, fresh=True)
    finally:
        _DEBUGGING.discard(runner)
    metrics = render_text(engine.groups([(runner, result)], self_metrics=False)).decode()
    outcome = "success" if result.success else f"failed: {result.error}"
    head = [
        f"Debug probe of target {runner.name!r} (collector {runner.kind})",
        f"Address: {runner.collector.describe()}",
        "Collection: fresh, started for this request (not shared with scrapes, no cached result)",
        f"Deadline: {timeout:.3g}s",
        f"Duration: {result.duration:.3f}s",
        f"Result: {outcome}",
        "",
        "Logs of the collection:",
    ]
    logs = captured.lines(engine.redactor) or ["(none)"]
    text = engine.redactor.redact("\n".join(head)) + "\n" + "\n".join(logs)
    return f"{text}\n\nMetrics that would have been returned:\n{metrics}"
