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
15 s would pay it every time, so verified credentials are remembered (by a
SHA-256 of the pair, never the password itself) as exporter-toolkit does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ssl
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import bcrypt

from exporter.schema import ConfigError, Converter, load_yaml

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


class WebSettings:
    """A loaded web config: the SSL context, the auth check and extra headers."""

    def __init__(self, config: WebConfig, base_dir: Path, source: str) -> None:
        self.config = config
        self.ssl_context: ssl.SSLContext | None = None
        problems: list[str] = []
        if config.tls_server_config is not None:
            self.ssl_context = _ssl_context(config.tls_server_config, base_dir, problems)
        if problems:
            raise ConfigError(source, problems)
        self.headers = dict(config.http_server_config.headers) if config.http_server_config else {}
        self._users = {u: h.encode() for u, h in config.basic_auth_users.items()}
        self._verified: OrderedDict[bytes, bool] = OrderedDict()

    @property
    def auth_required(self) -> bool:
        return bool(self._users)

    def authorized(self, header: str | None) -> bool:
        if not self._users:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        hashed = self._users.get(user)
        key = hashlib.sha256(f"{user}\0{password}".encode()).digest()
        if hashed is None:
            # spend the same time as a real check so user names cannot be probed
            bcrypt.checkpw(b"x", _DUMMY_HASH)
            return False
        for cached_key, ok in self._verified.items():
            if hmac.compare_digest(cached_key, key):
                return ok
        ok = bcrypt.checkpw(password.encode(), hashed)
        if ok:
            self._verified[key] = True
            while len(self._verified) > 256:
                self._verified.popitem(last=False)
        return ok


_DUMMY_HASH = bcrypt.hashpw(b"dummy", bcrypt.gensalt(rounds=4))


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


def load_web_config(path: str) -> WebSettings:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [f"cannot read web config file: {getattr(exc, 'strerror', None) or exc}"]) from None
    raw = load_yaml(text, path)
    conv = Converter(file.parent.resolve())
    config = conv.convert(WebConfig, raw or {}, "")
    if conv.problems or config is None:
        raise ConfigError(path, conv.problems)
    return WebSettings(config, file.parent.resolve(), path)
