"""What a release ships: ``python -m build`` makes an sdist and a wheel, ``twine check`` accepts both,
and the wheel installs into a clean venv whose ``stack-exporter --version`` prints exporter.__version__.

The version has one source, ``exporter/__init__.py``: pyproject.toml declares it dynamic and reads
``exporter.__version__`` (``[tool.setuptools.dynamic]``), and the CLI, the build_info metric, the
landing page and the API User-Agent all import it.

``python -m build`` without --sdist/--wheel builds the sdist, then the wheel *from the sdist*: a
file the sdist forgets breaks the wheel here rather than for whoever installs from PyPI. It writes
only the (git-ignored) egg-info into the checkout. The build backend and the wheel's dependencies
come from PyPI through pip's cache: about 15 s on a warm cache.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

import exporter

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(300)


def run(*args: str | Path, cwd: Path = ROOT) -> str:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, f"{' '.join(map(str, args))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--outdir", out, ROOT)
    return out


def test_the_version_has_one_source() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "exporter.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", exporter.__version__)
    # the changelog's newest release heading is this version (or an Unreleased section above it)
    releases = re.findall(r"^## \[([^\]]+)\]", (ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert exporter.__version__ in releases[:2], releases[:2]


def test_build_makes_an_sdist_and_a_wheel_twine_accepts(dist: Path) -> None:
    name = f"stack_exporter-{exporter.__version__}"
    wheel, sdist = dist / f"{name}-py3-none-any.whl", dist / f"{name}.tar.gz"
    assert sorted(dist.iterdir()) == [wheel, sdist]
    run(sys.executable, "-m", "twine", "check", "--strict", wheel, sdist)

    with zipfile.ZipFile(wheel) as whl:
        files = whl.namelist()
        metadata = whl.read(f"{name}.dist-info/METADATA").decode()
        entry_points = whl.read(f"{name}.dist-info/entry_points.txt").decode()
    # every module of the checkout, though the wheel was built from the sdist
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "exporter").rglob("*.py")}
    assert modules - set(files) == set()
    # the data files the package reads at run time (the RUM endpoint serves its adapter)
    assert "exporter/rum/static/rum.js" in files
    assert not [f for f in files if f.startswith(("tests/", "peers/", "bench/"))]
    assert f"Version: {exporter.__version__}\n" in metadata
    assert "Provides-Extra: ses" in metadata
    assert "stack-exporter = exporter.cli:main" in entry_points
    with tarfile.open(sdist) as tar:
        assert f"{name}/pyproject.toml" in tar.getnames()


def test_the_wheel_installs_into_a_clean_venv_and_runs(dist: Path, tmp_path: Path) -> None:
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    run(env / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check",
        next(dist.glob("*.whl")), cwd=tmp_path)  # fmt: skip
    out = run(env / "bin" / "stack-exporter", "--version", cwd=tmp_path)
    assert out.strip() == f"stack-exporter {exporter.__version__}"
    # the package comes from the venv, not from this checkout, and all its collectors import
    check = run(env / "bin" / "python", "-c", "import exporter.collectors, exporter.cli; print(exporter.__file__)",
                cwd=tmp_path)  # fmt: skip
    assert check.strip().startswith(str(env)), check
    code = "from exporter.rum.ingest import load_script; print(b'export function start(' in load_script())"
    assert run(env / "bin" / "python", "-c", code, cwd=tmp_path).strip() == "True"
