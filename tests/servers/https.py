"""A real HTTP/HTTPS server on loopback with certificates of known expiry, for the HTTP probes.

``openssl`` (the command; the ``cryptography`` package is not installed) makes a
test CA and signs leaf certificates with exact notBefore/notAfter dates
(``openssl ca -startdate/-enddate``), so tests can assert the expiry timestamp:

* ``valid``: CA-signed for localhost and 127.0.0.1, expires in 90 days;
* ``expiring``: the same, expires in 5 days;
* ``expired``: expired yesterday;
* ``wronghost``: CA-signed for wrong.example only;
* ``selfsigned``: signed by its own key, not the CA.

One aiohttp app serves every port: plain HTTP and one TLS port per
certificate, from a thread with its own event loop (a separate server as far
as the exporter under test is concerned).  Endpoints: ``/ok``, ``/redirect/N``
(N hops, then /ok), ``/status/CODE``, ``/slow?seconds=S``, ``/cache/...``
(CDN-style cache headers).  Loaded with ``pytest_plugins``; the fixture is
``https_server`` (session-scoped).
"""

from __future__ import annotations

import asyncio
import calendar
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from peers.process import LOOPBACK, free_port

OPENSSL = "openssl"
DAY = 86400
HEALTHY_BODY = "healthy: all systems go"

_CA_CONF = """\
[ca]
default_ca = testca
[testca]
dir = {dir}
database = {dir}/index.txt
new_certs_dir = {dir}/newcerts
serial = {dir}/serial
default_md = sha256
policy = anything
copy_extensions = copy
unique_subject = no
[anything]
commonName = supplied
"""


@dataclass(frozen=True)
class Cert:
    name: str
    cert: Path
    key: Path
    not_after: float  # unix time, to the second


def _openssl(*args: str) -> str:
    proc = subprocess.run([OPENSSL, *args], capture_output=True, text=True, check=False, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout


def _asn1_time(unix: float) -> str:
    return time.strftime("%Y%m%d%H%M%SZ", time.gmtime(unix))


class CertFactory:
    """A throwaway CA in ``dir`` and leaf certificates with chosen dates."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "newcerts").mkdir(exist_ok=True)
        (self.dir / "index.txt").write_text("")
        (self.dir / "serial").write_text("1000\n")
        (self.dir / "ca.cnf").write_text(_CA_CONF.format(dir=self.dir))
        self.ca_key = self.dir / "ca.key"
        self.ca_cert = self.dir / "ca.pem"
        _openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(self.ca_key), "-out", str(self.ca_cert),
            "-days", "30", "-subj", "/CN=stack-exporter test CA",
        )  # fmt: skip

    def leaf(self, name: str, hosts: list[str], not_before: float, not_after: float) -> Cert:
        # whole seconds: that is what the certificate can hold
        not_before, not_after = float(int(not_before)), float(int(not_after))
        key, csr, cert = (self.dir / f"{name}.{ext}" for ext in ("key", "csr", "pem"))
        _openssl(
            "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
            "-subj", f"/CN={hosts[0]}", "-addext", "subjectAltName=" + ",".join(_san(h) for h in hosts),
        )  # fmt: skip
        _openssl(
            "ca", "-batch", "-config", str(self.dir / "ca.cnf"), "-cert", str(self.ca_cert),
            "-keyfile", str(self.ca_key), "-in", str(csr), "-out", str(cert), "-notext",
            "-startdate", _asn1_time(not_before), "-enddate", _asn1_time(not_after),
        )  # fmt: skip
        return Cert(name, cert, key, not_after)

    def self_signed(self, name: str, hosts: list[str], days: int) -> Cert:
        key, cert = self.dir / f"{name}.key", self.dir / f"{name}.pem"
        _openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
            "-days", str(days), "-subj", f"/CN={hosts[0]}",
            "-addext", "subjectAltName=" + ",".join(_san(h) for h in hosts),
        )  # fmt: skip
        # "notAfter=May  1 12:00:00 2026 GMT": read back what openssl chose
        text = _openssl("x509", "-in", str(cert), "-noout", "-enddate").strip().split("=", 1)[1]
        not_after = calendar.timegm(time.strptime(text, "%b %d %H:%M:%S %Y GMT"))
        return Cert(name, cert, key, float(not_after))


def _san(host: str) -> str:
    return f"IP:{host}" if host.replace(".", "").isdigit() else f"DNS:{host}"


# --------------------------------------------------------------------------- the app


async def ok(request: web.Request) -> web.Response:
    return web.Response(text=HEALTHY_BODY)


async def redirect(request: web.Request) -> web.Response:
    hops = int(request.match_info["hops"])
    target = "/ok" if hops <= 1 else f"/redirect/{hops - 1}"
    raise web.HTTPFound(target)


async def status(request: web.Request) -> web.Response:
    return web.Response(status=int(request.match_info["code"]), text="status as requested")


async def slow(request: web.Request) -> web.Response:
    # bounded, so a forgotten request cannot hold the server
    await asyncio.sleep(min(float(request.query.get("seconds", "5")), 30))
    return web.Response(text=HEALTHY_BODY)


CACHE_HEADERS: dict[str, dict[str, str]] = {
    "xcache-hit": {"Cache-Control": "public, max-age=3600", "X-Cache": "Hit from cloudfront"},
    "cf-miss": {"Cache-Control": "public, max-age=60", "CF-Cache-Status": "MISS", "Age": "0"},
    "age": {"Cache-Control": "public, s-maxage=600, max-age=300", "Age": "120"},
    "none": {"Cache-Control": "no-store"},
}


async def cache(request: web.Request) -> web.Response:
    return web.Response(text="static asset", headers=CACHE_HEADERS[request.match_info["kind"]])


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/redirect/{hops:\\d+}", redirect)
    app.router.add_route("*", "/status/{code:\\d+}", status)
    app.router.add_get("/slow", slow)
    app.router.add_get("/cache/{kind}", cache)
    return app


class HttpsServer:
    """Plain HTTP plus one TLS port per certificate, served from a background thread."""

    def __init__(self, directory: Path) -> None:
        certs = CertFactory(directory)
        now = time.time()
        local = ["localhost", LOOPBACK]
        self.ca_file = certs.ca_cert
        self.certs = {
            "valid": certs.leaf("valid", local, now - DAY, now + 90 * DAY),
            "expiring": certs.leaf("expiring", local, now - DAY, now + 5 * DAY),
            "expired": certs.leaf("expired", local, now - 30 * DAY, now - DAY),
            "wronghost": certs.leaf("wronghost", ["wrong.example"], now - DAY, now + 90 * DAY),
            "selfsigned": certs.self_signed("selfsigned", local, 30),
        }
        self.http_port = free_port()
        self.ports = {name: free_port() for name in self.certs}
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="https-test-server", daemon=True)

    def url(self, path: str, cert: str | None = None, host: str = LOOPBACK) -> str:
        if cert is None:
            return f"http://{host}:{self.http_port}{path}"
        return f"https://{host}:{self.ports[cert]}{path}"

    async def _start(self) -> None:
        self._runner = web.AppRunner(make_app(), shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, LOOPBACK, self.http_port).start()
        for name, cert in self.certs.items():
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert.cert, cert.key)
            await web.TCPSite(self._runner, LOOPBACK, self.ports[name], ssl_context=context).start()

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._runner = None
        # handlers still running (a /slow whose client gave up) end here, not at interpreter exit
        asyncio.run_coroutine_threadsafe(_cancel_others(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


async def _cancel_others() -> None:
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


@pytest.fixture(scope="session")
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsServer]:
    server = HttpsServer(tmp_path_factory.mktemp("https"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
