"""The promtool unit-test files of rules/tests, run in the background from the start of the session.

They are the suite's largest CPU-only work (a minute and a half of promtool), while most of
the suite waits on real servers: tests/conftest.py starts them on one thread as soon as the
session's tests are collected, and each ``test_promtool_unit_tests[...]`` waits for its own
file (or runs it then, when the session did not start it). Each file runs on a copy whose
rule files hold only the groups its input can reach (``rulepack.relevant_rules``: leaving
the others out changes no result).
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import yaml

from tests.rules.rulepack import PROMTOOL, relevant_rules

TIMEOUT = 300

_pool: ThreadPoolExecutor | None = None
_runs: dict[Path, Future[subprocess.CompletedProcess[str]]] = {}
_scratch = Path(tempfile.mkdtemp(prefix="promtool-unit-"))
atexit.register(shutil.rmtree, _scratch, ignore_errors=True)


def run(test_file: Path) -> subprocess.CompletedProcess[str]:
    """promtool on a copy of ``test_file`` reading only the rule groups its input can reach."""
    spec = yaml.safe_load(test_file.read_text())
    rule_files = [(test_file.parent / name).resolve() for name in spec["rule_files"]]
    spec["rule_files"] = [str(relevant_rules(spec["tests"], _scratch / f"{test_file.stem}-rules.yaml", rule_files))]
    copy = _scratch / test_file.name
    copy.write_text(yaml.safe_dump(spec, sort_keys=False, width=10_000))
    return subprocess.run(
        [PROMTOOL, "test", "rules", str(copy)], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def start(files: list[Path]) -> None:
    """Run ``files`` one after the other on a background thread (one core: the rest of the suite runs on)."""
    global _pool
    if not files:
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="promtool-unit")
    for path in files:
        if path not in _runs:
            _runs[path] = _pool.submit(run, path)


def result(test_file: Path) -> subprocess.CompletedProcess[str]:
    run_ = _runs.get(test_file)
    return run_.result() if run_ is not None else run(test_file)


def cancel() -> None:
    """Cancel the runs not started yet; the one running finishes (its promtool has a timeout)."""
    for run_ in _runs.values():
        run_.cancel()
