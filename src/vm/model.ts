/**
 * Virtual machines: the records the daemon keeps for each VM.
 *
 * A VM is one QEMU process with its own QMP, guest-agent and console sockets
 * under `<root>/vms/<id>/`; its root disk is a thin qcow2 overlay on the
 * image's shared read-only base disk. The daemon is not the QEMU process's
 * parent for long: QEMU runs in its own session so VMs outlive the daemon,
 * and a restarted daemon re-attaches through the sockets and the pid.
 */
export type VmStatus = 'created' | 'running' | 'paused' | 'stopped' | 'exited';

export interface VmNic {
  network: string;
  mac: string;
  ip?: string | null;
}

export interface VmDisk {
  /** Short name, unique per VM (`root` is the image disk). */
  name: string;
  path: string;
  /** Virtual size in bytes. */
  size: number;
}

export interface VmConfig {
  image: string;
  imageId: string;
  vcpus: number;
  topology: { sockets: number; cores: number; threads: number } | null;
  /** Guest RAM in bytes (the balloon's maximum). */
  memory: number;
  /** Virtual size of the root overlay in bytes; null = the base disk's size. */
  disk: number | null;
  nics: VmNic[];
  /** Docker-like CPU weight 1..10000 (null = default) and cap in percent of one CPU. */
  cpuWeight: number | null;
  cpuCap: number | null;
  hostname: string;
  machineId: string;
  /** Extra data disks (`vm disk attach`). */
  disks: VmDisk[];
  cloudInit: string | null;
  /** Set on clones: the snapshot to load at first start, and the identity to apply afterwards. */
  loadSnapshot: string | null;
}

export interface VmState {
  status: VmStatus;
  pid: number | null;
  startedAt: string | null;
  finishedAt: string | null;
  /** Why the VM is not running (clean shutdown, QEMU crash, ...), or why it failed to start. */
  reason: string | null;
  accel: 'kvm' | 'tcg' | null;
  accelReason: string | null;
  /** Requested balloon target in bytes; null = full memory. */
  balloon: number | null;
}

export interface VmRecord {
  id: string;
  name: string;
  created: string;
  config: VmConfig;
  state: VmState;
}

export interface VmSnapshot {
  vmId: string;
  name: string;
  created: string;
  /** True when memory and device state were saved (the VM was running or paused). */
  withMemory: boolean;
  vmClockMs: number | null;
}

export const NEW_STATE: VmState = {
  status: 'created',
  pid: null,
  startedAt: null,
  finishedAt: null,
  reason: null,
  accel: null,
  accelReason: null,
  balloon: null,
};

export const VM_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
