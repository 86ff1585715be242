"""``--web.config.file``: TLS and basic auth in the Prometheus exporter-toolkit format.

The same file works for node_exporter, so one web config can serve a host's
exporters::

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # optional mTLS
      client_ca_file: ca.crt
      min_version: TLS12
    http_server_config:
      headers: {Strict-Transport-Security: max-age=31536000}
    basic_auth_users:
      prometheus: $2y$10$...        # bcrypt hash (htpasswd -nBC 10 "" | tr -d ':\\n')

Checking a bcrypt hash costs tens of milliseconds by design; a scrape every
15 s would pay it every time, so verified credentials are remembered (a
SHA-256 of the password per user, never the password itself) as
exporter-toolkit does, and checked on the event loop. Everything else goes
through the guards in :mod:`exporter.webguard`: a small bcrypt pool with a
bounded queue and a per-client limit on failed attempts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from exporter.schema import MAX_CONFIG_BYTES, ConfigError, Converter, FileProblem, load_yaml, read_file
from exporter.webguard import (
    ALLOWED,
    BCRYPT_MAX_PASSWORD,
    DENIED,
    BcryptPool,
    FailureLimiter,
    GuardStats,
    Overloaded,
    ServerLimits,
    Verdict,
    client_key,
    retry_after,
)

ClientAuth = Literal[
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
]
TLSVersion = Literal["TLS10", "TLS11", "TLS12", "TLS13"]
_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}


@dataclass(frozen=True, kw_only=True)
class TLSServerConfig:
    cert_file: str
    key_file: str
    client_auth_type: ClientAuth = "NoClientCert"
    client_ca_file: str | None = None
    min_version: TLSVersion = "TLS12"
    max_version: TLSVersion = "TLS13"

    def check(self) -> Iterable[tuple[str, str]]:
        if (
            self.client_auth_type in ("RequireAndVerifyClientCert", "VerifyClientCertIfGiven")
            and not self.client_ca_file
        ):
            yield "client_ca_file", f"required when client_auth_type is {self.client_auth_type}"


@dataclass(frozen=True, kw_only=True)
class HTTPServerConfig:
    http2: bool = True  # accepted for compatibility; aiohttp serves HTTP/1.1
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class WebConfig:
    tls_server_config: TLSServerConfig | None = None
    http_server_config: HTTPServerConfig | None = None
    basic_auth_users: dict[str, str] = field(default_factory=dict)

    def check(self) -> Iterable[tuple[str, str]]:
        for user, hashed in self.basic_auth_users.items():
            if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
                yield f"basic_auth_users.{user}", "must be a bcrypt hash ($2y$...), not a plain password"
            elif not BCRYPT_HASH.fullmatch(hashed):
                yield (
                    f"basic_auth_users.{user}",
                    "is not a valid bcrypt hash: expected $2y$NN$ (cost 04-31) and 53 characters of"
                    " salt and hash, as `htpasswd -nBC 10 USER` prints",
                )


class WebSettings:
    """A loaded web config: the SSL context, the auth check, extra headers and the listener limits."""

    def __init__(self, config: WebConfig, base_dir: Path, source: str, limits: ServerLimits | None = None) -> None:
        self.config = config
        self.limits = limits or ServerLimits()
        self.stats = GuardStats()
        self.ssl_context: ssl.SSLContext | None = None
        problems: list[str] = []
        if config.tls_server_config is not None:
            self.ssl_context = _ssl_context(config.tls_server_config, base_dir, problems)
        if problems:
            raise ConfigError(source, problems)
        self.headers = dict(config.http_server_config.headers) if config.http_server_config else {}
        self._users = {u: h.encode() for u, h in config.basic_auth_users.items()}
        # user -> SHA-256 of the password bcrypt last accepted (one entry per configured user)
        self._verified: dict[str, bytes] = {}
        # unknown users pay a bcrypt of the same cost as the configured hashes
        costs = [int(m[1]) for h in config.basic_auth_users.values() if (m := BCRYPT_HASH.fullmatch(h))]
        cost = max(costs, default=10)
        self.bcrypt = BcryptPool(self.limits.bcrypt_threads, self.limits.bcrypt_queue, cost)
        self.limiter = FailureLimiter(
            self.limits.auth_failure_rate, self.limits.auth_failure_burst, self.limits.auth_clients, time.monotonic
        )

    @property
    def auth_required(self) -> bool:
        return bool(self._users)

    def _fail(self, reason: str, verdict: Verdict = DENIED) -> Verdict:
        self.stats.auth_failures[reason] += 1
        return verdict

    async def authenticate(self, header: str | None, remote: str | None) -> Verdict:
        """Check basic auth: cached good credentials on the loop, the rest through bcrypt, rate-limited."""
        if not self._users:
            return ALLOWED
        if not header:
            return self._fail("missing")
        if header[:6].lower() != "basic ":  # the scheme is case-insensitive (RFC 9110 11.1)
            return self._fail("malformed")
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return self._fail("malformed")
        secret = password.encode()
        digest = hashlib.sha256(secret).digest()
        if hmac.compare_digest(self._verified.get(user, _NO_DIGEST), digest):
            return ALLOWED
        client = client_key(remote)
        wait = self.limiter.take(client)
        if wait:
            return self._fail("rate_limited", Verdict(False, 429, retry_after(wait)))
        hashed = self._users.get(user)
        # bcrypt reads 72 bytes at most: a longer password still pays a check, then fails
        try:
            ok = await self.bcrypt.check(secret[:BCRYPT_MAX_PASSWORD], hashed)
        except Overloaded:
            return self._fail("overloaded", Verdict(False, 503, 1))
        if ok and len(secret) <= BCRYPT_MAX_PASSWORD:
            self._verified[user] = digest
            self.limiter.refund(client)
            return ALLOWED
        return self._fail("invalid")


# compared against when a user has no cached digest: the compare costs the same
_NO_DIGEST = bytes(32)
# $2y$ + two-digit cost + 22 characters of salt (the last holds 2 bits) + 31 of hash
BCRYPT_HASH = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{21}[.Oeu][./A-Za-z0-9]{31}")


def _ssl_context(tls: TLSServerConfig, base_dir: Path, problems: list[str]) -> ssl.SSLContext | None:
    def resolve(p: str) -> str:
        path = Path(p)
        return str(path if path.is_absolute() else base_dir / path)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _VERSIONS[tls.min_version]
    ctx.maximum_version = _VERSIONS[tls.max_version]
    try:
        ctx.load_cert_chain(resolve(tls.cert_file), resolve(tls.key_file))
    except (OSError, ssl.SSLError) as exc:
        problems.append(
            f"tls_server_config.cert_file/key_file: cannot load {tls.cert_file!r} and {tls.key_file!r}: "
            f"{getattr(exc, 'strerror', None) or exc}"
        )
        return None
    if tls.client_auth_type != "NoClientCert":
        # Python cannot ask for a certificate without verifying it, so the
        # "Request" and "RequireAny" modes verify against the CA when one is given.
        required = tls.client_auth_type in ("RequireAnyClientCert", "RequireAndVerifyClientCert")
        ctx.verify_mode = ssl.CERT_REQUIRED if required else ssl.CERT_OPTIONAL
        if tls.client_ca_file:
            try:
                ctx.load_verify_locations(resolve(tls.client_ca_file))
            except (OSError, ssl.SSLError) as exc:
                problems.append(
                    f"tls_server_config.client_ca_file: cannot load {tls.client_ca_file!r}: "
                    f"{getattr(exc, 'strerror', None) or exc}"
                )
        else:
            ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    return ctx


def default_web_settings(limits: ServerLimits | None = None) -> WebSettings:
    """No --web.config.file: plain HTTP, no auth, the listener limits still apply."""
    return WebSettings(WebConfig(), Path.cwd(), "<defaults>", limits)


def read_web_config(path: str) -> tuple[WebConfig, Path]:
    """The web config and the folder its relative paths start from (the server's and the health check's)."""
    file = Path(path)
    try:
        # a regular file of bounded size: a FIFO or /dev/zero is refused, never read
        text = read_file(file, MAX_CONFIG_BYTES).decode("utf-8")
    except FileProblem as exc:
        raise ConfigError(path, [f"cannot read web config file: {exc.reason}"]) from None
    except UnicodeDecodeError:
        raise ConfigError(path, ["cannot read web config file: not UTF-8 text"]) from None
    raw = load_yaml(text, path)
    conv = Converter(file.parent.resolve())
    config = conv.convert(WebConfig, raw or {}, "")
    if conv.problems or config is None:
        raise ConfigError(path, conv.problems)
    return config, file.parent.resolve()


def load_web_config(path: str, limits: ServerLimits | None = None) -> WebSettings:
    config, base = read_web_config(path)
    return WebSettings(config, base, path, limits)
