"""The container image, built from the Dockerfile and run with podman (``make image-test``).

No registry is reachable, so the base is Debian 12 from Debian's own packages
(scripts/image-base.sh: debootstrap, cached between runs), passed as the Dockerfile's
``BASE``.  One container runs the way the README says, with TLS and basic auth on, a
read-only root filesystem and no tmpfs either: it scrapes a real Redis, runs as its
non-root user, passes the image's own HEALTHCHECK and stops on SIGTERM within seconds.
That test is marked ``image``; the health check's own test runs on the host, no podman.

Podman here needs the runc runtime and ``default_ulimits = []`` (crun cannot set rlimits
in this sandbox), and pip inside ``RUN`` trusts the host's CA bundle (an intercepting
proxy): ../shared/real-peers.md.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import bcrypt
import pytest

from peers.process import free_port, wait_until
from tests.helpers import ROOT, ExporterProcess, self_signed_cert, value, write_config
from tests.servers.redis import RedisServer

BASE = "localhost/base:bookworm"
IMAGE = "localhost/stack-exporter:test"
LABEL = "stack-exporter-test=1"  # on every image the test builds, and only on those
RUNC = "/usr/sbin/runc"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
USER = "prometheus"
PASSWORD = "h3alth-PW-image-5c1e"  # distinctive: grepped for in logs and outputs
UID = 10001  # the Dockerfile's USER

Completed = subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment podman runs with here: a containers.conf without default ulimits."""
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text("[containers]\ndefault_ulimits = []\n")
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def run_podman(env: dict[str, str], *args: str, timeout: float = 60, check: bool = True) -> Completed:
    command = ["podman", "--runtime", RUNC, *args]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def image(podman: dict[str, str]) -> str:
    """The image built from the Dockerfile on a debootstrapped Debian 12 (layers cached by podman)."""
    subprocess.run([ROOT / "scripts" / "image-base.sh", BASE], env=podman, check=True, timeout=600)
    for stage, tag in (("build", f"{IMAGE}-build"), (None, IMAGE)):
        # the build stage tagged too: its layers (the pip install) are then no untagged image that
        # the prune below removes, and the next run reuses them
        run_podman(
            podman,
            "build", "--format", "docker",  # docker format keeps the HEALTHCHECK (OCI has none)
            "--volume", f"{CA_BUNDLE}:{CA_BUNDLE}:ro",
            "--build-arg", f"BASE={BASE}",
            "--label", LABEL,
            *(["--target", stage] if stage else []),
            "--tag", tag,
            str(ROOT),
            timeout=600,
        )  # fmt: skip
    # the images an earlier build left untagged (~100 MB each time exporter/ changed); only this test's
    run_podman(podman, "image", "prune", "--force", "--filter", f"label={LABEL}")
    return IMAGE


def self_signed(directory: Path, name: str) -> Path:
    """``name``.crt and ``name``.key for 127.0.0.1 (a server's or a client's); returns the certificate."""
    return self_signed_cert(directory, name=name)[0]


def tls_and_auth(directory: Path) -> Path:
    """A web config with a self-signed certificate and one bcrypt user; returns the certificate."""
    cert = self_signed(directory, "tls")
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    (directory / "web.yml").write_text(
        f"tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\nbasic_auth_users:\n  {USER}: '{hashed}'\n"
    )
    (directory / "health-password").write_text(PASSWORD + "\n")
    return cert


def get(url: str, context: ssl.SSLContext, password: str = PASSWORD) -> str:
    token = base64.b64encode(f"{USER}:{password}".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    with urllib.request.urlopen(request, timeout=10, context=context) as resp:
        return str(resp.read().decode())


def healthcheck(*args: str) -> Completed:
    """``stack-exporter healthcheck`` on the host, through the command's own dispatch."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACK_EXPORTER_")}
    command = [sys.executable, "-m", "exporter", "healthcheck", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)


def test_healthcheck_speaks_the_web_configs_tls_and_basic_auth(tmp_path: Path, redis_server: RedisServer) -> None:
    cert = tls_and_auth(tmp_path)
    web = str(tmp_path / "web.yml")
    server = ExporterProcess(tmp_path, {"redis": [{"name": "r", "url": redis_server.url}]}, "--web.config.file", web)
    server.scheme = "https"
    address = f"--web.listen-address=127.0.0.1:{server.port}"
    try:
        server.start(context=ssl.create_default_context(cafile=str(cert)))
        ok = healthcheck(address, "--web.config.file", web, f"--auth.username={USER}",
                         f"--auth.password-file={tmp_path / 'health-password'}")  # fmt: skip
        assert (ok.returncode, ok.stdout.strip()) == (0, f"https://127.0.0.1:{server.port}/-/healthy: HTTP 200")

        missing = healthcheck(address, "--web.config.file", web)
        assert missing.returncode == 1
        assert "basic_auth_users is set: give --auth.username and --auth.password-file" in missing.stderr

        (tmp_path / "wrong").write_text("not-" + PASSWORD)
        wrong = healthcheck(address, "--web.config.file", web, f"--auth.username={USER}",
                            f"--auth.password-file={tmp_path / 'wrong'}")  # fmt: skip
        assert wrong.returncode == 1
        assert "/-/healthy: HTTP 401 Unauthorized (check the health-check credential)" in wrong.stderr
        assert PASSWORD not in wrong.stdout + wrong.stderr

        # another certificate than the server's is not trusted: it is not the server configured
        other = tmp_path / "other"
        other.mkdir()
        tls_and_auth(other)
        stranger = healthcheck(address, "--web.config.file", str(other / "web.yml"), f"--auth.username={USER}",
                               f"--auth.password-file={tmp_path / 'health-password'}")  # fmt: skip
        assert stranger.returncode == 1
        assert "CERTIFICATE_VERIFY_FAILED" in stranger.stderr
    finally:
        server.stop()
    down = healthcheck(address)
    assert down.returncode == 1
    assert f"http://127.0.0.1:{server.port}/-/healthy: ConnectionRefusedError" in down.stderr


def test_healthcheck_presents_a_client_certificate_when_the_server_requires_one(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    cert = tls_and_auth(tmp_path)
    client = self_signed(tmp_path, "health")
    web = tmp_path / "mtls.yml"
    web.write_text(
        "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n"
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: health.crt\n"
    )
    config = {"redis": [{"name": "r", "url": redis_server.url}]}
    server = ExporterProcess(tmp_path, config, "--web.config.file", str(web))
    server.scheme = "https"
    address = f"--web.listen-address=127.0.0.1:{server.port}"
    context = ssl.create_default_context(cafile=str(cert))
    context.load_cert_chain(client, client.with_suffix(".key"))
    try:
        server.start(context=context)
        without = healthcheck(address, "--web.config.file", str(web))
        assert without.returncode == 1
        assert "client_auth_type RequireAndVerifyClientCert: give --tls.cert-file and --tls.key-file" in without.stderr
        ok = healthcheck(address, "--web.config.file", str(web), f"--tls.cert-file={client}",
                         f"--tls.key-file={client.with_suffix('.key')}")  # fmt: skip
        assert ok.returncode == 0, ok.stderr
        # a certificate the server does not trust is refused in the handshake
        stranger = self_signed(tmp_path, "stranger")
        refused = healthcheck(address, "--web.config.file", str(web), f"--tls.cert-file={stranger}",
                              f"--tls.key-file={stranger.with_suffix('.key')}")  # fmt: skip
        assert refused.returncode == 1
    finally:
        server.stop()


@pytest.mark.image
@pytest.mark.timeout(600)  # cold: debootstrap (~45 s) and the build (~25 s) run in its set-up
def test_image_scrapes_redis_as_non_root_with_tls_auth_and_a_health_check(
    tmp_path: Path, podman: dict[str, str], image: str, redis_server: RedisServer
) -> None:
    conf = tmp_path / "etc"
    conf.mkdir()
    cert = tls_and_auth(conf)
    write_config(conf, {"redis": [{"name": "r", "url": redis_server.url}]})
    # the container's user is not the test's: it reads the mounted folder as "other"
    conf.chmod(0o755)
    for file in conf.iterdir():
        file.chmod(0o644)
    port = free_port()
    name = f"stack-exporter-test-{os.getpid()}"
    run_podman(
        podman,
        "run", "--detach", "--name", name, "--network", "host",
        "--read-only", "--read-only-tmpfs=false",  # not even /tmp or /run is writable
        "--volume", f"{conf}:/etc/stack-exporter:ro",
        # the server and the health check read the same variables
        "--env", f"STACK_EXPORTER_WEB_LISTEN_ADDRESS=127.0.0.1:{port}",
        "--env", "STACK_EXPORTER_WEB_CONFIG_FILE=/etc/stack-exporter/web.yml",
        "--env", f"STACK_EXPORTER_HEALTHCHECK_USERNAME={USER}",
        "--env", "STACK_EXPORTER_HEALTHCHECK_PASSWORD_FILE=/etc/stack-exporter/health-password",
        image,
    )  # fmt: skip
    try:
        context = ssl.create_default_context(cafile=str(cert))
        url = f"https://127.0.0.1:{port}/metrics"

        def scraped() -> str:
            try:
                return get(url, context)
            except (OSError, urllib.error.URLError):
                state = run_podman(podman, "inspect", "--format", "{{.State.Running}}", name).stdout.strip()
                if state != "true":
                    logs = run_podman(podman, "logs", name).stderr
                    raise RuntimeError(f"the container exited:\n{logs}") from None
                return ""

        text = wait_until(scraped, timeout=30, interval=0.25, message="the container's /metrics")
        assert value(text, "redis_up", target="r") == 1
        with pytest.raises(urllib.error.HTTPError) as denied:
            get(url, context, password="wrong")
        denied.value.close()
        assert denied.value.code == 401

        # the exporter itself (PID 1 inside), seen from the host: every uid and gid is the image's user
        pid = run_podman(podman, "inspect", "--format", "{{.State.Pid}}", name).stdout.strip()
        status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        assert status["Uid"].split() == [str(UID)] * 4
        assert status["Gid"].split() == [str(UID)] * 4

        # the image's own HEALTHCHECK: TLS pinned to the server's certificate, basic auth from the file
        healthcheck = json.loads(run_podman(podman, "image", "inspect", image).stdout)[0]["Healthcheck"]
        assert healthcheck["Test"] == ["CMD", "stack-exporter", "healthcheck"]
        health = run_podman(podman, "healthcheck", "run", name, check=False)
        assert health.returncode == 0, health.stdout + health.stderr
        # a wrong credential is unhealthy, and says why without the password
        (conf / "wrong-password").write_text("not-" + PASSWORD)
        (conf / "wrong-password").chmod(0o644)
        wrong = run_podman(
            podman, "exec", "--env", "STACK_EXPORTER_HEALTHCHECK_PASSWORD_FILE=/etc/stack-exporter/wrong-password",
            name, "stack-exporter", "healthcheck", check=False,
        )  # fmt: skip
        assert wrong.returncode == 1
        assert f"https://127.0.0.1:{port}/-/healthy: HTTP 401" in wrong.stderr
        assert PASSWORD not in wrong.stdout + wrong.stderr

        started = time.monotonic()
        run_podman(podman, "stop", "--time", "10", name, timeout=30)
        took = time.monotonic() - started
        exit_code = run_podman(podman, "inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        logs = run_podman(podman, "logs", name)
        assert exit_code == "0", logs.stderr
        assert took < 5, f"podman stop took {took:.1f} s: SIGTERM was not handled"
        assert "shutting down" in logs.stderr
        assert PASSWORD not in logs.stdout + logs.stderr
    finally:
        run_podman(podman, "rm", "--force", "--time", "0", name, check=False)
