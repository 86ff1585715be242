"""deploy/systemd/stack-exporter.service: systemd accepts it, it is hardened, and the exporter runs under it.

``systemd-analyze verify`` checks that the executable of ExecStart= exists, so it runs on a copy
of the unit whose ExecStart= points at this venv's ``stack-exporter`` (the shipped unit names
/opt/stack-exporter/bin/stack-exporter, the README's pip install).  No service manager runs in
the test machines, so the last test applies the parts of the sandbox that can be applied
without one to the real process, as systemd would: MemoryDenyWriteExecute='s seccomp rules
(the same ones systemd installs: no mmap() both writable and executable, no mprotect(),
pkey_mprotect() with PROT_EXEC, no shmat() with SHM_EXEC), NoNewPrivileges=, an empty
capability bounding set, the credentials directory and ExecReload='s SIGHUP.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import bcrypt
import pytest

from peers.process import free_port, wait_until
from tests.helpers import self_signed_cert, value
from tests.servers.redis import REDIS_PASSWORD, RedisServer

UNIT = Path(__file__).resolve().parent.parent / "deploy" / "systemd" / "stack-exporter.service"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
STACK_EXPORTER = Path(sys.executable).parent / "stack-exporter"
SHIPPED_EXEC = "/opt/stack-exporter/bin/stack-exporter"

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (no systemd here)"),
]

# The hardening the unit must keep (key -> value as written in the unit).
HARDENING = {
    "DynamicUser": "yes",
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "RestrictNamespaces": "yes",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallArchitectures": "native",
    "SystemCallFilter": "@system-service",
    "LockPersonality": "yes",
    "Restart": "on-failure",
    "ExecReload": "/bin/kill -HUP $MAINPID",
    "LoadCredential": "secret:/etc/stack-exporter/secrets",
}

# What `systemd-analyze security` may still count against the unit: an exporter reaches
# Redis, PostgreSQL and APIs over TCP and Unix sockets, on addresses only the config knows;
# ProtectClock= leaves read access to the RTC; and ProcSubset=pid would hide /proc/stat, whose
# boot time prometheus_client's process collector needs (without it, no process_* metrics).
# Together 1.1 of the exposure score; every other check must pass.
ALLOWED_EXPOSURE = {
    "PrivateNetwork",
    "IPAddressDeny",
    "RestrictAddressFamilies_AF_INET_INET6",
    "RestrictAddressFamilies_AF_UNIX",
    "DeviceAllow",
    "RootDirectoryOrRootImage",
    "ProcSubset",
}
# systemd's scale is 0-10 ("OK" below 4.5 or so); 1.1 is what the above costs, and the
# margin covers checks a newer systemd may add. Dropping SystemCallFilter= alone gives 2.6,
# the capability bounding set 2.8.
MAX_EXPOSURE = 1.5


def directives(text: str) -> dict[str, list[str]]:
    """Key -> values of a unit file (continuation lines joined, comments dropped)."""
    out: dict[str, list[str]] = {}
    joined = re.sub(r"\\\n\s*", " ", text)
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, val = line.partition("=")
        out.setdefault(key.strip(), []).append(val.strip())
    return out


def runnable_unit(directory: Path) -> Path:
    """The unit with ExecStart= pointing at this venv's stack-exporter (verify wants it to exist)."""
    text = UNIT.read_text()
    assert SHIPPED_EXEC in text
    copy = directory / UNIT.name
    copy.write_text(text.replace(SHIPPED_EXEC, str(STACK_EXPORTER)))
    return copy


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    return subprocess.run([SYSTEMD_ANALYZE, *args], capture_output=True, text=True, timeout=30, check=False)


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    proc = analyze("verify", str(runnable_unit(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    # an unknown or misplaced key is only a warning: the unit must have none
    assert proc.stderr.strip() == "", proc.stderr


def test_the_unit_is_hardened(tmp_path: Path) -> None:
    found = directives(UNIT.read_text())
    for key, expected in HARDENING.items():
        assert expected in found.get(key, []), f"{UNIT.name}: {key}={expected} missing (has {found.get(key)})"
    assert "RestartSec" in found
    assert "pid" not in found.get("ProcSubset", []), "process_* metrics need /proc/stat"

    unit = runnable_unit(tmp_path)
    report = analyze("security", "--offline=yes", "--json=short", str(unit))
    assert report.returncode == 0, report.stderr
    failing = {check["json_field"]: check["description"] for check in json.loads(report.stdout) if not check["set"]}
    assert set(failing) <= ALLOWED_EXPOSURE, failing
    threshold = analyze("security", "--offline=yes", f"--threshold={round(MAX_EXPOSURE * 10)}", str(unit))
    assert threshold.returncode == 0, threshold.stdout[-300:]


# Installs MemoryDenyWriteExecute='s filter (systemd's rules, with EPERM as systemd answers),
# sets no_new_privs, empties the capability bounding set, then execs argv[1:].
SANDBOX = r"""
import ctypes, os, platform, struct, sys
ARCH = {"x86_64": (0xC000003E, 9, 10, 329, 30), "aarch64": (0xC00000B7, 222, 226, 288, 196)}
audit_arch, MMAP, MPROTECT, PKEY_MPROTECT, SHMAT = ARCH[platform.machine()]
PROT_WRITE, PROT_EXEC, SHM_EXEC = 0x2, 0x4, 0o100000
LD, JEQ, AND, RET = 0x20, 0x15, 0x54, 0x06
ALLOW, EPERM = 0x7FFF0000, 0x00050000 | 1
ARG2 = 16 + 2 * 8  # seccomp_data.args[2], low 32 bits (little-endian)
prog = [
    (LD, 0, 0, 4), (JEQ, 0, 16, audit_arch),               # foreign arch: allow
    (LD, 0, 0, 0),
    (JEQ, 4, 0, MMAP), (JEQ, 6, 0, MPROTECT), (JEQ, 5, 0, PKEY_MPROTECT), (JEQ, 7, 0, SHMAT),
    (RET, 0, 0, ALLOW),
    (LD, 0, 0, ARG2), (AND, 0, 0, PROT_WRITE | PROT_EXEC), (JEQ, 6, 7, PROT_WRITE | PROT_EXEC),   # mmap
    (LD, 0, 0, ARG2), (AND, 0, 0, PROT_EXEC), (JEQ, 3, 4, PROT_EXEC),                             # mprotect
    (LD, 0, 0, ARG2), (AND, 0, 0, SHM_EXEC), (JEQ, 0, 1, SHM_EXEC),                               # shmat
    (RET, 0, 0, EPERM),
    (RET, 0, 0, ALLOW),
]
code = b"".join(struct.pack("=HBBI", *ins) for ins in prog)
buf = ctypes.create_string_buffer(code)
fprog = struct.pack("=HxxxxxxQ", len(prog), ctypes.addressof(buf))
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 24, 38, 22, 2
cap = 0
while libc.prctl(PR_CAPBSET_DROP, cap, None, 0, 0) == 0:
    cap += 1
assert libc.prctl(PR_SET_NO_NEW_PRIVS, 1, None, 0, 0) == 0, ctypes.get_errno()
fbuf = ctypes.create_string_buffer(fprog)
assert libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fbuf), 0, 0) == 0, ctypes.get_errno()
os.execv(sys.argv[1], sys.argv[1:])
"""


def sandboxed(*argv: str) -> list[str]:
    return [sys.executable, "-c", SANDBOX, *argv]


def test_the_sandbox_denies_writable_executable_memory() -> None:
    # the control: without it, the next test would pass with no filter at all
    probe = (
        "import mmap\n"
        "mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE)\n"
        "try:\n"
        "    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
        "except PermissionError:\n"
        "    print('denied')\n"
        "import ctypes\n"
        "page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE)\n"
        "address = ctypes.addressof(ctypes.c_char.from_buffer(page))\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]\n"
        "if libc.mprotect(address, 4096, mmap.PROT_READ | mmap.PROT_EXEC) != 0 and ctypes.get_errno() == 1:\n"
        "    print('denied')\n"
    )
    proc = subprocess.run(sandboxed(sys.executable, "-c", probe), capture_output=True, text=True, timeout=30)
    assert (proc.returncode, proc.stdout.split()) == (0, ["denied", "denied"]), proc.stderr


def test_the_exporter_runs_in_the_units_sandbox(tmp_path: Path, redis_with_password: RedisServer) -> None:
    """ExecStart='s flags with /etc/stack-exporter moved to tmp_path, TLS and bcrypt basic auth on,
    the Redis password from ${CREDENTIALS_DIRECTORY}, then ExecReload='s SIGHUP picks up a new target."""
    etc = tmp_path / "etc"
    creds = tmp_path / "credentials"
    etc.mkdir()
    creds.mkdir()
    (creds / "secret_redis").write_text(REDIS_PASSWORD + "\n")
    self_signed_cert(etc)
    hashed = bcrypt.hashpw(b"scrape-pass", bcrypt.gensalt(rounds=4)).decode()
    (etc / "web.yml").write_text(
        f"tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\nbasic_auth_users:\n  prometheus: '{hashed}'\n"
    )
    target = "  - name: {name}\n    url: {url}\n    password_file: ${{CREDENTIALS_DIRECTORY}}/secret_redis\n"
    config = etc / "config.yml"
    config.write_text("redis:\n" + target.format(name="first", url=redis_with_password.url))

    port = free_port()
    exec_start = directives(UNIT.read_text())["ExecStart"][0]
    argv = [
        str(STACK_EXPORTER) if arg == SHIPPED_EXEC else arg.replace("/etc/stack-exporter", str(etc))
        for arg in shlex.split(exec_start)
    ]
    argv = [f"--web.listen-address=127.0.0.1:{port}" if a.startswith("--web.listen-address=") else a for a in argv]
    env = {**os.environ, "CREDENTIALS_DIRECTORY": str(creds)}
    log = tmp_path / "exporter.log"
    ctx = ssl.create_default_context(cafile=str(etc / "tls.crt"))
    auth = {"Authorization": "Basic " + base64.b64encode(b"prometheus:scrape-pass").decode()}

    def scrape() -> str:
        req = urllib.request.Request(f"https://127.0.0.1:{port}/metrics", headers=auth)
        with urllib.request.urlopen(req, timeout=10, context=ctx) as resp:
            return str(resp.read().decode())

    with log.open("wb") as out:
        proc = subprocess.Popen(sandboxed(*argv), stdout=out, stderr=out, env=env)
    try:

        def up(name: str) -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"the exporter exited {proc.returncode}:\n{log.read_text()}")
            try:
                return value(scrape(), "redis_up", target=name) == 1
            except OSError:
                return False

        wait_until(lambda: up("first"), timeout=15)
        status = dict(line.split(":\t", 1) for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines())
        # seccomp filter on, no new privileges, no capability in the bounding set
        assert (status["Seccomp"], status["NoNewPrivs"], int(status["CapBnd"], 16)) == ("2", "1", 0), status

        config.write_text(config.read_text() + target.format(name="second", url=redis_with_password.url))
        reload = directives(UNIT.read_text())["ExecReload"][0].replace("$MAINPID", str(proc.pid))
        subprocess.run(shlex.split(reload), check=True, timeout=10)
        wait_until(lambda: up("second"), timeout=15)

        text = scrape()
        assert value(text, "stack_exporter_config_last_reload_successful") == 1
        assert (value(text, "process_start_time_seconds") or 0) > 0
        assert REDIS_PASSWORD not in text
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log.read_text()
    assert REDIS_PASSWORD not in log.read_text()
