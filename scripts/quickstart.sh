#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine (as root): install, build, start
# the daemon, bootstrap the base images, run a demo container.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
SOCK=${VESSEL_SOCK:-/run/vessel/vessel.sock}
ROOT=${VESSEL_ROOT:-/var/lib/vessel}

echo "==> Installing system packages"
bash scripts/install-deps.sh
echo "==> Installing npm packages and building"
bash scripts/ensure-built.sh
ln -sf "$REPO/bin/vessel" /usr/local/bin/vessel
ln -sf "$REPO/bin/vesseld" /usr/local/bin/vesseld
echo "    vessel and vesseld are on PATH (/usr/local/bin)"

echo "==> Starting vesseld (root $ROOT, socket $SOCK)"
if "$REPO/bin/vessel" --host "unix://$SOCK" version >/dev/null 2>&1; then
  echo "    already running"
else
  mkdir -p /var/log
  setsid nohup "$REPO/bin/vesseld" --root "$ROOT" --host "unix://$SOCK" >>/var/log/vesseld.log 2>&1 < /dev/null &
  for _ in $(seq 1 100); do
    [ -S "$SOCK" ] && "$REPO/bin/vessel" --host "unix://$SOCK" version >/dev/null 2>&1 && break
    sleep 0.1
  done
  "$REPO/bin/vessel" --host "unix://$SOCK" version >/dev/null || { echo "vesseld did not start; see /var/log/vesseld.log" >&2; tail -5 /var/log/vesseld.log >&2; exit 1; }
  echo "    started (log: /var/log/vesseld.log)"
fi
export VESSEL_HOST="unix://$SOCK"

echo "==> Bootstrapping base images"
for img in busybox debian:bookworm; do
  if "$REPO/bin/vessel" image inspect "$img" >/dev/null 2>&1; then
    echo "    $img: present"
  else
    "$REPO/bin/vessel" image bootstrap "$img"
  fi
done
"$REPO/bin/vessel" images

echo "==> Demo"
"$REPO/bin/vessel" run --rm busybox echo "hello from a vessel container"
"$REPO/bin/vessel" run --rm debian:bookworm sh -c '. /etc/os-release; echo "hello from $PRETTY_NAME"'
echo "==> Demo VM (QEMU; the first start downloads Debian's cloud kernel)"
"$REPO/bin/vessel" vm rm -f quickstart-vm >/dev/null 2>&1 || true
"$REPO/bin/vessel" vm create quickstart-vm --image busybox --memory 256m --start
vm_ok=
for _ in $(seq 1 120); do
  if out=$("$REPO/bin/vessel" vm exec quickstart-vm -- uname -sr 2>/dev/null); then
    echo "hello from a vessel VM running $out"
    vm_ok=1
    break
  fi
  sleep 1
done
"$REPO/bin/vessel" vm rm -f quickstart-vm
[ -n "$vm_ok" ] || { echo "the demo VM's guest agent did not answer within 120 s" >&2; exit 1; }
echo "==> Done. Try: vessel run -it --rm busybox sh, or vessel vm create t1 --image debian:bookworm --start && vessel vm console t1"
