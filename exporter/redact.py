"""Keep credentials out of logs, error messages and pages.

Every text that leaves the process (log lines, collection errors, the landing page,
label values built from server text) goes through :meth:`Redactor.redact`, which
masks credentials by where they are and by what they are:

1. **URL userinfo**: ``redis://user:pw@host`` -> ``redis://user:<redacted>@host``,
   whatever the password's length.
2. **Secret fields**: the value of a key that names a credential, in the forms a log
   line, an error, a DSN or a request prints it: ``password=x`` (logfmt, libpq
   DSNs, URL queries), ``"api_key": "x"`` (JSON, Python reprs), ``Authorization:
   Bearer x`` and ``X-Api-Key: x`` (HTTP headers), ``Bearer x``.
3. **Known secret values** from the config, replaced wherever they appear, but only
   when at least :data:`MIN_SUBSTRING_LENGTH` characters long: a short value cannot
   be told from ordinary text (a one-letter password would turn ``exporter`` into
   ``e<redacted>porter``), so short secrets are masked by layers 1 and 2 only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "<redacted>"

# Known secrets shorter than this are not replaced as substrings. Eight characters is
# the shortest password current guidance accepts (NIST SP 800-63B), and the shortest
# string that does not turn up by chance in words, hostnames, metric names and numbers
# (a 3-character secret is found inside ordinary English and SQL; 8 random characters
# from even a 36-symbol alphabet are one of 2.8e12). Every credential the exporter
# itself is given in practice (API keys, tokens, generated passwords) is far longer.
MIN_SUBSTRING_LENGTH = 8

_USERINFO_RE = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:@/\s]*):(?P<pw>[^@/\s]*)@")

# A key naming a credential: password, passwd, pwd, secret, token, api_key/apikey/api-key,
# access key (id), authorization, credential(s), private key; with any prefix or suffix
# (server_token, secret_access_key, X-Postmark-Server-Token), except a *_file key, which
# holds the path of a secret, not the secret.
_SECRET_WORD = (
    r"(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key(?:[_-]?id)?"  # noqa: S105 - names, not values
    r"|authorization|credentials?|private[_-]?key)"
)
_SECRET_KEY_RE = re.compile(rf"^[\w.-]*{_SECRET_WORD}[\w.-]*$", re.IGNORECASE)
_KEY = rf"[\w.-]*{_SECRET_WORD}(?![\w.-]*_file\b)[\w.-]*"
_VALUE = r"""(?:"(?:[^"\\]|\\.)*"|'[^']*'|[^\s&;,'"()\[\]{}<>]+)"""
_FIELD_RES = (
    # password=x, password="x y" (logfmt, libpq key=value DSNs, URL queries)
    # (no spaces around "=": SQL's "WHERE password_hash = crypt(...)" is not a field)
    re.compile(rf"(?P<key>(?<![\w.-]){_KEY}=)(?P<value>{_VALUE})", re.IGNORECASE),
    # "password": "x" and 'password': 'x' (JSON, Python reprs)
    re.compile(
        rf"""(?P<key>(?P<q>["']){_KEY}(?P=q)\s*:\s*)(?P<value>"(?:[^"\\]|\\.)*"|'[^']*'|[^\s,}}]+)""",
        re.IGNORECASE,
    ),
    # HTTP headers: Authorization: Bearer x, X-Api-Key: x. Only header-shaped keys (a
    # hyphenated name, or Authorization), so a config error such as
    # "redis[0].password: set password or password_file" keeps its words.
    re.compile(
        rf"(?P<key>(?<![\w.-])(?:(?:proxy-)?authorization|[a-z]+(?:-[a-z0-9]+)*-{_SECRET_WORD}(?:-[a-z0-9]+)*)"
        r"\s*:\s*(?:(?:Bearer|Basic|Token|Bot)\s+)?)(?P<value>[^\s,;\"']+)",
        re.IGNORECASE,
    ),
    # a bearer token printed on its own
    re.compile(r"(?P<key>\bBearer\s+)(?P<value>[A-Za-z0-9._~+/=-]+)"),
)


def mask_url_password(text: str) -> str:
    """``redis://u:pw@h`` -> ``redis://u:<redacted>@h`` anywhere in ``text``."""
    return _USERINFO_RE.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)


def mask_secret_fields(text: str) -> str:
    """The value of every credential-naming key in ``text`` masked (see the module doc)."""
    for pattern in _FIELD_RES:
        text = pattern.sub(_mask_value, text)
    return text


def _mask_value(match: re.Match[str]) -> str:
    value = match["value"]
    if value == MASK or value.strip("\"'") == MASK:
        return match.group(0)
    quote = value[0] if value[:1] in ('"', "'") and value[-1:] == value[:1] and len(value) > 1 else ""
    return f"{match['key']}{quote}{MASK}{quote}"


def is_secret_key(key: str) -> bool:
    """True if a field called ``key`` holds a credential (``password``, ``api_key``, ``X-Auth-Token``...)."""
    return bool(_SECRET_KEY_RE.match(key)) and not key.lower().endswith("_file")


def redact_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` with the value of every credential-naming key masked."""
    return {k: MASK if is_secret_key(str(k)) and v not in (None, "") else v for k, v in fields.items()}


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
        # longest first, so a secret containing another is masked whole; short ones are
        # left to the URL and field layers (see MIN_SUBSTRING_LENGTH)
        values = sorted({s for s in secrets if len(s) >= MIN_SUBSTRING_LENGTH}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, values))) if values else None

    def redact(self, text: str) -> str:
        text = mask_secret_fields(mask_url_password(text))
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        return text
