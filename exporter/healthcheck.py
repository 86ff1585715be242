"""``stack-exporter healthcheck``: ask a running exporter's ``/-/healthy``, exit 0 or 1.

For container health checks (the image's ``HEALTHCHECK``) and exec probes, where no
HTTP client is at hand and ``/-/healthy`` sits behind the web config's TLS and basic
auth like every other path (as with exporter-toolkit: no path is exempt).

It reads the same ``--web.config.file`` as the server:

* TLS on: it speaks HTTPS to the loopback and trusts exactly the server's own
  ``cert_file`` (no host name check: it dials 127.0.0.1, whatever names the certificate
  holds), so it fails on a server that is not the one configured.  A server that
  requires client certificates needs ``--tls.cert-file`` and ``--tls.key-file``.
* Basic auth on: the web config holds bcrypt hashes only, so the credential comes from
  elsewhere: ``--auth.username`` and ``--auth.password-file`` (a file, as a container
  secret is mounted; never a flag or an environment variable, which ``ps`` and
  ``podman inspect`` show).

Every flag has an environment variable (listed in ``--help``), so one ``-e`` beside the
server's own sets it in a container; ``STACK_EXPORTER_WEB_LISTEN_ADDRESS`` and
``STACK_EXPORTER_WEB_CONFIG_FILE`` are read by the server too.  It prints one line and
never the password.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import os
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path

from exporter.schema import MAX_SECRET_BYTES, ConfigError, FileProblem, read_file

ENV_LISTEN_ADDRESS = "STACK_EXPORTER_WEB_LISTEN_ADDRESS"
ENV_WEB_CONFIG = "STACK_EXPORTER_WEB_CONFIG_FILE"
ENV_USER = "STACK_EXPORTER_HEALTHCHECK_USERNAME"
ENV_PASSWORD_FILE = "STACK_EXPORTER_HEALTHCHECK_PASSWORD_FILE"  # noqa: S105 - a variable's name
ENV_CERT_FILE = "STACK_EXPORTER_HEALTHCHECK_CERT_FILE"
ENV_KEY_FILE = "STACK_EXPORTER_HEALTHCHECK_KEY_FILE"
PATH = "/-/healthy"


class Unhealthy(Exception):
    """One line saying why: the exit status is 1."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stack-exporter healthcheck",
        description="Ask the exporter on this host for /-/healthy through its web config's TLS and basic auth;"
        " exit 0 on 200, 1 otherwise.",
    )

    def flag(name: str, dest: str, env: str, help: str, default: str | None = None, metavar: str = "PATH") -> None:
        parser.add_argument(
            name, dest=dest, default=os.environ.get(env) or default, metavar=metavar, help=f"{help} (${env})"
        )

    flag("--web.listen-address", "listen_address", ENV_LISTEN_ADDRESS, "the server's address", ":9847", "ADDR")
    flag("--web.config.file", "web_config_file", ENV_WEB_CONFIG, "the server's web config")
    flag("--auth.username", "username", ENV_USER, "basic-auth user, when the web config has users", metavar="USER")
    flag("--auth.password-file", "password_file", ENV_PASSWORD_FILE, "file holding that user's password")
    flag("--tls.cert-file", "cert_file", ENV_CERT_FILE, "client certificate, when the server requires one")
    flag("--tls.key-file", "key_file", ENV_KEY_FILE, "its key")
    parser.add_argument("--timeout", type=float, default=3.0, metavar="SECONDS", help="give up after (default 3)")
    return parser


def target(address: str) -> tuple[str, int]:
    """The loopback host to dial for a listen address (an all-interfaces one listens there too)."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise Unhealthy(f"invalid --web.listen-address {address!r}: expected HOST:PORT such as :9847")
    host = host.strip("[]")
    if host in ("", "0.0.0.0"):  # noqa: S104 - a listen address read, not bound
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return host, int(port_text)


def basic_auth(args: argparse.Namespace) -> str:
    """The Authorization header from --auth.username and --auth.password-file."""
    if not args.username or not args.password_file:
        raise Unhealthy(
            f"{args.web_config_file}: basic_auth_users is set: give --auth.username and --auth.password-file"
            f" (${ENV_USER}, ${ENV_PASSWORD_FILE})"
        )
    try:
        secret = read_file(Path(args.password_file), MAX_SECRET_BYTES).decode("utf-8")
    except FileProblem as exc:
        raise Unhealthy(f"--auth.password-file {args.password_file}: {exc.reason}") from None
    except UnicodeDecodeError:
        raise Unhealthy(f"--auth.password-file {args.password_file}: not UTF-8 text") from None
    # line ends are the editor's, not the password's: as the config reads *_file secrets
    password = secret.rstrip("\r\n")
    return "Basic " + base64.b64encode(f"{args.username}:{password}".encode()).decode()


def check(args: argparse.Namespace) -> str:
    host, port = target(args.listen_address)
    if args.key_file and not args.cert_file:
        raise Unhealthy("--tls.key-file needs --tls.cert-file")
    config, base = (None, Path.cwd())
    if args.web_config_file:
        try:
            # here, not above: without a web config the check imports no aiohttp (a tenth of a second)
            from exporter.webconfig import read_web_config

            config, base = read_web_config(args.web_config_file)
        except ConfigError as exc:
            raise Unhealthy(str(exc).replace("\n", "; ")) from None
    headers = {}
    if config is not None and config.basic_auth_users:
        headers["Authorization"] = basic_auth(args)
    conn: http.client.HTTPConnection
    tls = config.tls_server_config if config is not None else None
    if tls is not None:
        if tls.client_auth_type in ("RequireAnyClientCert", "RequireAndVerifyClientCert") and not args.cert_file:
            raise Unhealthy(
                f"{args.web_config_file}: client_auth_type {tls.client_auth_type}: give --tls.cert-file and"
                f" --tls.key-file (${ENV_CERT_FILE}, ${ENV_KEY_FILE})"
            )
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        ctx.check_hostname = False  # it dials the loopback; the pinned certificate is the check
        # trust the server's own certificate, even a leaf whose CA is not in the file
        ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        cert = Path(tls.cert_file) if Path(tls.cert_file).is_absolute() else base / tls.cert_file
        try:
            ctx.load_verify_locations(cert)
            if args.cert_file:
                ctx.load_cert_chain(args.cert_file, args.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise Unhealthy(f"cannot load certificates: {getattr(exc, 'strerror', None) or exc}") from None
        conn = http.client.HTTPSConnection(host, port, timeout=args.timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=args.timeout)
    url = f"{'https' if tls else 'http'}://{f'[{host}]' if ':' in host else host}:{port}{PATH}"
    try:
        conn.request("GET", PATH, headers=headers)
        resp = conn.getresponse()
        resp.read(4096)
    except (OSError, http.client.HTTPException) as exc:
        raise Unhealthy(f"{url}: {type(exc).__name__}: {exc}") from None
    finally:
        conn.close()
    if resp.status != 200:
        hint = " (check the health-check credential)" if resp.status == 401 else ""
        raise Unhealthy(f"{url}: HTTP {resp.status} {resp.reason}{hint}")
    return f"{url}: HTTP 200"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        print(check(args))
    except Unhealthy as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
