#!/usr/bin/env bash
# Installs what `make test` needs on a fresh Debian 12 machine: the real
# servers the tests start (from Debian's packages) and the Python venv.
# Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# One line per package, with the binary that proves it is installed.
APT_PACKAGES=(
  "redis-server:/usr/bin/redis-server"
  "redis-sentinel:/usr/bin/redis-sentinel"
  "redis-tools:/usr/bin/redis-cli"
  "postgresql:/usr/lib/postgresql/15/bin/initdb"
  "postgresql-contrib:/usr/lib/postgresql/15/bin/initdb"
  "pgbouncer:/usr/sbin/pgbouncer"
  "nsd:/usr/sbin/nsd"
  "prometheus:/usr/bin/promtool"
  "prometheus-alertmanager:/usr/bin/amtool"
  "prometheus-node-exporter:/usr/bin/prometheus-node-exporter"
  "prometheus-redis-exporter:/usr/bin/prometheus-redis-exporter"
  "prometheus-postgres-exporter:/usr/bin/prometheus-postgres-exporter"
  "prometheus-blackbox-exporter:/usr/bin/prometheus-blackbox-exporter"
  "jsonnet:/usr/bin/jsonnet"
  "openssl:/usr/bin/openssl"
  "curl:/usr/bin/curl"
)

missing=()
for entry in "${APT_PACKAGES[@]}"; do
  pkg="${entry%%:*}" bin="${entry#*:}"
  [[ -e "$bin" ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "install-deps: apt-get install ${missing[*]}"
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
  echo "install-deps: creating .venv"
  "$PY" -m venv .venv
fi
# Reinstall only when pyproject.toml changed since the last install.
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [[ ! -e "$stamp" ]]; then
  echo "install-deps: pip install -e .[dev]"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".[dev]"
  rm -f .venv/.installed-* && touch "$stamp"
fi
# Byte-compile the package as a wheel install does: where PYTHONDONTWRITEBYTECODE is set
# (as on these machines), every start would otherwise compile the sources again (~40 ms of
# start-up); a source changed later is recompiled in memory, never run stale.
.venv/bin/python -m compileall -q exporter >/dev/null
