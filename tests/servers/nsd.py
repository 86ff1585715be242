"""NSD, an authoritative DNS server, on loopback for the test suite.

The suite writes the zone files.  NSD answers REFUSED for names outside its
zones, so tests that need clean NXDOMAIN answers serve a parent zone (``test.``)
that holds every test domain.  A zone listed in ``broken_zones`` is configured
with a file that does not parse: NSD then answers SERVFAIL for its names.

Loaded with ``pytest_plugins = ["tests.servers.nsd"]``; the ``nsd_factory``
fixture starts servers and stops them when the test session ends.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest

from peers.process import LOOPBACK, Process, ProcessError, free_port, wait_until

NSD = "/usr/sbin/nsd"
NSD_CHECKZONE = "/usr/sbin/nsd-checkzone"
START_TIMEOUT = 10.0
_PORT_ATTEMPTS = 3

SOA = "@ 300 IN SOA ns.{origin} hostmaster.{origin} 1 3600 600 86400 {negative_ttl}\n@ 300 IN NS ns.{origin}\n"


def zone_text(origin: str, records: Sequence[str], *, negative_ttl: int = 60) -> str:
    """A zone file: SOA and NS, then ``records`` (relative or absolute names, zone-file syntax)."""
    origin = origin.rstrip(".") + "."
    head = f"$ORIGIN {origin}\n$TTL 300\n" + SOA.format(origin=origin, negative_ttl=negative_ttl)
    return head + f"ns.{origin} IN A 127.0.0.1\n" + "".join(r.rstrip("\n") + "\n" for r in records)


def txt(text: str) -> str:
    """A TXT rdata in zone syntax, split into 255-byte strings as RFC 7208 3.3 allows."""
    chunks = [text[i : i + 255] for i in range(0, len(text), 255)] or [""]
    return " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)


def _udp_port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


class NsdServer:
    """``nsd -d`` with its config, zones, pid file and log in one directory."""

    def __init__(
        self,
        tmpdir: Path,
        zones: Mapping[str, str],
        broken_zones: Sequence[str] = (),
    ) -> None:
        self.dir = Path(tmpdir)
        self.zones = dict(zones)
        self.broken_zones = list(broken_zones)
        self.port = free_port()
        self.process: Process | None = None

    def __repr__(self) -> str:
        return f"<NsdServer {LOOPBACK}:{self.port}>"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running

    def _write(self) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = [
            "server:",
            f"  ip-address: {LOOPBACK}",
            f"  port: {self.port}",
            '  username: ""',
            '  chroot: ""',
            '  database: ""',
            f'  zonesdir: "{self.dir}"',
            f'  pidfile: "{self.dir / "nsd.pid"}"',
            f'  logfile: "{self.dir / "nsd.log"}"',
            f'  xfrdfile: "{self.dir / "xfrd.state"}"',
            f'  zonelistfile: "{self.dir / "zone.list"}"',
            "  server-count: 1",
            "  verbosity: 1",
            "remote-control:",
            "  control-enable: no",
        ]
        for origin, text in self.zones.items():
            file = self.dir / f"{origin.rstrip('.')}.zone"
            file.write_text(text)
            check = subprocess.run(
                [NSD_CHECKZONE, origin, str(file)], capture_output=True, text=True, check=False, timeout=30
            )
            if check.returncode != 0:
                raise ProcessError(f"zone {origin} does not load:\n{check.stdout}{check.stderr}")
            conf += ["zone:", f"  name: {origin}", f'  zonefile: "{file}"']
        for origin in self.broken_zones:
            file = self.dir / f"{origin.rstrip('.')}.zone"
            file.write_text("this is not a zone file\n")
            conf += ["zone:", f"  name: {origin}", f'  zonefile: "{file}"']
        path = self.dir / "nsd.conf"
        path.write_text("\n".join(conf) + "\n")
        return path

    def start(self) -> None:
        """Start and wait until the TCP port answers; picks another port if ours was taken."""
        for attempt in range(_PORT_ATTEMPTS):
            if not _udp_port_free(self.port):
                self.port = free_port()
                continue
            conf = self._write()
            self.process = Process([NSD, "-d", "-c", str(conf)], self.dir / "stdout.log", cwd=self.dir)
            self.process.start()
            try:
                self._wait_ready()
                return
            except ProcessError:
                self.process.kill()
                if attempt == _PORT_ATTEMPTS - 1:
                    raise
                self.port = free_port()
        raise ProcessError(f"{self!r}: no free port")

    def _wait_ready(self) -> None:
        process = self.process
        assert process is not None

        def answers() -> bool:
            process.check_running()
            try:
                with socket.create_connection((LOOPBACK, self.port), timeout=0.2):
                    return True
            except OSError:
                return False

        try:
            wait_until(answers, START_TIMEOUT, message=f"{self!r} accepts TCP")
        except TimeoutError as exc:
            raise ProcessError(f"{exc}; log:\n{process.log_tail()}") from exc

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM (nsd stops its children too); safe to call twice."""
        if self.process is not None:
            self.process.stop(timeout)

    def restart(self) -> None:
        self.stop()
        self.start()


NsdFactory = Callable[..., NsdServer]


@pytest.fixture(scope="session")
def nsd_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NsdFactory]:
    """``nsd_factory(zones, broken_zones=())`` -> a running NsdServer, stopped at session end."""
    if not Path(NSD).exists():
        pytest.fail("nsd is missing: make test-deps installs it (Debian package nsd)")
    servers: list[NsdServer] = []

    def make(zones: Mapping[str, str], broken_zones: Sequence[str] = ()) -> NsdServer:
        server = NsdServer(tmp_path_factory.mktemp("nsd"), zones, broken_zones)
        servers.append(server)
        server.start()
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.stop()
