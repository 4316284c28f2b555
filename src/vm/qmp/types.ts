/**
 * Typed shapes of the QMP 7.2 replies and events Vessel uses. Field names
 * are camelCased from QEMU's kebab-case; u64 "not available" values are null.
 */
import type { JsonObject } from '../json.js';

export interface QmpGreeting {
  version: { major: number; minor: number; micro: number; package: string };
  capabilities: string[];
}

export interface QmpEvent {
  event: string;
  data: JsonObject;
  /** Wall-clock time QEMU stamped on the event, in ms since the epoch. */
  timestampMs: number;
}

export type RunState =
  | 'debug'
  | 'inmigrate'
  | 'internal-error'
  | 'io-error'
  | 'paused'
  | 'postmigrate'
  | 'prelaunch'
  | 'finish-migrate'
  | 'restore-vm'
  | 'running'
  | 'save-vm'
  | 'shutdown'
  | 'suspended'
  | 'watchdog'
  | 'guest-panicked'
  | 'colo';

export interface StatusInfo {
  status: RunState;
  running: boolean;
}

export interface BalloonInfo {
  /** Current guest RAM size in bytes as the balloon driver reports it. */
  actual: number;
}

/** virtio-balloon guest statistics; null = the guest driver has not reported this one. */
export interface GuestMemoryStats {
  /** Unix time (s) of the guest's last report; 0 = never. */
  lastUpdate: number;
  swapIn: number | null;
  swapOut: number | null;
  majorFaults: number | null;
  minorFaults: number | null;
  freeMemory: number | null;
  totalMemory: number | null;
  availableMemory: number | null;
  diskCaches: number | null;
  hugetlbAllocations: number | null;
  hugetlbFailures: number | null;
}

export type MigrationStatus =
  | 'none'
  | 'setup'
  | 'cancelling'
  | 'cancelled'
  | 'active'
  | 'postcopy-active'
  | 'postcopy-paused'
  | 'postcopy-recover'
  | 'completed'
  | 'failed'
  | 'colo'
  | 'pre-switchover'
  | 'device'
  | 'wait-unplug';

export interface MigrationInfo {
  status: MigrationStatus;
  totalTimeMs?: number;
  downtimeMs?: number;
  expectedDowntimeMs?: number;
  setupTimeMs?: number;
  errorDesc?: string;
  ram?: { transferred: number; remaining: number; total: number; mbps: number; dirtySyncCount: number };
}

export type MigrationCapability =
  | 'xbzrle'
  | 'rdma-pin-all'
  | 'auto-converge'
  | 'zero-blocks'
  | 'compress'
  | 'events'
  | 'postcopy-ram'
  | 'x-colo'
  | 'release-ram'
  | 'block'
  | 'return-path'
  | 'pause-before-switchover'
  | 'multifd'
  | 'dirty-bitmaps'
  | 'postcopy-blocktime'
  | 'late-block-activate'
  | 'x-ignore-shared'
  | 'validate-uuid'
  | 'background-snapshot'
  | 'zero-copy-send'
  | 'postcopy-preempt';

/** A subset of `migrate-set-parameters`; units as QEMU's (ms, bytes/s). */
export interface MigrationParameters {
  downtimeLimitMs?: number;
  maxBandwidth?: number;
  multifdChannels?: number;
  cpuThrottleInitial?: number;
  cpuThrottleIncrement?: number;
  maxCpuThrottle?: number;
}

export interface BlockDeviceInfo {
  device: string;
  qdev?: string;
  locked: boolean;
  removable: boolean;
  inserted?: {
    nodeName: string;
    file: string;
    driver: string;
    ro: boolean;
    backingFile?: string;
    snapshots: { id: string; name: string; vmStateSize: number; dateSec: number }[];
  };
}

export interface BlockNodeInfo {
  nodeName: string;
  driver: string;
  file: string;
  ro: boolean;
  backingFile?: string;
}

export type JobStatus =
  | 'undefined'
  | 'created'
  | 'running'
  | 'paused'
  | 'ready'
  | 'standby'
  | 'waiting'
  | 'pending'
  | 'aborting'
  | 'concluded'
  | 'null';

export interface JobInfo {
  id: string;
  type: string;
  status: JobStatus;
  currentProgress: number;
  totalProgress: number;
  error?: string;
}

export interface CpuInfoFast {
  cpuIndex: number;
  /** Host thread id of the vCPU (for cgroups/affinity). */
  threadId: number;
  qomPath: string;
  target: string;
}
