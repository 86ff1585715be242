"""DMARC policy records (RFC 7489 6.3, 6.6.3): the policy a receiver would apply, and its options."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from exporter.collectors.email_domains.taglist import parse_tag_list

DMARC_POLICIES = ("none", "quarantine", "reject")
ALIGNMENT_MODES = {"r": "relaxed", "s": "strict"}
_DMARC_RE = re.compile(r"^v\s*=\s*DMARC1\s*(;|$)")
# 6.4: a URI optionally suffixed "!size"; mailto: is what everyone uses, any scheme parses
_REPORT_URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s!]+(![0-9]+[kmgt]?)?$")


@dataclass
class DmarcResult:
    records: int = 0
    valid: bool = False
    policy: str | None = None
    subdomain_policy: str | None = None
    pct: int | None = None
    rua: bool = False
    ruf: bool = False
    adkim: str | None = None
    aspf: str | None = None


def _valid_report_uris(value: str) -> bool:
    uris = [u.strip() for u in value.split(",")]
    return bool(uris) and all(_REPORT_URI_RE.match(u) for u in uris)


def check_dmarc(records: Sequence[str]) -> DmarcResult:
    """The verdict on the TXT records found at ``_dmarc.<domain>``.

    Every tag is read even after a bad one, so a record with one typo still
    shows its policy and options beside ``valid`` 0.
    """
    result = DmarcResult()
    candidates = [r for r in records if _DMARC_RE.match(r)]
    result.records = len(candidates)
    if len(candidates) != 1:
        return result  # 6.6.3: none, or several, means no DMARC policy applies
    tags = parse_tag_list(candidates[0])
    if tags is None:
        return result
    ok = True
    policy = tags.get("p", "").lower()
    if policy in DMARC_POLICIES:
        result.policy = policy
    else:
        ok = False
    sp = tags.get("sp")
    if sp is None:
        result.subdomain_policy = result.policy
    elif sp.lower() in DMARC_POLICIES:
        result.subdomain_policy = sp.lower()
    else:
        ok = False
    pct = tags.get("pct", "100")
    if pct.isdigit() and 0 <= int(pct) <= 100:
        result.pct = int(pct)
    else:
        ok = False
    for tag in ("adkim", "aspf"):
        mode = ALIGNMENT_MODES.get(tags.get(tag, "r").lower())
        if mode is None:
            ok = False
        setattr(result, tag, mode)
    for tag in ("rua", "ruf"):
        if tag in tags:
            if _valid_report_uris(tags[tag]):
                setattr(result, tag, True)
            else:
                ok = False
    result.valid = ok
    return result
