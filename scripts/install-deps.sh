#!/usr/bin/env bash
# Installs the Debian packages Vessel needs (idempotent; apt-get runs only when something is missing).
set -euo pipefail
PKGS=(runc conmon busybox-static mmdebstrap nftables iproute2 procps tar python3 dpkg-dev e2fsprogs cpio zstd
      qemu-system-x86 qemu-utils qemu-guest-agent skopeo umoci docker-registry buildah apache2-utils)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
