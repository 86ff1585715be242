"""Keep credentials out of logs, error messages and pages.

Two layers: URL userinfo passwords are masked wherever a URL is printed, and
every secret value known from the config (passwords, API keys, tokens, file
contents) is replaced in any text that leaves the process through the log
formatter or an error message, whichever library produced the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

MASK = "<redacted>"

_USERINFO_RE = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:@/\s]*):(?P<pw>[^@/\s]*)@")


def mask_url_password(text: str) -> str:
    """``redis://u:pw@h`` -> ``redis://u:<redacted>@h`` anywhere in ``text``."""
    return _USERINFO_RE.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)


def url_without_userinfo(url: str) -> str:
    """The URL with user and password removed, for display."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return mask_url_password(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._pattern: re.Pattern[str] | None = None
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        # longest first, so a secret containing another is masked whole
        values = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, values))) if values else None

    def redact(self, text: str) -> str:
        text = mask_url_password(text)
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        return text
