"""The ``tag=value`` lists that DKIM keys, DMARC, MTA-STS and TLS-RPT records share (RFC 6376 3.2)."""

from __future__ import annotations

import re

_TAG_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def parse_tag_list(text: str) -> dict[str, str] | None:
    """RFC 6376 3.2 tag=value list; None on a syntax error or a duplicate tag."""
    tags: dict[str, str] = {}
    parts = text.split(";")
    if parts and not parts[-1].strip():
        parts = parts[:-1]  # a trailing ';' is allowed
    for part in parts:
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or not _TAG_RE.match(name) or name in tags:
            return None
        tags[name] = value.strip()
    return tags


def is_tagged(record: str, version: str, required: str) -> bool:
    """True for a tag list that opens with ``v=<version>`` and has a non-empty ``required`` tag.

    Enough for MTA-STS (RFC 8461 3.1, ``id``) and TLS-RPT (RFC 8460 3, ``rua``):
    a receiver ignores either record without them.
    """
    tags = parse_tag_list(record)
    return tags is not None and tags.get("v") == version and next(iter(tags)) == "v" and bool(tags.get(required))
