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
import { effectiveProcess, mergeEnv, parseBind } from './run-config.js';
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

function mountsOf(c: ContainerRecord): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const b of c.spec.HostConfig.Binds ?? []) {
    const m = parseBind(b);
    out.push({ Type: 'bind', Source: m.source, Destination: m.destination, Mode: m.readonly ? 'ro' : '', RW: !m.readonly, Propagation: 'rprivate' });
  }
  for (const [dest] of Object.entries(c.spec.HostConfig.Tmpfs ?? {})) {
    out.push({ Type: 'tmpfs', Source: '', Destination: dest, Mode: '', RW: true, Propagation: '' });
  }
  return out;
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

export function inspectContainer(c: ContainerRecord, paths: DaemonPaths, images: ImageStore): Record<string, unknown> {
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
        LowerDir: image ? images.lowerDirs(image).join(':') : '',
        UpperDir: p.upper,
        WorkDir: p.work,
        MergedDir: p.rootfs,
      },
    },
    Mounts: mountsOf(c),
    Config: mergedConfig(c, image?.config.config ?? {}),
    NetworkSettings: { Ports: {}, Networks: {}, IPAddress: '', Gateway: '', MacAddress: '' },
  };
}

export function summarizeContainer(c: ContainerRecord, images: ImageStore): Record<string, unknown> {
  const proc = processOf(c, images);
  return {
    Id: c.id,
    Names: [`/${c.name}`],
    Image: c.spec.Config.Image ?? c.imageId,
    ImageID: c.imageId,
    Command: [proc.path, ...proc.args].map((a) => (/\s/.test(a) ? `"${a}"` : a)).join(' '),
    Created: Math.floor(Date.parse(c.created) / 1000),
    Ports: [],
    Labels: c.spec.Config.Labels ?? {},
    State: c.state.Status,
    Status: statusLine(c),
    HostConfig: { NetworkMode: (c.spec.HostConfig.NetworkMode as string) || 'none' },
    NetworkSettings: { Networks: {} },
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
