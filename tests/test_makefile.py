"""The Makefile: `make run` needs only the venv, `make test` installs everything, `make help` lists all.

The dry runs (`make -n`) read which installers a target would call; the light checkout
runs the real `make run` (python3 -m venv, pip) in a copy of the repository that has no
test-deps installer and no Directus installer at all, so calling either would fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from peers.process import LOOPBACK, Process, free_port, wait_until
from tests.helpers import value

ROOT = Path(__file__).resolve().parent.parent
MAKEFILE = ROOT / "Makefile"
# A rule line: a target name, then a colon that is not part of `:=` (variables are not targets).
TARGET_LINE = re.compile(r"^([A-Za-z0-9][\w.-]*)\s*:(?!=)", re.MULTILINE)
TEST_DEPS = "scripts/install-test-deps.sh"
DIRECTUS = "scripts/install-directus.sh"


def make_env() -> dict[str, str]:
    """The environment without the settings of a make that may be running this suite."""
    drop = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "ARGS", "EXTRAS"}
    return {key: val for key, val in os.environ.items() if key not in drop}


def make(*args: str, cwd: Path = ROOT, timeout: float = 30) -> str:
    result = subprocess.run(
        ["make", *args], cwd=cwd, env=make_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"make {' '.join(args)} failed:\n{result.stdout}{result.stderr}"
    return result.stdout


def targets() -> list[str]:
    return TARGET_LINE.findall(MAKEFILE.read_text())


def test_makefile_has_the_usual_targets() -> None:
    assert {"help", "run", "test", "demo", "bench", "deps", "venv"} <= set(targets())


def test_help_lists_every_target_with_one_line() -> None:
    lines = make("help").splitlines()
    described = {m.group(1): m.group(2) for line in lines if (m := re.match(r"make (\S+)\s+(\S.*)$", line))}
    missing = [target for target in targets() if target not in described]
    assert not missing, f"targets without a line in `make help` (add `## what it does` after the rule): {missing}"
    assert set(described) <= set(targets()), "`make help` names a target the Makefile lacks"
    assert any('ARGS="--config.file=' in line for line in lines), "`make help` should say how to pass a config"


def test_every_target_is_phony() -> None:
    phony = re.search(r"^\.PHONY:(.*)$", MAKEFILE.read_text(), re.MULTILINE)
    assert phony is not None
    assert set(phony.group(1).split()) == set(targets())


def test_run_does_not_install_test_servers() -> None:
    commands = make("-n", "run")
    assert "scripts/install-deps.sh" in commands
    assert TEST_DEPS not in commands
    assert DIRECTUS not in commands
    assert "apt-get" not in commands
    assert re.search(r"install-deps\.sh\s*$", commands, re.MULTILINE), "`make run` should install no extra"


def test_test_installs_everything_the_suite_needs() -> None:
    commands = make("-n", "test")
    assert "scripts/install-deps.sh dev" in commands
    assert TEST_DEPS in commands
    assert DIRECTUS in commands


@pytest.mark.parametrize("target", ["demo", "bench"])
def test_demo_and_bench_install_the_servers_they_start(target: str) -> None:
    commands = make("-n", target)
    assert TEST_DEPS in commands, f"`make {target}` starts Prometheus, exporters and servers"
    assert DIRECTUS not in commands, f"`make {target}` does not use Directus"


@pytest.fixture(scope="module")
def light_checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository with the package, the Makefile and scripts/install-deps.sh only,
    after a real `make venv` (python3 -m venv, pip install -e .): about 12 s."""
    copy = tmp_path_factory.mktemp("light")
    for path in ROOT.iterdir():
        if path.is_file():
            shutil.copy2(path, copy / path.name)
    shutil.copytree(ROOT / "exporter", copy / "exporter", ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts/install-deps.sh", copy / "scripts/install-deps.sh")
    make("venv", cwd=copy, timeout=300)
    return copy


def test_run_venv_holds_the_package_without_dev_tools(light_checkout: Path) -> None:
    python = light_checkout / ".venv/bin/python"
    for module in ("exporter", "aiohttp", "redis", "asyncpg"):
        subprocess.run([python, "-c", f"import {module}"], check=True, timeout=30)
    for module in ("pytest", "mypy", "ruff", "aiobotocore"):
        found = subprocess.run([python, "-c", f"import {module}"], capture_output=True, timeout=30, check=False)
        assert found.returncode != 0, f"`make run` should not install {module}"
    assert make("venv", cwd=light_checkout).strip() == "", "a second `make venv` should install nothing"


def test_make_run_passes_a_config(light_checkout: Path) -> None:
    """The README's `make run ARGS="--config.file=..."`: the exporter serves that config."""
    config = light_checkout / "config.yml"
    config.write_text(f"redis:\n  - name: cache\n    url: redis://{LOOPBACK}:{free_port()}/0\n")
    port = free_port()
    args = f"--config.file={config} --web.listen-address={LOOPBACK}:{port}"
    log = light_checkout / "make-run.log"
    run = Process(["make", "run", f"ARGS={args}"], log, cwd=light_checkout, env=make_env())
    run.start()
    try:

        def scraped() -> str:
            run.check_running()
            with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics", timeout=5) as response:
                return str(response.read().decode())

        text = wait_until(scraped, timeout=20, ignore=(OSError,), message="make run serves /metrics")
    finally:
        run.stop()
    assert value(text, "redis_up", target="cache") == 0
    assert "pip install" not in log.read_text(), "the venv was there: `make run` should not reinstall"
