"""Customer-safe incident texts: a fixed, small set of placeholders and nothing else.

An incident is read by customers, so a template can only say which component,
its status in plain words and since when. There is deliberately no way to reach
an alert's labels or annotations (``{labels}``, ``{instance}``, Go or Jinja
expressions): those carry internal host names, addresses and runbook links that
must not end up on a public page. ``{{`` and ``}}`` write literal braces.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping

PLACEHOLDERS = ("component", "status", "since")

# what a customer reads for each status (the providers' own wording)
STATUS_WORDS: Mapping[str, str] = {
    "operational": "Operational",
    "degraded_performance": "Degraded performance",
    "partial_outage": "Partial outage",
    "major_outage": "Major outage",
}

_TOKEN_RE = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def template_problems(template: str) -> Iterator[str]:
    """What is wrong with ``template`` (unknown placeholders, stray braces), worded for a config error."""
    allowed = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
    for match in _TOKEN_RE.finditer(template):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        name = match.group(1)
        if name is None:
            yield f"stray {token!r}: write {token * 2} for a literal brace"
        elif name not in PLACEHOLDERS:
            yield f"unknown placeholder {token}: only {allowed} can be used (no labels or annotations on a public page)"


def render(template: str, *, component: str, status: str, since: float) -> str:
    values = {
        "component": component,
        "status": STATUS_WORDS.get(status, status),
        "since": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(since)),
    }

    def substitute(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        name = match.group(1)
        # unknown names cannot pass the config check; keep them literal rather than fail here
        return values.get(name, token) if name is not None else token

    return _TOKEN_RE.sub(substitute, template)
