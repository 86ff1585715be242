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
3. **Encoded credentials by their shape**: ``Basic <base64>`` whose base64 decodes to
   ``user:password``, wherever it appears (a server echoing our request headers back in
   an error body, in any format), and AWS SigV4's ``Signature=<hex>``
   (``Credential=<access key id>/...`` is a secret field of layer 2).
4. **Known secret values** from the config, replaced wherever they appear, together
   with the forms the exporter sends them in: base64 (what HTTP basic auth carries:
   ``base64("api:" + key)`` contains, whatever the user name, one of three fixed
   base64 strings of the key, so the whole base64 run around one is masked, padded
   or not, standard or URL-safe alphabet) and percent-encoding.  Also every
   credential header value the HTTP client actually sent (:func:`remember_sent`),
   whole.  Only values at least :data:`MIN_SUBSTRING_LENGTH` characters long: a
   short value cannot be told from ordinary text (a one-letter password would turn
   ``exporter`` into ``e<redacted>porter``), so short secrets are masked by layers
   1 to 3 only.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

MASK = "<redacted>"

# Known secrets shorter than this are not replaced as substrings. Eight characters is
# the shortest password current guidance accepts (NIST SP 800-63B), and the shortest
# string that does not turn up by chance in words, hostnames, metric names and numbers
# (a 3-character secret is found inside ordinary English and SQL; 8 random characters
# from even a 36-symbol alphabet are one of 2.8e12). Every credential the exporter
# itself is given in practice (API keys, tokens, generated passwords) is far longer.
MIN_SUBSTRING_LENGTH = 8

# the scheme starts where a run of scheme characters starts: trying every position in a long
# run of letters (a base64 blob in an error body) made this quadratic (100 s for 200 kB)
_USERINFO_RE = re.compile(
    r"(?<![a-zA-Z0-9+.-])(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:@/\s]*):(?P<pw>[^@/\s]*)@"
)

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


# "Basic <token>" anywhere: masked when the token decodes to user:password (so "Basic plan" stays)
_BASIC_RE = re.compile(r"(?P<key>\bBasic\s+)(?P<value>[A-Za-z0-9+/_-]{4,}={0,2})(?![A-Za-z0-9+/_=-])")
# AWS SigV4: Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=<64 hex>,
# and X-Amz-Signature=<hex> in a presigned URL
_SIGNATURE_RE = re.compile(r"(?P<key>(?<![\w.-])(?:X-Amz-)?Signature=)(?P<value>[0-9a-fA-F]{16,})", re.IGNORECASE)
# the characters of a base64 run, either alphabet: the run around an encoded secret is masked whole
_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-")
# remembered header values kept at most: they come from the config, so a handful in practice
MAX_REMEMBERED = 256


def _decodes_to_credentials(token: str) -> bool:
    """True if ``token`` is base64 of printable ``user:password`` text."""
    padded = token.rstrip("=")
    padded += "=" * (-len(padded) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return False
    return ":" in text and text.isprintable()


def mask_encoded_credentials(text: str) -> str:
    """``Basic <base64 of user:password>`` and SigV4 ``Signature=<hex>`` masked anywhere in ``text``."""
    text = _BASIC_RE.sub(lambda m: _mask_value(m) if _decodes_to_credentials(m["value"]) else m.group(0), text)
    return _SIGNATURE_RE.sub(_mask_value, text)


def encoded_forms(secret: str) -> set[str]:
    """Strings that appear in any encoding the exporter sends ``secret`` in, whatever surrounds it.

    Base64 works on 3-byte groups, so ``base64(prefix + secret + suffix)`` contains
    ``base64(secret[o:o + 3k])`` verbatim for the one offset ``o`` in 0..2 that lines
    up with the prefix's length: the three such strings (in both alphabets) find the
    secret inside any basic-auth pair.  Plus the percent-encoded form.
    """
    raw = secret.encode("utf-8")
    forms = set()
    for offset in range(3):
        chunk = raw[offset : offset + (len(raw) - offset) // 3 * 3]
        if len(chunk) >= 6:
            forms.add(base64.b64encode(chunk).decode("ascii"))
            forms.add(base64.urlsafe_b64encode(chunk).decode("ascii"))
    quoted = quote(secret, safe="")
    if quoted != secret:
        forms.add(quoted)
    return forms


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
    """Masks credentials in text (see the module doc); one per process, shared by logs and pages."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: frozenset[str] = frozenset()
        self._sent: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._encoded: re.Pattern[str] | None = None
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        """The config's secrets (replaces the previous config's; remembered header values stay)."""
        self._secrets = frozenset(secrets)
        self._compile()

    def remember(self, values: Iterable[str]) -> None:
        """Credential header values the process sent (``Basic ...``, ``Bearer ...``): masked whole from now on.

        The value and its token (after the scheme) are masked wherever they appear, and
        the secret inside a basic-auth token as in :func:`encoded_forms`.
        """
        new = set()
        for value in values:
            value = value.strip()
            if not value or value in self._sent:
                continue
            new.add(value)
            scheme, _, token = value.partition(" ")
            if token.strip():
                new.add(token.strip())
                if scheme.lower() == "basic":
                    new.add(token.strip().rstrip("="))
                    new.update(_basic_password(token.strip()))
        new -= self._sent
        if new and len(self._sent) < MAX_REMEMBERED:
            self._sent |= new
            self._compile()

    def _compile(self) -> None:
        # longest first, so a secret containing another is masked whole; short ones are
        # left to the URL, field and shape layers (see MIN_SUBSTRING_LENGTH)
        known = {s for s in self._secrets | self._sent if len(s) >= MIN_SUBSTRING_LENGTH}
        literal = sorted(known, key=len, reverse=True)
        encoded = sorted({form for s in known for form in encoded_forms(s)} - known, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, literal))) if literal else None
        self._encoded = re.compile("|".join(map(re.escape, encoded))) if encoded else None

    def redact(self, text: str) -> str:
        text = mask_secret_fields(mask_encoded_credentials(mask_url_password(text)))
        if self._encoded is not None:
            text = _mask_runs(text, self._encoded)
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        return text


def _mask_runs(text: str, cores: re.Pattern[str]) -> str:
    """Mask the whole base64 run (padding included) around every match of ``cores``.

    The run is found by walking out from the match rather than by a regex with
    ``[...]*`` on both sides, which backtracks quadratically over a long base64 blob.
    """
    spans: list[tuple[int, int]] = []
    for match in cores.finditer(text):
        start, end = match.span()
        if spans and start < spans[-1][1]:
            continue  # inside the run already masked
        while start > 0 and text[start - 1] in _B64_CHARS:
            start -= 1
        while end < len(text) and text[end] in _B64_CHARS:
            end += 1
        while end < len(text) and text[end] == "=":
            end += 1
        spans.append((start, end))
    if not spans:
        return text
    out, last = [], 0
    for start, end in spans:
        out += [text[last:start], MASK]
        last = end
    out.append(text[last:])
    return "".join(out)


def _basic_password(token: str) -> list[str]:
    """The password inside a basic-auth token, so its other encodings are known too."""
    padded = token.rstrip("=") + "=" * (-len(token.rstrip("=")) % 4)
    try:
        text = base64.b64decode(padded, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return []
    return [text.partition(":")[2]] if ":" in text else []


def remember_sent(redact: Callable[[str], str], headers: Mapping[str, str] | None) -> None:
    """Tell the :class:`Redactor` behind ``redact`` (a collector's ``ctx.redact``) the credential headers sent.

    Only headers whose name says they carry a credential (``Authorization``,
    ``X-Postmark-Server-Token``...).  A plain function (tests, no engine) has no
    Redactor behind it, and nothing is remembered.
    """
    if not headers:
        return
    owner = getattr(redact, "__self__", None)
    if isinstance(owner, Redactor):
        owner.remember(v for k, v in headers.items() if is_secret_key(k))
