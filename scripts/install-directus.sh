#!/usr/bin/env bash
# Installs the real Directus the directus collector's tests run against, once,
# into a cache outside the repo (~3 min and ~730 MB the first time; instant after).
# Prints the install directory on stdout; `$dir/node $dir/node_modules/directus/cli.js` runs it.
#
# Versions are pinned in scripts/directus/{,node22/}package.json and locked by
# the package-lock.json beside each: the npm registry reachable from CI is a
# partial copy, so a floating version may not resolve. Directus 12 needs
# Node 22; the npm package `node` brings a real Node 22 binary with its headers,
# and npm_config_nodedir makes node-gyp build isolated-vm and sqlite3 against
# those headers rather than the machine's Node.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
spec="$here/directus"
version="$(sed -n 's/.*"directus": "\(.*\)".*/\1/p' "$spec/package.json")"
dest="${STACK_EXPORTER_DIRECTUS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stack-exporter/directus-$version}"
spec_hash() {
  cat "$spec/package.json" "$spec/package-lock.json" "$spec/node22/package.json" "$spec/node22/package-lock.json" \
    2>/dev/null | sha256sum | cut -c1-16 || true
}
stamp="$dest/.installed-$(spec_hash)"
[[ -e "$stamp" ]] && { echo "$dest"; exit 0; }

log() { echo "install-directus: $*" >&2; }
mkdir -p "$(dirname "$dest")"
# Installs are serialised: two test runs starting at once share one install.
exec 9>"$dest.lock"
flock 9
[[ -e "$stamp" ]] && { echo "$dest"; exit 0; }

log "installing Directus $version into $dest (first run only: ~3 min)"
rm -rf "$dest"
mkdir -p "$dest/node22"

# npm install in $dir with its lockfile when the repo has one; otherwise resolve and keep the new lockfile.
install_locked() {
  local from="$1" dir="$2"
  cp "$from/package.json" "$dir/"
  if [[ -e "$from/package-lock.json" ]]; then
    cp "$from/package-lock.json" "$dir/"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
  else
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error >&2)
    cp "$dir/package-lock.json" "$from/package-lock.json"
    log "wrote $from/package-lock.json: commit it"
  fi
}

# Step 1: Node 22 alone, so step 2 can build native modules for it.
install_locked "$spec/node22" "$dest/node22"
# the `node` package fetches node-<os>-<arch> at install time; its bin/ and include/ are the real ones
node_h="$(find "$dest/node22/node_modules" -path '*/include/node/node.h' -print -quit)"
[[ -n "$node_h" ]] || { log "no Node 22 headers under $dest/node22"; exit 1; }
node_home="$(dirname "$(dirname "$(dirname "$node_h")")")"
node_bin="$node_home/bin/node"
[[ -d "$node_home/include/node" ]] || { log "no Node headers under $node_home"; exit 1; }
log "node $("$node_bin" --version) at $node_bin"

# Step 2: Directus, built and run by Node 22.
PATH="$(dirname "$node_bin"):$PATH" npm_config_nodedir="$node_home" install_locked "$spec" "$dest"
ln -sf "$node_bin" "$dest/node"
"$dest/node" "$dest/node_modules/directus/cli.js" --version >&2 || true
touch "$dest/.installed-$(spec_hash)"
echo "$dest"
