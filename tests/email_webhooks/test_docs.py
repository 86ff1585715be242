"""docs/metrics/email.md's webhook event table against the providers' code.

The table says, per provider, which webhook events become which normalised event; a
provider shows a series from the start for exactly the events it can report
(``reports``), so a cell "(none)" must be an event the provider never reports, and every
other cell one it does. A new provider without its column fails here.
"""

from __future__ import annotations

import importlib

import pytest

from exporter.email_webhooks.common import EVENTS, PROVIDERS
from exporter.email_webhooks.host import _CLASSES
from tests.helpers import ROOT

DOCS = ROOT / "docs" / "metrics" / "email.md"
COLUMNS = {"sendgrid": "SendGrid", "mailgun": "Mailgun", "postmark": "Postmark", "resend": "Resend", "ses": "AWS SES"}


def documented(provider: str) -> set[str]:
    """The normalised events the webhook table gives this provider a webhook event for."""
    lines = DOCS.read_text(encoding="utf-8").splitlines()
    start = lines.index("## Webhooks")
    header = next(i for i in range(start, len(lines)) if lines[i].startswith("| event |"))
    cells = [c.strip() for c in lines[header].strip("|").split("|")]
    column = next(i for i, c in enumerate(cells) if c.startswith(COLUMNS[provider]))
    found = set()
    for line in lines[header + 2 :]:
        if not line.startswith("|"):
            break
        row = [c.strip() for c in line.strip("|").split("|")]
        if row[0] in EVENTS and row[column] != "(none)":
            found.add(row[0])
    return found


def test_every_provider_has_a_column() -> None:
    assert set(COLUMNS) == set(PROVIDERS)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_table_names_exactly_the_events_the_provider_reports(provider: str) -> None:
    module = importlib.import_module(f"exporter.email_webhooks.{provider}")
    reports = set(getattr(module, _CLASSES[provider]).reports)
    assert reports <= set(EVENTS)
    assert documented(provider) == reports
