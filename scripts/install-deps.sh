#!/usr/bin/env bash
# Installs the Python environment: a .venv with the package, and the extras named as
# arguments (`dev` for the tests' tools, `ses` for AWS SES).  This is all `make run`
# needs; the servers and tools only the tests, the demo and the benchmarks use are
# installed by scripts/install-test-deps.sh.
# Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

extras=()
for arg in "$@"; do
  case "$arg" in
    dev | ses) extras+=("$arg") ;;
    *) echo "install-deps: unknown extra '$arg' (known: dev, ses)" >&2; exit 2 ;;
  esac
done

PY="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
  # Debian splits venv's pip bootstrap (ensurepip) into the python3-venv package.
  if ! "$PY" -c 'import ensurepip' 2>/dev/null; then
    echo "install-deps: apt-get install python3-venv"
    SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  fi
  echo "install-deps: creating .venv"
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
fi

# The stamp names pyproject.toml's hash and lists the extras installed from it (one a
# line), so pip runs only when pyproject.toml changed or an extra is asked for first.
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
needed=()
[[ -e "$stamp" ]] || needed=(package)
for extra in "${extras[@]}"; do
  grep -qxF "$extra" "$stamp" 2>/dev/null || needed+=("$extra")
done
if ((${#needed[@]})); then
  spec="."
  ((${#extras[@]})) && spec=".[$(IFS=,; echo "${extras[*]}")]"
  echo "install-deps: pip install -e $spec"
  .venv/bin/python -m pip install -q -e "$spec"
  if [[ ! -e "$stamp" ]]; then
    rm -f .venv/.installed-*
    touch "$stamp"
  fi
  for extra in "${extras[@]}"; do
    grep -qxF "$extra" "$stamp" || echo "$extra" >>"$stamp"
  done
fi
# Byte-compile the package as a wheel install does: where PYTHONDONTWRITEBYTECODE is set
# (as on these machines), every start would otherwise compile the sources again (~40 ms of
# start-up); a source changed later is recompiled in memory, never run stale.
.venv/bin/python -m compileall -q exporter >/dev/null
