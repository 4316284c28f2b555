/**
 * The initramfs `/init` (busybox sh). It loads the drivers the kernel lacks,
 * waits for the root disk, grows its ext4 to the disk size (an overlay disk
 * may be larger than its base), and hands over to the kit's init.
 *
 * `/etc/modules.load` lists module names in load order (dependencies first);
 * the modules themselves are `/lib/modules/<name>.ko`.
 */
export const KIT_INIT = '/.vessel/init';

export const INITRAMFS_INIT = `#!/bin/busybox sh
export PATH=/bin:/sbin
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /newroot /tmp /etc
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
ln -sf /proc/mounts /etc/mtab

say() { echo "vessel-initramfs: $*"; }
fail() {
  say "$*"
  say "cannot boot: powering off in 5 s"
  sleep 5
  poweroff -f
}
param() {
  set -f
  v=""
  for a in $(cat /proc/cmdline); do
    case "$a" in "$1="*) v="\${a#*=}" ;; esac
  done
  set +f
  echo "$v"
}

while read -r m; do
  [ -n "$m" ] && { insmod "/lib/modules/$m.ko" || say "failed to load module $m"; }
done < /etc/modules.load

root=$(param vessel.root)
root=\${root:-/dev/vda}
i=0
while [ ! -b "$root" ]; do
  i=$((i + 1))
  [ $i -gt 200 ] && fail "root disk $root did not appear"
  sleep 0.05
done
if ! mount -t ext4 -o rw,noatime "$root" /newroot 2>/dev/null; then
  # A partitioned disk (e.g. from --from-libvirt): the first partition.
  if [ -b "\${root}1" ] && mount -t ext4 -o rw,noatime "\${root}1" /newroot; then root="\${root}1"; else fail "cannot mount $root (ext4)"; fi
fi
if [ "$(param vessel.grow)" != 0 ] && [ -x /sbin/resize2fs ]; then
  # Online grow; a no-op (one superblock read) when the sizes already match.
  /sbin/resize2fs "$root" > /tmp/resize2fs.log 2>&1 || { say "resize2fs failed:"; cat /tmp/resize2fs.log; }
  grep -q 'is now' /tmp/resize2fs.log && say "grew the root file system to the disk size"
fi
if [ ! -x "/newroot${KIT_INIT}" ]; then
  # Not a disk Vessel made (e.g. a libvirt domain's): put the guest kit on it (the VM's overlay takes the writes).
  [ -x "/kit${KIT_INIT}" ] || fail "${KIT_INIT} is missing on $root: not a Vessel disk"
  say "installing the Vessel guest kit on $root"
  mkdir -p /newroot/.vessel && cp -a /kit/.vessel/. /newroot/.vessel/ || fail "cannot install the guest kit on $root"
fi

mkdir -p /newroot/dev
mount --move /dev /newroot/dev || umount /dev
umount /sys
umount /proc
exec switch_root /newroot ${KIT_INIT}
`;
