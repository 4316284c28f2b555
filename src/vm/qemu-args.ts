/**
 * Pure builder for a QEMU 7.2 command line (x86_64) from a typed spec.
 *
 * Choices (see docs/vm-control.md):
 * - q35 by default (PCI, hotplug, firmware boot, migration); microvm for
 *   direct-kernel guests with at most 8 virtio-mmio devices and no hotplug.
 * - Every disk is two `-blockdev` nodes: `<id>-file` (protocol) and `<id>`
 *   (format), so QMP snapshots and hotplug address the disk by its id.
 * - No `-no-shutdown`: when the guest powers off, QEMU exits and the manager
 *   sees the process end (after a SHUTDOWN event). A stopped VM holds no RAM.
 * - `-sandbox on` denies obsolete syscalls and resource control. `spawn`
 *   stays allowed because memory snapshots migrate to `exec:cat > FILE`
 *   (7.2 has no `file:` URI). `elevateprivileges` is denied unless `runAs` is
 *   set: QEMU installs the seccomp filter before `-runas` calls setuid, and
 *   the filter would kill it (SIGSYS, measured). To keep it denied, start
 *   QEMU as the unprivileged user instead of passing runAs.
 */
import { InvalidArgumentError } from '../core/errors.js';

export type MachineType = 'q35' | 'microvm';

export interface QemuDisk {
  /** QEMU id and block node name; [A-Za-z][A-Za-z0-9_-]*, at most 26 characters. */
  id: string;
  path: string;
  format: 'qcow2' | 'raw';
  readOnly?: boolean;
  /** Shown to the guest as /dev/disk/by-id/virtio-<serial> (max 20 characters). */
  serial?: string;
}

export interface QemuNic {
  id: string;
  /** An existing tap device (created and attached to a bridge by the caller). */
  ifname: string;
  mac: string;
}

export interface QemuLaunchSpec {
  name: string;
  uuid?: string;
  /** Default q35. */
  machine?: MachineType;
  accel: 'kvm' | 'tcg';
  /** Default `host` on KVM, `max` on TCG. */
  cpuModel?: string;
  vcpus: number;
  /** sockets × cores × threads must equal vcpus. Default: vcpus sockets of 1 core. */
  topology?: { sockets: number; cores: number; threads: number };
  memoryBytes: number;
  kernel?: string;
  initrd?: string;
  /** Kernel command line (the caller adds e.g. tsc_early_khz= for microvm on TCG). */
  append?: string;
  disks?: QemuDisk[];
  nics?: QemuNic[];
  qmpSocket: string;
  /** Host end of the virtserialport org.qemu.guest_agent.0. */
  guestAgentSocket?: string;
  /** Serial console: a chardev socket server, also logged to `logFile`. */
  serial?: { socket: string; logFile: string };
  /** virtio-balloon with id balloon0 (deflate-on-oom, free-page-reporting). Default true. */
  balloon?: boolean;
  pidFile?: string;
  /** `-runas USER`; forces sandbox elevateprivileges=allow (see above). */
  runAs?: string;
  /** Keep QEMU alive after a guest shutdown (status `shutdown`). Default false. */
  noShutdown?: boolean;
  /** Make guest reboots exit QEMU. Default true on microvm (reboot=t guests), false on q35. */
  noReboot?: boolean;
  /** Restore: `-incoming URI`, e.g. `exec:cat /path/state.bin`. */
  incoming?: string;
  /** `-S`: wait for `cont` before running the guest. */
  startPaused?: boolean;
  /** `-loadvm TAG`: start from an internal snapshot (memory, devices and disks) of the qcow2 disks. */
  loadSnapshot?: string;
  /** Files the guest reads from /sys/firmware/qemu_fw_cfg (`-fw_cfg name=opt/…,file=…`). */
  fwCfg?: Array<{ name: string; file: string }>;
  /** Default true. */
  sandbox?: boolean;
  /**
   * q35 only: empty PCIe root ports `hp0`…`hpN-1` for hotplug (device_add
   * with `bus: 'hp0'`); the q35 root bus itself does not take hotplug. Default 4.
   */
  hotplugPorts?: number;
}

const MiB = 1024 * 1024;
/** virtio-mmio transports microvm provides. */
const MICROVM_MAX_DEVICES = 8;
const ID = /^[A-Za-z][A-Za-z0-9_-]{0,25}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** QEMU option values: a comma is written as two commas. */
export function escapeOptionValue(v: string): string {
  return v.replaceAll(',', ',,');
}

function bad(what: string): never {
  throw new InvalidArgumentError(`Invalid VM launch spec: ${what}`);
}

function checkAbsolute(kind: string, p: string): string {
  if (!p.startsWith('/') || p.includes('\n')) bad(`${kind} must be an absolute path: ${p}`);
  return escapeOptionValue(p);
}

function validate(spec: QemuLaunchSpec): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(spec.name)) bad(`name ${JSON.stringify(spec.name)}`);
  if (spec.uuid !== undefined && !UUID.test(spec.uuid)) bad(`uuid ${spec.uuid}`);
  if (!Number.isInteger(spec.vcpus) || spec.vcpus < 1 || spec.vcpus > 255) bad(`vcpus ${spec.vcpus} (1..255)`);
  const t = spec.topology;
  if (t && t.sockets * t.cores * t.threads !== spec.vcpus) {
    bad(`topology ${t.sockets}×${t.cores}×${t.threads} does not equal ${spec.vcpus} vcpus`);
  }
  if (!Number.isSafeInteger(spec.memoryBytes) || spec.memoryBytes < 16 * MiB || spec.memoryBytes % MiB !== 0) {
    bad(`memory ${spec.memoryBytes} bytes (a whole number of MiB, at least 16 MiB)`);
  }
  const ids = new Set<string>(['balloon0', 'qga0', 'vser0', 'ser0', ...Array.from({ length: 16 }, (_, i) => `hp${i}`)]);
  for (const x of [...(spec.disks ?? []), ...(spec.nics ?? [])]) {
    if (!ID.test(x.id)) bad(`device id ${JSON.stringify(x.id)} (letters, digits, _ and -, at most 26 characters)`);
    if (ids.has(x.id)) bad(`duplicate or reserved device id ${x.id}`);
    ids.add(x.id);
  }
  for (const d of spec.disks ?? []) {
    if (d.serial !== undefined && !/^[A-Za-z0-9_.-]{1,20}$/.test(d.serial)) bad(`disk ${d.id} serial ${JSON.stringify(d.serial)}`);
  }
  for (const n of spec.nics ?? []) {
    if (!MAC.test(n.mac)) bad(`nic ${n.id} mac ${n.mac}`);
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(n.ifname)) bad(`nic ${n.id} tap name ${n.ifname}`);
  }
  if ((spec.initrd || spec.append) && !spec.kernel) bad('initrd/append need a kernel');
  if (spec.machine === 'microvm') {
    if (!spec.kernel) bad('microvm needs a kernel (no firmware can boot from virtio-mmio disks)');
    const devices = (spec.disks?.length ?? 0) + (spec.nics?.length ?? 0) + (spec.balloon === false ? 0 : 1) + (spec.guestAgentSocket ? 1 : 0);
    if (devices > MICROVM_MAX_DEVICES) bad(`microvm supports at most ${MICROVM_MAX_DEVICES} virtio devices, spec has ${devices}`);
  }
}

/** The argv (without the binary) for `qemu-system-x86_64`. Throws InvalidArgumentError on a bad spec. */
export function buildQemuArgs(spec: QemuLaunchSpec): string[] {
  validate(spec);
  const microvm = spec.machine === 'microvm';
  const dev = (kind: 'blk' | 'net' | 'balloon' | 'serial'): string => `virtio-${kind}-${microvm ? 'device' : 'pci'}`;
  const a: string[] = [];
  const sandbox = spec.sandbox !== false;

  a.push('-name', `guest=${escapeOptionValue(spec.name)},debug-threads=on`);
  if (spec.uuid) a.push('-uuid', spec.uuid);
  a.push('-nodefaults', '-no-user-config', '-display', 'none');
  if (sandbox) {
    a.push('-sandbox', `on,obsolete=deny,elevateprivileges=${spec.runAs ? 'allow' : 'deny'},spawn=allow,resourcecontrol=deny`);
  }
  // microvm: ISA serial for the console, RTC for wall time, ACPI for SMP (no MPPARSE in cloud kernels); no legacy PIT/PIC.
  a.push('-machine', microvm ? 'microvm,acpi=on,isa-serial=on,rtc=on,pit=off,pic=off' : 'q35');
  a.push('-accel', spec.accel);
  a.push('-cpu', spec.cpuModel ?? (spec.accel === 'kvm' ? 'host' : 'max'));
  const t = spec.topology ?? { sockets: spec.vcpus, cores: 1, threads: 1 };
  a.push('-smp', `${spec.vcpus},sockets=${t.sockets},cores=${t.cores},threads=${t.threads}`);
  a.push('-m', `${spec.memoryBytes / MiB}M`);

  if (spec.kernel) a.push('-kernel', checkAbsolute('kernel', spec.kernel));
  if (spec.initrd) a.push('-initrd', checkAbsolute('initrd', spec.initrd));
  if (spec.append) a.push('-append', spec.append);

  (spec.disks ?? []).forEach((d, i) => {
    const ro = d.readOnly ? ',read-only=on' : '';
    a.push('-blockdev', `driver=file,filename=${checkAbsolute(`disk ${d.id}`, d.path)},node-name=${d.id}-file${ro},discard=unmap`);
    a.push('-blockdev', `driver=${d.format},file=${d.id}-file,node-name=${d.id}${ro},discard=unmap`);
    let device = `${dev('blk')},drive=${d.id},id=${d.id}`;
    if (d.serial) device += `,serial=${d.serial}`;
    if (!microvm && !spec.kernel && i === 0) device += ',bootindex=1';
    a.push('-device', device);
  });

  for (const n of spec.nics ?? []) {
    a.push('-netdev', `tap,id=${n.id},ifname=${n.ifname},script=no,downscript=no`);
    a.push('-device', `${dev('net')},netdev=${n.id},id=${n.id},mac=${n.mac.toLowerCase()}`);
  }

  if (!microvm) {
    const ports = spec.hotplugPorts ?? 4;
    if (!Number.isInteger(ports) || ports < 0 || ports > 16) bad(`hotplugPorts ${ports} (0..16)`);
    for (let i = 0; i < ports; i++) a.push('-device', `pcie-root-port,id=hp${i},chassis=${i + 1},bus=pcie.0`);
  }

  a.push('-qmp', `unix:${checkAbsolute('QMP socket', spec.qmpSocket)},server=on,wait=off`);

  if (spec.guestAgentSocket) {
    a.push('-device', `${dev('serial')},id=vser0`);
    a.push('-chardev', `socket,id=qga0,path=${checkAbsolute('guest agent socket', spec.guestAgentSocket)},server=on,wait=off`);
    a.push('-device', 'virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0');
  }

  if (spec.serial) {
    const { socket, logFile } = spec.serial;
    a.push('-chardev', `socket,id=ser0,path=${checkAbsolute('serial socket', socket)},server=on,wait=off,logfile=${checkAbsolute('serial log', logFile)},logappend=on`);
    a.push('-serial', 'chardev:ser0');
  }

  if (spec.balloon !== false) a.push('-device', `${dev('balloon')},id=balloon0,deflate-on-oom=on,free-page-reporting=on`);

  if (spec.pidFile) a.push('-pidfile', checkAbsolute('pid file', spec.pidFile));
  if (spec.runAs) {
    if (!/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/.test(spec.runAs)) bad(`runAs ${spec.runAs} (a user name)`);
    a.push('-runas', spec.runAs);
  }
  if (spec.noShutdown) a.push('-no-shutdown');
  if (spec.noReboot ?? microvm) a.push('-no-reboot');
  if (spec.incoming) a.push('-incoming', spec.incoming);
  if (spec.startPaused) a.push('-S');
  if (spec.loadSnapshot) a.push('-loadvm', spec.loadSnapshot);
  for (const f of spec.fwCfg ?? []) {
    if (!/^opt\/[a-z0-9._/-]+$/.test(f.name)) throw new InvalidArgumentError(`Invalid fw_cfg name: ${f.name}`);
    a.push('-fw_cfg', `name=${f.name},file=${escapeOptionValue(f.file)}`);
  }
  return a;
}
