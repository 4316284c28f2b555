#!/usr/bin/env bash
# `npm test`: provisions what the tests need, builds, and runs every test with
# node's test runner. Tests needing root, runc, conmon or QEMU run for real.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/ensure-built.sh
if [ "$(id -u)" != 0 ]; then
  echo "npm test: must run as root (the tests start real containers)" >&2
  exit 1
fi
files=$(find dist/src dist/test -name '*.test.js' | sort)
exec node --test --test-concurrency="${VESSEL_TEST_CONCURRENCY:-2}" --test-timeout=600000 $files
