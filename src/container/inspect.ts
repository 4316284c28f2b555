/**
 * Docker Engine API views of a container: `inspect` (ContainerJSON) and the
 * `ps` summary, plus the human status line ("Up 3 minutes",
 * "Exited (0) 2 seconds ago").
 */
import type { ImageStore } from '../image/image-store.js';
import { humanDuration } from '../core/units.js';
import { containerHostname } from './bundle.js';
import { ZERO_TIME, type ContainerRecord } from './model.js';
import { containerPaths, type DaemonPaths } from './paths.js';
import { effectiveProcess, mergeEnv } from './run-config.js';
import { volumeServiceFor } from '../volume/registry.js';
import { mountViews } from '../volume/volume-service.js';
import type { ImageRunConfig } from '../image/oci.js';

export function statusLine(c: ContainerRecord, now = Date.now()): string {
  const s = c.state;
  switch (s.Status) {
    case 'running': {
      const health = s.Health ? ` (${s.Health.Status === 'starting' ? 'health: starting' : s.Health.Status})` : '';
      return `Up ${humanDuration(now - Date.parse(s.StartedAt))}${health}`;
    }
    case 'paused':
      return `Up ${humanDuration(now - Date.parse(s.StartedAt))} (Paused)`;
    case 'restarting':
      return `Restarting (${s.ExitCode}) ${humanDuration(now - Date.parse(s.FinishedAt))} ago`;
    case 'removing':
      return 'Removal In Progress';
    case 'dead':
      return 'Dead';
    case 'exited':
      if (s.FinishedAt === ZERO_TIME) return 'Created';
      return `Exited (${s.ExitCode}) ${humanDuration(now - Date.parse(s.FinishedAt))} ago`;
    default:
      return 'Created';
  }
}

function processOf(c: ContainerRecord, images: ImageStore): { path: string; args: string[] } {
  const image = images.tryResolve(c.imageId);
  try {
    const p = effectiveProcess(image?.config ?? { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }, c.spec);
    return { path: p.path, args: p.args.slice(1) };
  } catch {
    return { path: '', args: [] };
  }
}

/** Docker's `Mounts`: binds, tmpfs and volumes (with their names and `_data` paths when the daemon's volume service is known). */
function mountsOf(c: ContainerRecord, paths?: DaemonPaths): Array<Record<string, unknown>> {
  const volumes = paths ? volumeServiceFor(paths.containers) : undefined;
  return volumes ? volumes.mountViews(c) : mountViews(c, null, () => '');
}

/** The container's Config with the image's defaults filled in, as Docker shows it. */
function mergedConfig(c: ContainerRecord, ic: ImageRunConfig): Record<string, unknown> {
  const cc = c.spec.Config;
  const entrypointGiven = cc.Entrypoint !== undefined && cc.Entrypoint !== null;
  let env: string[] = cc.Env ?? [];
  try {
    env = mergeEnv(ic.Env, cc.Env);
  } catch {
    /* shown as given */
  }
  return {
    ...cc,
    Hostname: containerHostname(c),
    User: cc.User || ic.User || '',
    Env: env,
    Cmd: cc.Cmd && cc.Cmd.length ? cc.Cmd : entrypointGiven ? null : (ic.Cmd ?? null),
    Entrypoint: entrypointGiven ? cc.Entrypoint : (ic.Entrypoint ?? null),
    WorkingDir: cc.WorkingDir || ic.WorkingDir || '',
    Labels: { ...(ic.Labels ?? {}), ...(cc.Labels ?? {}) },
    ExposedPorts: { ...(ic.ExposedPorts ?? {}), ...(cc.ExposedPorts ?? {}) },
    Volumes: { ...(ic.Volumes ?? {}), ...(cc.Volumes ?? {}) },
    ...(cc.Healthcheck || ic.Healthcheck ? { Healthcheck: cc.Healthcheck ?? ic.Healthcheck } : {}),
    ...(cc.StopSignal || ic.StopSignal ? { StopSignal: cc.StopSignal || ic.StopSignal } : {}),
    Image: cc.Image,
  };
}

/** What inspect needs to know of a container's networks. */
export interface NetView {
  endpoints: Array<{ networkId: string; ip: string; mac: string; aliases: string[] }>;
  networks: Array<{ id: string; name: string; subnet: string; gateway: string }>;
}

/** Docker's NetworkSettings: per-network endpoints, the primary address, published ports. */
function networkSettings(c: ContainerRecord, net: NetView | undefined): Record<string, unknown> {
  const running = c.state.Status === 'running' || c.state.Status === 'paused';
  const networks: Record<string, unknown> = {};
  for (const ep of running ? (net?.endpoints ?? []) : []) {
    const n = net?.networks.find((x) => x.id === ep.networkId);
    if (!n) continue;
    networks[n.name] = {
      IPAMConfig: null,
      Links: null,
      Aliases: ep.aliases,
      NetworkID: n.id,
      EndpointID: `${n.id.slice(0, 16)}${c.id.slice(0, 48)}`,
      Gateway: n.gateway,
      IPAddress: ep.ip,
      IPPrefixLen: Number(n.subnet.split('/')[1]),
      MacAddress: ep.mac,
    };
  }
  const ports: Record<string, Array<{ HostIp: string; HostPort: string }> | null> = {};
  for (const key of Object.keys(c.spec.Config.ExposedPorts ?? {})) ports[key] = null;
  for (const p of running ? (c.state.Ports ?? []) : []) {
    const key = `${p.containerPort}/${p.proto}`;
    (ports[key] ??= []).push({ HostIp: p.hostIp ?? '0.0.0.0', HostPort: String(p.hostPort) });
  }
  const first = Object.values(networks)[0] as { IPAddress?: string; Gateway?: string; MacAddress?: string; IPPrefixLen?: number } | undefined;
  return {
    Ports: ports,
    Networks: networks,
    IPAddress: first?.IPAddress ?? '',
    IPPrefixLen: first?.IPPrefixLen ?? 0,
    Gateway: first?.Gateway ?? '',
    MacAddress: first?.MacAddress ?? '',
  };
}

export function inspectContainer(c: ContainerRecord, paths: DaemonPaths, images: ImageStore, net?: NetView): Record<string, unknown> {
  const p = containerPaths(paths, c.id);
  const s = c.state;
  const proc = processOf(c, images);
  const image = images.tryResolve(c.imageId);
  return {
    Id: c.id,
    Created: c.created,
    Path: proc.path,
    Args: proc.args,
    State: {
      Status: s.Status,
      Running: s.Status === 'running' || s.Status === 'paused',
      Paused: s.Status === 'paused',
      Restarting: s.Status === 'restarting',
      OOMKilled: s.OOMKilled,
      Dead: s.Status === 'dead',
      Pid: s.Pid,
      ExitCode: s.ExitCode,
      Error: s.Error,
      StartedAt: s.StartedAt,
      FinishedAt: s.FinishedAt,
      ...(s.Health ? { Health: s.Health } : {}),
    },
    Image: c.imageId,
    ResolvConfPath: p.resolvConf,
    HostnamePath: p.hostname,
    HostsPath: p.hosts,
    LogPath: p.log,
    Name: `/${c.name}`,
    RestartCount: s.RestartCount,
    Driver: 'overlay',
    Platform: 'linux',
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: null,
    HostConfig: {
      NetworkMode: 'none',
      RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
      AutoRemove: false,
      ...c.spec.HostConfig,
    },
    GraphDriver: {
      Name: 'overlay',
      Data: {
        LowerDir: image ? images.layerPaths(image).join(':') : '',
        UpperDir: p.upper,
        WorkDir: p.work,
        MergedDir: p.rootfs,
      },
    },
    Mounts: mountsOf(c, paths),
    Config: mergedConfig(c, image?.config.config ?? {}),
    NetworkSettings: networkSettings(c, net),
  };
}

export function summarizeContainer(c: ContainerRecord, images: ImageStore, net?: NetView): Record<string, unknown> {
  const proc = processOf(c, images);
  return {
    Id: c.id,
    Names: [`/${c.name}`],
    Image: c.spec.Config.Image ?? c.imageId,
    ImageID: c.imageId,
    Command: [proc.path, ...proc.args].map((a) => (/\s/.test(a) ? `"${a}"` : a)).join(' '),
    Created: Math.floor(Date.parse(c.created) / 1000),
    Ports: (c.state.Status === 'running' || c.state.Status === 'paused' ? (c.state.Ports ?? []) : []).map((p) => ({
      IP: p.hostIp ?? '0.0.0.0',
      PrivatePort: p.containerPort,
      PublicPort: p.hostPort,
      Type: p.proto,
    })),
    Labels: c.spec.Config.Labels ?? {},
    State: c.state.Status,
    Status: statusLine(c),
    HostConfig: { NetworkMode: (c.spec.HostConfig.NetworkMode as string) || 'none' },
    NetworkSettings: { Networks: (networkSettings(c, net).Networks as Record<string, unknown>) },
    Mounts: mountsOf(c),
  };
}

/** Docker's `ps --filter` keys that apply here. */
export function matchesFilters(c: ContainerRecord, filters: Record<string, string[]>): boolean {
  for (const [key, values] of Object.entries(filters)) {
    if (!values.length) continue;
    const ok = values.some((v) => {
      switch (key) {
        case 'id':
          return c.id.startsWith(v);
        case 'name':
          return new RegExp(v).test(c.name);
        case 'status':
          return c.state.Status === v || (v === 'created' && c.state.Status === 'exited' && c.state.FinishedAt === ZERO_TIME);
        case 'label': {
          const i = v.indexOf('=');
          const labels = c.spec.Config.Labels ?? {};
          return i < 0 ? v in labels : labels[v.slice(0, i)] === v.slice(i + 1);
        }
        case 'ancestor':
          return c.spec.Config.Image === v || c.imageId === v || c.imageId.startsWith(`sha256:${v}`);
        case 'exited':
          return c.state.Status === 'exited' && String(c.state.ExitCode) === v;
        case 'health':
          return (c.state.Health?.Status ?? 'none') === v;
        default:
          return true;
      }
    });
    if (!ok) return false;
  }
  return true;
}
