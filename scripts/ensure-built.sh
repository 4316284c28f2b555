#!/usr/bin/env bash
# Installs npm dependencies (from package-lock.json) and builds, when needed.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ ! -f build/Release/vessel_native.node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
# The addon again when its C sources changed since it was built (npm ci builds it too).
for f in native/*.c native/*.h binding.gyp; do
  if [ "$f" -nt build/Release/vessel_native.node ]; then
    npm run --silent build:native >/dev/null
    break
  fi
done
npm run --silent build
