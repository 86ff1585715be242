"""Golden renders of alertmanager/templates/ with `amtool template render`.

Each data file in data/ is one notification (Alertmanager's template.Data as JSON:
firing, resolved, mixed, escalated, markup in labels, an info digest); each medium
renders every field alertmanager.yml fills from the templates into one golden file,
golden/<data>.<medium>.

Refresh after a deliberate template change, then review the diff:

    UPDATE_GOLDEN=1 make pytest ARGS=tests/alertmanager/test_alertmanager_templates.py
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from peers.alerting import AMTOOL

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE.parents[1] / "alertmanager" / "templates"
DATA = sorted((HERE / "data").glob("*.json"))
GOLDEN = HERE / "golden"

# medium -> (template type, the fields alertmanager.yml renders, in order)
MEDIA: dict[str, tuple[str, list[str]]] = {
    "slack.txt": ("text", [
        "slack.stack.color", "slack.stack.title", "slack.stack.text", "slack.stack.fallback",
        "stack.runbook_url", "stack.dashboard_url", "stack.silence_url",
    ]),
    "pagerduty.txt": ("text", [
        "pagerduty.stack.severity", "pagerduty.stack.description", "stack.source", "stack.summary",
        "pagerduty.stack.alert_descriptions", "pagerduty.stack.labels", "stack.alertmanager_url",
    ]),
    "sns.txt": ("text", ["sns.stack.subject", "sns.stack.message"]),
    "email.txt": ("text", ["email.stack.subject", "email.stack.text"]),
    "email.html": ("html", ["email.stack.html"]),
}  # fmt: skip


def render(data: Path, kind: str, names: list[str]) -> str:
    if kind == "html":
        text = "".join(f'{{{{ template "{name}" . }}}}\n' for name in names)
    else:
        text = "".join(f'--- {name}\n{{{{ template "{name}" . }}}}\n' for name in names)
    proc = subprocess.run(
        [
            AMTOOL, "template", "render",
            f"--template.glob={TEMPLATES}/*.tmpl",
            f"--template.data={data}",
            f"--template.type={kind}",
            f"--template.text={text}",
        ],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"{data.name} {names}: {proc.stderr}"
    return proc.stdout


CASES = [(data, medium) for data in DATA for medium in MEDIA]


@pytest.mark.parametrize(("data", "medium"), CASES, ids=[f"{d.stem}-{m}" for d, m in CASES])
def test_golden(data: Path, medium: str) -> None:
    kind, names = MEDIA[medium]
    rendered = render(data, kind, names)
    golden = GOLDEN / f"{data.stem}.{medium}"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(rendered)
    assert golden.exists(), f"{golden} missing: run with UPDATE_GOLDEN=1 and review it"
    assert rendered == golden.read_text(), f"{golden.name} differs: UPDATE_GOLDEN=1 if intended, and review the diff"


def test_sms_fits_one_message() -> None:
    for data in DATA:
        message = render(data, "text", ["sns.stack.message"]).split("\n", 1)[1].rstrip("\n")
        assert len(message) <= 160, f"{data.name}: {len(message)} characters: {message}"


def test_markup_is_escaped_for_each_medium() -> None:
    data = HERE / "data" / "redis_session_keys_markup.json"
    html = render(data, "html", ["email.stack.html"])
    assert "<script>" not in html and "&lt;script&gt;" in html
    slack = render(data, "text", ["slack.stack.text"])
    assert "<script>" not in slack and "sessions &amp; carts" in slack


def test_email_html_is_accessible_and_phone_sized() -> None:
    html = render(HERE / "data" / "postgres_xid_warning_mixed.json", "html", ["email.stack.html"])
    assert '<html lang="en">' in html
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in html
    assert "<table" not in html, "layout tables read badly in screen readers"
    assert html.count("<h1") == 1 and html.count("<h2") == 2
    # Status in words, not only in colour; link texts that say where they go.
    assert "Resolved: " in html and "1 firing, 1 resolved" in html
    assert ">Runbook for PostgresTxIDWraparound</a>" in html
    assert "click here" not in html.lower()
