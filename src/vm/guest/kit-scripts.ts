/**
 * The shell scripts of the guest kit. All run under the kit's own static
 * busybox (`/.vessel/bin/busybox`), so they work in any image, whether it
 * has glibc, an init system or a shell of its own or not.
 *
 * Power-off protocol (our init is PID 1):
 * - SIGTERM, SIGUSR2 (busybox `poweroff`), SIGUSR1 (busybox `halt`) → power off;
 * - SIGINT (Ctrl-Alt-Del, `reboot`, `shutdown -r`) → reboot;
 * - the ACPI power button → acpid → SIGTERM.
 * `/sbin/shutdown` (what qemu-ga's guest-shutdown runs) signals PID 1 and
 * exits 0 at once, so the agent reports success before processes are stopped.
 */

/** Directory names inside the kit (relative to the guest root). */
export const KIT = {
  root: '.vessel',
  bin: '.vessel/bin',
  lib: '.vessel/lib',
  ga: '.vessel/ga',
  acpi: '.vessel/acpi',
} as const;

/** The port name QEMU's `virtserialport` must carry for the agent. */
export const GUEST_AGENT_PORT = 'org.qemu.guest_agent.0';

/** The loader file name under /.vessel/ga/. */
export const GA_LOADER = 'ld-linux.so';

const SHEBANG = '#!/.vessel/bin/busybox sh';

/** Commands the kit installs into /.vessel/bin as scripts (not busybox applets). */
export const KIT_COMMANDS = ['shutdown', 'poweroff', 'halt', 'reboot', 'reidentify'] as const;

/** Shared functions, sourced by init and reidentify. */
export const IDENTITY_SH = `# Vessel guest identity helpers (sourced).
# vessel_param NAME: the value of NAME= on the kernel command line (the last
# one wins); globbing is off while splitting it.
vessel_param() {
  set -f
  v=""
  for a in $(cat /proc/cmdline); do
    case "$a" in "$1="*) v="\${a#*=}" ;; esac
  done
  set +f
  echo "$v"
}

vessel_set_hostname() {
  [ -n "$1" ] || return 0
  hostname "$1"
  echo "$1" > /etc/hostname.vessel && mv -f /etc/hostname.vessel /etc/hostname
  [ -f /etc/hosts ] || printf '127.0.0.1\\tlocalhost\\n::1\\tlocalhost ip6-localhost ip6-loopback\\n' > /etc/hosts
  sed -i '/# vessel$/d' /etc/hosts
  printf '127.0.1.1\\t%s # vessel\\n' "$1" >> /etc/hosts
}

vessel_set_machine_id() {
  [ -n "$1" ] || return 0
  rm -f /etc/machine-id
  echo "$1" > /etc/machine-id
  [ -d /var/lib/dbus ] && ln -sf /etc/machine-id /var/lib/dbus/machine-id
  return 0
}

# vessel_iface MAC: the interface with that address, waiting up to 3 s for it.
vessel_iface() {
  mac=$(echo "$1" | tr A-F a-f)
  i=0
  while [ $i -lt 60 ]; do
    for d in /sys/class/net/*; do
      [ "$(cat "$d/address" 2>/dev/null)" = "$mac" ] && { echo "\${d##*/}"; return 0; }
    done
    i=$((i + 1))
    sleep 0.05
  done
  return 1
}

# vessel_set_nic MAC [ADDR/PREFIX] [GATEWAY]
vessel_set_nic() {
  ifc=$(vessel_iface "$1") || { echo "vessel: no interface with MAC $1"; return 1; }
  ip -4 addr flush dev "$ifc"
  ip link set "$ifc" up
  [ -n "$2" ] && ip addr add "$2" dev "$ifc"
  [ -n "$3" ] && ip route replace default via "$3" dev "$ifc"
  return 0
}

# vessel_set_dns "IP,IP"
vessel_set_dns() {
  [ -n "$1" ] || return 0
  rm -f /etc/resolv.conf
  for s in $(echo "$1" | tr , ' '); do echo "nameserver $s"; done > /etc/resolv.conf
}

vessel_apply_cmdline_network() {
  ip link set lo up
  n=0
  while [ $n -lt 16 ]; do
    spec=$(vessel_param vessel.net$n)
    [ -n "$spec" ] || break
    IFS=, read -r mac addr gw <<EOS
$spec
EOS
    vessel_set_nic "$mac" "$addr" "$gw"
    n=$((n + 1))
  done
  vessel_set_dns "$(vessel_param vessel.dns)"
}
`;

/** /.vessel/bin/reidentify HOSTNAME MACHINE_ID MAC ADDR/PREFIX GATEWAY [DNS] ("-" or "" skips a field). */
export const REIDENTIFY_SH = `${SHEBANG}
# Re-applies a guest's identity in a running guest (after a snapshot clone).
PATH=/.vessel/bin
. /.vessel/lib/identity.sh
if [ $# -lt 5 ]; then
  echo "usage: reidentify HOSTNAME MACHINE_ID MAC ADDR/PREFIX GATEWAY [DNS,...]" >&2
  exit 2
fi
v() { [ "$1" = - ] || echo "$1"; }
vessel_set_hostname "$(v "$1")" || exit 1
vessel_set_machine_id "$(v "$2")" || exit 1
if [ -n "$(v "$3")" ]; then
  # A clone resumes with its source's MAC in memory: give the first NIC the new one.
  if ! vessel_iface "$3" >/dev/null; then
    for d in /sys/class/net/*; do
      n=\${d##*/}
      [ "$n" = lo ] && continue
      ip link set dev "$n" down && ip link set dev "$n" address "$3" && ip link set dev "$n" up || exit 1
      break
    done
  fi
  vessel_set_nic "$3" "$(v "$4")" "$(v "$5")" || exit 1
fi
vessel_set_dns "$(v "\${6:-}")" || exit 1
exit 0
`;

/** /sbin/shutdown replacement: `shutdown [-h|-P|-H|-r|-c] [TIME] [MESSAGE]`. */
export const SHUTDOWN_SH = `${SHEBANG}
PATH=/.vessel/bin
sig=USR2
for a in "$@"; do
  case "$a" in
    -r|--reboot) sig=INT ;;
    -c) echo "shutdown: no pending shutdown to cancel"; exit 0 ;;
  esac
done
kill -$sig 1
`;

/** poweroff / halt / reboot replacements; \`-f\` acts at once without stopping processes. */
export function powerScript(action: 'poweroff' | 'halt' | 'reboot'): string {
  const sig = action === 'reboot' ? 'INT' : 'USR2';
  const now = action === 'halt' ? 'poweroff' : action;
  return `${SHEBANG}
PATH=/.vessel/bin
for a in "$@"; do
  case "$a" in -f|--force) sync; exec busybox ${now} -f ;; esac
done
kill -${sig} 1
`;
}

/** acpid handler for the power button (default busybox map: PWRF → PWRF/00000080). */
export const ACPI_POWER_SH = `${SHEBANG}
/.vessel/bin/busybox kill -TERM 1
`;

/** /.vessel/init: PID 1 of every Vessel guest. */
export const GUEST_INIT_SH = `${SHEBANG}
# Vessel guest init (PID 1): mounts, identity, network, guest agent,
# serial console and an orderly power-off. Output goes to the console.
PATH=/.vessel/bin
export PATH
umask 022
mkdir -p /etc
. /.vessel/lib/identity.sh
say() { echo "vessel: $*"; }

# No redirections before /dev exists: a failed redirection skips the command.
mkdir -p /proc /sys /dev /run /tmp
[ -e /proc/self ] || mount -t proc -o nosuid,nodev,noexec proc /proc
[ -e /sys/kernel ] || mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
[ -e /dev/null ] || mount -t devtmpfs -o nosuid devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o nosuid,noexec,gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o nosuid,nodev,mode=1777 shm /dev/shm
mount -t tmpfs -o nosuid,nodev,mode=755 run /run
mount -t tmpfs -o nosuid,nodev,mode=1777 tmp /tmp
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
[ -e /dev/stdin ] || ln -s /proc/self/fd/0 /dev/stdin
[ -e /dev/stdout ] || ln -s /proc/self/fd/1 /dev/stdout
[ -e /dev/stderr ] || ln -s /proc/self/fd/2 /dev/stderr
ln -sf /proc/mounts /etc/mtab 2>/dev/null
mkdir -p /run/vessel /var/log 2>/dev/null

# Images with an init system of their own carry a shutdown that talks to it;
# ours must win while our init is PID 1. A link (systemd's → systemctl) is
# repointed on this VM's disk, never the shared program behind it; a plain
# file is covered by a bind mount for this boot. Busybox links already
# signal PID 1.
for c in shutdown poweroff halt reboot; do
  for d in /sbin /usr/sbin /bin /usr/bin; do
    f="$d/$c"
    [ -e "$f" ] || continue
    t=$(readlink -f "$f")
    case "$t" in /.vessel/*) continue ;; esac
    if [ -L "$f" ]; then
      case "$t" in */busybox) ;; *) ln -sfn "/.vessel/bin/$c" "$f" ;; esac
    else
      mount --bind "/.vessel/bin/$c" "$f" 2>/dev/null
    fi
  done
done

vessel_set_hostname "$(vessel_param vessel.hostname)"
vessel_set_machine_id "$(vessel_param vessel.machine_id)"
vessel_apply_cmdline_network

CHILD_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/.vessel/bin

agent_port=""
for d in /sys/class/virtio-ports/*; do
  [ "$(cat "$d/name" 2>/dev/null)" = ${GUEST_AGENT_PORT} ] && agent_port="/dev/\${d##*/}"
done
agent_loop=""
if [ -n "$agent_port" ]; then
  mkdir -p /run/qemu-ga
  (
    while :; do
      env -i PATH=$CHILD_PATH HOME=/root LANG=C.UTF-8 \\
        /.vessel/ga/${GA_LOADER} --library-path /.vessel/ga/lib /.vessel/ga/qemu-ga \\
        -m virtio-serial -p "$agent_port" -t /run/qemu-ga -f /run/qemu-ga.pid
      echo "vessel: guest agent exited ($?), restarting"
      sleep 1
    done
  ) &
  agent_loop=$!
  say "guest agent on $agent_port"
else
  say "no ${GUEST_AGENT_PORT} port: guest agent not started"
fi

acpid -c /.vessel/acpi -a /.vessel/acpi/acpid.conf -l /run/vessel/acpid.log -p /run/vessel/acpid.pid

# User-data (vm create --cloud-init), handed over by QEMU's fw_cfg: run once per instance (machine-id).
ud=/sys/firmware/qemu_fw_cfg/by_name/opt/vessel/user-data/raw
if [ -r "$ud" ]; then
  mkdir -p /var/lib/vessel
  done_mark="/var/lib/vessel/user-data.$(cat /etc/machine-id 2>/dev/null)"
  if [ ! -e "$done_mark" ]; then
    cp "$ud" /run/vessel/user-data && chmod 700 /run/vessel/user-data
    say "running user-data (log: /var/log/vessel-user-data.log)"
    (
      env -i PATH=$CHILD_PATH HOME=/root LANG=C.UTF-8 /run/vessel/user-data > /var/log/vessel-user-data.log 2>&1
      rc=$?
      echo "vessel: user-data finished with status $rc" > /dev/ttyS0
      [ $rc = 0 ] && : > "$done_mark"
    ) &
  fi
fi

console_loop=""
mode=$(vessel_param vessel.console)
if [ "\${mode:-shell}" != none ] && [ -c /dev/ttyS0 ]; then
  sh=/bin/sh
  [ -x "$sh" ] || sh=/.vessel/bin/sh
  (
    while :; do
      if [ "$mode" = login ]; then
        env -i PATH=$CHILD_PATH TERM=vt100 setsid getty -L 115200 ttyS0 vt100
      else
        echo "vessel: $(hostname) console: shell on ttyS0" > /dev/ttyS0
        env -i PATH=$CHILD_PATH HOME=/root TERM=vt100 SHELL=$sh \\
          setsid -c "$sh" -l < /dev/ttyS0 > /dev/ttyS0 2>&1
      fi
      sleep 1
    done
  ) &
  console_loop=$!
fi

# Sets vessel_n to the number of user processes besides PID 1 (no subshell,
# which would count itself; kernel threads and zombies have no cmdline).
vessel_count() {
  vessel_n=0
  for p in /proc/[0-9]*; do
    [ "\${p#/proc/}" = 1 ] && continue
    [ -s "$p/cmdline" ] && vessel_n=$((vessel_n + 1))
  done
}

vessel_stop() {
  trap '' TERM INT USR1 USR2
  say "$1: stopping processes"
  kill $agent_loop $console_loop 2>/dev/null
  kill -TERM -1 2>/dev/null
  i=0
  vessel_count
  while [ $i -lt 50 ] && [ $vessel_n -gt 0 ]; do sleep 0.1; i=$((i + 1)); vessel_count; done
  kill -KILL -1 2>/dev/null
  sync
  umount -a -r 2>/dev/null
  mount -o remount,ro / 2>/dev/null
  sync
  say "$1"
  busybox $1 -f
}

trap 'vessel_stop poweroff' TERM USR1 USR2
trap 'vessel_stop reboot' INT
read -r up _ < /proc/uptime
say "ready \${up}s after kernel start"
while :; do
  wait
  sleep 1
done
`;
