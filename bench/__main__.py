"""``python -m bench <name>|all [options]``: run side-by-side benchmarks and print the comparison.

Every module ``bench/<name>_bench.py`` is a sub-command, found by its file name, so adding
one needs no change here. It defines either

- ``SCENARIO`` (a ``harness.Scenario``): a one-point comparison; the options below apply, or
- ``main(argv: list[str]) -> int``: a sub-command that parses its own options (everything
  after ``<name>``) and returns 0, 1 or 2 like the scenarios.

``python -m bench all`` runs every module: the scenarios with the options given here,
the ``main`` ones with ``[]`` (their defaults).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType, ModuleType

import bench
from bench.harness import BenchError, RunOptions, Scenario, log, render, run, write_json
from peers.process import ProcessError

SUFFIX = "_bench"


def available() -> list[str]:
    return sorted(m.name.removesuffix(SUFFIX) for m in pkgutil.iter_modules(bench.__path__) if m.name.endswith(SUFFIX))


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"bench.{name}{SUFFIX}")


def load(name: str) -> Scenario:
    scenario = getattr(_module(name), "SCENARIO", None)
    if not isinstance(scenario, Scenario):
        raise BenchError(f"bench/{name}{SUFFIX}.py defines no SCENARIO")
    return scenario


def load_main(name: str) -> Callable[[list[str]], int] | None:
    """The module's ``main(argv) -> int`` if it is a sub-command with its own options."""
    module = _module(name)
    entry = getattr(module, "main", None)
    if isinstance(getattr(module, "SCENARIO", None), Scenario) or not callable(entry):
        return None
    return entry


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key, value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    names = available()
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark stack-exporter against the reference exporter. "
        "Sub-commands with their own options: python -m bench <name> --help.",
    )
    p.add_argument("scenario", choices=[*names, "all"], help="which comparison to run")
    p.add_argument("--scrapes", type=int, default=200, help="measured scrapes per exporter")
    p.add_argument("--warmup", type=int, default=5, help="unmeasured scrapes per exporter")
    p.add_argument(
        "--reference-only",
        action="store_true",
        help="measure only the reference exporter (before ours is installed)",
    )
    p.add_argument("--results-dir", type=Path, default=RunOptions().results_dir)
    p.add_argument("--keep-workdir", action="store_true", help="keep the temp dir and logs")
    p.add_argument("--fail-on-miss", action="store_true", help="exit 1 when a target is missed")
    p.add_argument(
        "--set",
        dest="options",
        metavar="KEY=VALUE",
        type=_key_value,
        action="append",
        default=[],
        help="scenario option (see the scenario's docstring), repeatable",
    )
    args = p.parse_args(argv)
    if not 1 <= args.scrapes <= 10_000 or not 0 <= args.warmup <= 1_000:
        p.error("--scrapes must be 1..10000 and --warmup 0..1000")
    return args


def _terminate(signum: int, _frame: FrameType | None) -> None:
    # Turn SIGTERM/SIGHUP into an exception so every `with BenchEnv` cleans up.
    raise KeyboardInterrupt(f"signal {signum}")


def _run_main(name: str, entry: Callable[[list[str]], int], argv: list[str]) -> int:
    """Run a ``main(argv)`` sub-command; its BenchError/ProcessError become exit 2."""
    try:
        return entry(argv)
    except (BenchError, ProcessError, TimeoutError) as err:
        log(f"{name}: FAILED: {err}")
        return 2
    except KeyboardInterrupt:
        log(f"{name}: interrupted; every process it started has been stopped")
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    """Long (about 60 lines) because it is the dispatch read top to bottom: signals, one
    ``main(argv)`` sub-command, or every scenario and sub-command in turn."""
    argv = list(sys.argv[1:] if argv is None else argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    # Python leaves SIGINT ignored when started in the background (`make bench &`).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # `python -m bench targets --sizes 1,10`: the sub-command parses everything after its name.
    if argv and argv[0] in available():
        entry = load_main(argv[0])
        if entry is not None:
            return _run_main(argv[0], entry, argv[1:])
    args = parse_args(argv)
    opts = RunOptions(
        scrapes=args.scrapes,
        warmup=args.warmup,
        reference_only=args.reference_only,
        results_dir=args.results_dir,
        keep_workdir=args.keep_workdir,
        options=dict(args.options),
    )
    names = available() if args.scenario == "all" else [args.scenario]
    status = 0
    for name in names:
        try:
            entry = load_main(name)
        except Exception as err:  # a broken module must not stop `all`
            log(f"{name}: FAILED to import: {type(err).__name__}: {err}")
            status = 2
            continue
        if entry is not None:
            code = _run_main(name, entry, [])
            if code == 130:
                return code
            status = max(status, code)
            continue
        try:
            doc = run(load(name), opts)
        # A process that died or never finished is a problem to fix, not a bug: no traceback.
        except (BenchError, ProcessError, TimeoutError) as err:
            log(f"{name}: FAILED: {err}")
            status = 2
            continue
        except KeyboardInterrupt:
            log(f"{name}: interrupted; every process it started has been stopped")
            return 130
        print(render(doc))
        print(f"\nraw numbers: {write_json(doc, opts.results_dir)}\n", flush=True)
        targets = doc["comparison"]["targets"].values()
        if args.fail_on_miss and any(t["status"] == "MISS" for t in targets):
            status = max(status, 1)
    return status


if __name__ == "__main__":
    sys.exit(main())
