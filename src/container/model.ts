/**
 * The container domain model.
 *
 * A container record is what the user asked for (`ContainerSpec`, in the
 * shapes of the Docker Engine API's create body, so `inspect` can return it
 * unchanged) plus what is (`ContainerState`).
 *
 * Lifecycle (`State.Status`):
 *
 *   created ──start──▶ running ◀──unpause── paused
 *      ▲                  │  └────pause──────▶
 *      │                exit
 *      │                  ▼
 *      └──(start)──── exited ──restart policy──▶ restarting ──▶ running
 *
 * `removing` is transient; `dead` marks a container whose resources could not
 * be released (it can only be removed). Operations check the status first and
 * fail with FailedPrecondition/Conflict (see manager.ts).
 */
import type { HealthConfig, ImageRunConfig } from '../image/oci.js';

export type ContainerStatus = 'created' | 'running' | 'paused' | 'restarting' | 'exited' | 'dead' | 'removing';

export interface RestartPolicy {
  Name: '' | 'no' | 'always' | 'on-failure' | 'unless-stopped';
  MaximumRetryCount?: number;
}

/** Docker's container `Config` (the subset Vessel acts on; unknown fields are kept). */
export interface ContainerRunConfig extends ImageRunConfig {
  Hostname?: string;
  Domainname?: string;
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  Tty?: boolean;
  OpenStdin?: boolean;
  StdinOnce?: boolean;
  Image?: string;
  StopTimeout?: number;
  Healthcheck?: HealthConfig;
}

export interface HostConfig {
  Binds?: string[] | null;
  Tmpfs?: Record<string, string> | null;
  Memory?: number;
  MemoryReservation?: number;
  MemorySwap?: number;
  NanoCpus?: number;
  CpuShares?: number;
  CpuQuota?: number;
  CpuPeriod?: number;
  PidsLimit?: number | null;
  ReadonlyRootfs?: boolean;
  RestartPolicy?: RestartPolicy;
  CapAdd?: string[] | null;
  CapDrop?: string[] | null;
  SecurityOpt?: string[] | null;
  AutoRemove?: boolean;
  Runtime?: string;
  NetworkMode?: string;
  PortBindings?: Record<string, Array<{ HostIp?: string; HostPort?: string }>> | null;
  Privileged?: boolean;
  [key: string]: unknown;
}

export interface ContainerSpec {
  Config: ContainerRunConfig;
  HostConfig: HostConfig;
  NetworkingConfig?: { EndpointsConfig?: Record<string, unknown> | null } | null;
}

/** A port published on the host (after picking random host ports). */
export interface PublishedPortState {
  proto: 'tcp' | 'udp';
  containerPort: number;
  hostIp: string | null;
  hostPort: number;
}

export interface HealthLogEntry {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

export interface HealthState {
  Status: 'starting' | 'healthy' | 'unhealthy';
  FailingStreak: number;
  Log: HealthLogEntry[];
}

export interface ContainerState {
  Status: ContainerStatus;
  Pid: number;
  ConmonPid: number;
  ExitCode: number;
  Error: string;
  OOMKilled: boolean;
  StartedAt: string;
  FinishedAt: string;
  RestartCount: number;
  /** Set by `stop`/`kill` from the user; restart policies other than `always` honour it. */
  ManuallyStopped: boolean;
  Health?: HealthState;
  /** Published ports while running. */
  Ports?: PublishedPortState[];
}

export interface ContainerRecord {
  id: string;
  name: string;
  imageId: string;
  created: string;
  spec: ContainerSpec;
  state: ContainerState;
}

export const ZERO_TIME = '0001-01-01T00:00:00Z';

export function initialState(): ContainerState {
  return {
    Status: 'created',
    Pid: 0,
    ConmonPid: 0,
    ExitCode: 0,
    Error: '',
    OOMKilled: false,
    StartedAt: ZERO_TIME,
    FinishedAt: ZERO_TIME,
    RestartCount: 0,
    ManuallyStopped: false,
  };
}

export function isActive(s: ContainerStatus): boolean {
  return s === 'running' || s === 'paused' || s === 'restarting';
}
