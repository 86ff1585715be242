#!/usr/bin/env bash
# Installs, from Debian 12's packages, the real servers and tools that only the tests,
# `make demo` and `make bench` start: Redis, PostgreSQL, PgBouncer, NSD, Prometheus,
# Alertmanager, the reference exporters, jsonnet, podman for the image test, npm for
# Directus (scripts/install-directus.sh installs Directus itself), Chromium and the
# RUM test site's web-vitals (npm) for the real-browser test.  `make run` needs
# none of it (scripts/install-deps.sh).
# Idempotent and quick when everything is already there.
set -euo pipefail

# One line per package, with the file that proves it is installed.
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
  "jsonnet:/usr/bin/jsonnetfmt"
  "openssl:/usr/bin/openssl"
  "curl:/usr/bin/curl"
  "npm:/usr/bin/npm"
  # the RUM browser test (tests/rum/test_browser.py) drives it headless over DevTools
  "chromium:/usr/bin/chromium"
  # the image test (tests/test_image.py): a debootstrap base, podman with the runc runtime
  "runc:/usr/sbin/runc"
  "debootstrap:/usr/sbin/debootstrap"
  # the Kubernetes test's `kubectl kustomize`: not Debian's (bookworm's kubernetes-client is
  # 1.20, too old); the apt package of these machines' Google Cloud SDK source, preinstalled
  "kubectl:/usr/bin/kubectl"
)
# Installed with their recommended packages (podman's network stack, fuse-overlayfs,
# catatonit), as in the set-up the image test was verified with.
APT_PACKAGES_WITH_RECOMMENDS=(
  "podman:/usr/bin/podman"
)

missing() {
  local entry
  for entry in "$@"; do
    [[ -e "${entry#*:}" ]] || echo "${entry%%:*}"
  done
}
mapfile -t plain < <(missing "${APT_PACKAGES[@]}")
mapfile -t recommends < <(missing "${APT_PACKAGES_WITH_RECOMMENDS[@]}")
all=("${plain[@]}" "${recommends[@]}")
if ((${#all[@]})); then
  echo "install-test-deps: apt-get install ${all[*]}"
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  # through sudo, whose reset environment would drop a plain DEBIAN_FRONTEND=...
  APT=($SUDO env DEBIAN_FRONTEND=noninteractive apt-get)
  if ((${#plain[@]})); then
    "${APT[@]}" install -y -qq --no-install-recommends "${plain[@]}" >/dev/null
  fi
  if ((${#recommends[@]})); then
    "${APT[@]}" install -y -qq "${recommends[@]}" >/dev/null
  fi
fi

# The RUM browser test's site loads web-vitals from its own node_modules, as a team's site
# would: the version pinned in tests/rum/site/package.json, locked by its package-lock.json.
site="$(cd "$(dirname "$0")/.." && pwd)/tests/rum/site"
if [[ ! -e "$site/node_modules/web-vitals/package.json" ]]; then
  echo "install-test-deps: npm ci in $site"
  (cd "$site" && npm ci --no-audit --no-fund --loglevel=error)
fi
