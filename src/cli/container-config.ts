/**
 * `run`/`create` flags and their translation into the Docker create body
 * (container.Config with HostConfig and NetworkingConfig). All parsing and
 * validation that Docker does client-side happens here, so the daemon gets
 * exactly the wire shapes a Docker CLI would send.
 */
import type { FlagSpec, ParsedArgs } from './args.js';
import { collectEnv, parseLabelFile, readTextFile, toMap, type EnvLookup } from './envfile.js';
import { UsageError } from './errors.js';
import { parseCpus, parseGoDuration, parseSize } from './units.js';

const s = (long: string, help: string, short?: string, value?: string): FlagSpec => ({ long, short, type: 'string', help, value });
const l = (long: string, help: string, short?: string): FlagSpec => ({ long, short, type: 'list', help });
const b = (long: string, help: string, short?: string): FlagSpec => ({ long, short, type: 'bool', help });

export const CONTAINER_FLAGS: FlagSpec[] = [
  l('add-host', 'Add a custom host-to-IP mapping (host:ip)'),
  l('cap-add', 'Add Linux capabilities'),
  l('cap-drop', 'Drop Linux capabilities'),
  s('cpu-shares', 'CPU shares (relative weight)', 'c', 'int'),
  s('cpus', 'Number of CPUs', undefined, 'decimal'),
  l('dns', 'Set custom DNS servers'),
  s('domainname', 'Container NIS domain name'),
  s('entrypoint', "Overwrite the default ENTRYPOINT of the image ('' clears it)"),
  l('env', 'Set environment variables (K=V, or K to copy it from this environment)', 'e'),
  l('env-file', 'Read in a file of environment variables'),
  l('expose', 'Expose a port or a range of ports'),
  s('health-cmd', 'Command to run to check health'),
  s('health-interval', 'Time between running the check (ms|s|m|h)', undefined, 'duration'),
  s('health-retries', 'Consecutive failures needed to report unhealthy', undefined, 'int'),
  s('health-start-period', 'Start period for the container to initialize (ms|s|m|h)', undefined, 'duration'),
  s('health-timeout', 'Maximum time to allow one check to run (ms|s|m|h)', undefined, 'duration'),
  s('hostname', 'Container host name', 'h'),
  s('ip', 'IPv4 address on the network (e.g. 10.89.0.10)'),
  b('interactive', 'Keep STDIN open even if not attached', 'i'),
  l('label', 'Set meta data on a container', 'l'),
  l('label-file', 'Read in a line delimited file of labels'),
  s('memory', 'Memory limit (b, k, m, g)', 'm', 'bytes'),
  s('memory-reservation', 'Memory soft limit', undefined, 'bytes'),
  s('memory-swap', "Swap limit equal to memory plus swap: '-1' to enable unlimited swap", undefined, 'bytes'),
  l('mount', 'Attach a filesystem mount to the container (type=volume|bind|tmpfs,source=,target=[,readonly])'),
  s('name', 'Assign a name to the container'),
  { ...s('network', 'Connect a container to a network'), aliases: ['net'] },
  { ...l('network-alias', 'Add network-scoped alias for the container'), aliases: ['net-alias'] },
  b('no-healthcheck', 'Disable any container-specified HEALTHCHECK'),
  b('privileged', 'Give extended privileges to this container'),
  l('publish', "Publish a container's port(s) to the host", 'p'),
  b('publish-all', 'Publish all exposed ports to random ports', 'P'),
  s('pids-limit', 'Tune container pids limit (set -1 for unlimited)', undefined, 'int'),
  b('read-only', "Mount the container's root filesystem as read only"),
  { ...s('restart', 'Restart policy to apply when a container exits'), defaultText: '"no"' },
  b('rm', 'Automatically remove the container and its associated anonymous volumes when it exits'),
  s('runtime', 'Runtime to use for this container'),
  l('security-opt', 'Security Options'),
  s('shm-size', 'Size of /dev/shm', undefined, 'bytes'),
  s('stop-signal', 'Signal to stop the container'),
  s('stop-timeout', 'Timeout (in seconds) to stop a container', undefined, 'int'),
  l('tmpfs', 'Mount a tmpfs directory (PATH[:options])'),
  b('tty', 'Allocate a pseudo-TTY', 't'),
  s('user', 'Username or UID (format: <name|uid>[:<group|gid>])', 'u'),
  l('volume', 'Bind mount a volume (SRC:DST[:ro|rw])', 'v'),
  s('workdir', 'Working directory inside the container', 'w'),
];

export interface CreateRequest {
  name: string | undefined;
  body: Record<string, unknown> & { Tty: boolean; OpenStdin: boolean; HostConfig: Record<string, unknown> };
}

/** Builds the create request from parsed flags; positionals are IMAGE [COMMAND...]. */
export function buildCreateRequest(args: ParsedArgs, lookup?: EnvLookup): CreateRequest {
  const [image, ...cmd] = args.positionals;
  if (!image) throw new UsageError('image name is required');
  const name = args.str('name');
  const interactive = args.bool('interactive');
  const ports = parsePorts(args.list('publish'), args.list('expose'));
  const { binds, volumes } = parseVolumes(args.list('volume'));
  const restart = parseRestartPolicy(args.str('restart') ?? 'no');
  if (args.bool('rm') && restart.Name !== 'no' && restart.Name !== '') {
    throw new UsageError('conflicting options: cannot specify both --restart and --rm');
  }
  const labels = toMap([...args.list('label-file').flatMap((f) => parseLabelFile(readTextFile(f), f)), ...args.list('label')]);

  // `--entrypoint ''` explicitly clears the image's entrypoint.
  const ep = args.str('entrypoint');
  const entrypoint = ep === undefined ? null : ep === '' ? [''] : [ep];

  const hostConfig: Record<string, unknown> = {
    Binds: binds,
    Mounts: parseMounts(args.list('mount')),
    NetworkMode: args.str('network') ?? 'default',
    PortBindings: ports.bindings,
    RestartPolicy: restart,
    AutoRemove: args.bool('rm'),
    CapAdd: args.list('cap-add'),
    CapDrop: args.list('cap-drop'),
    Dns: args.list('dns'),
    ExtraHosts: args.list('add-host'),
    Privileged: args.bool('privileged'),
    PublishAllPorts: args.bool('publish-all'),
    ReadonlyRootfs: args.bool('read-only'),
    SecurityOpt: parseSecurityOpts(args.list('security-opt')),
    Tmpfs: parseTmpfs(args.list('tmpfs')),
    ShmSize: optSize(args, 'shm-size') ?? 0,
    Runtime: args.str('runtime') ?? '',
    Memory: optSize(args, 'memory') ?? 0,
    MemoryReservation: optSize(args, 'memory-reservation') ?? 0,
    MemorySwap: args.str('memory-swap') === '-1' ? -1 : (optSize(args, 'memory-swap') ?? 0),
    NanoCpus: args.has('cpus') ? parseCpus(args.str('cpus') as string) : 0,
    CpuShares: args.int('cpu-shares') ?? 0,
    PidsLimit: args.int('pids-limit') ?? null,
    // The initial terminal size, so the first output is laid out right (as Docker's CLI does).
    ConsoleSize: args.bool('tty') && process.stdout.isTTY ? [process.stdout.rows, process.stdout.columns] : [0, 0],
  };

  return {
    name,
    body: {
      Hostname: args.str('hostname') ?? '',
      Domainname: args.str('domainname') ?? '',
      User: args.str('user') ?? '',
      AttachStdin: interactive,
      AttachStdout: true,
      AttachStderr: true,
      ExposedPorts: ports.exposed,
      Tty: args.bool('tty'),
      OpenStdin: interactive,
      StdinOnce: interactive,
      Env: collectEnv(args.list('env-file'), args.list('env'), lookup),
      Cmd: cmd.length > 0 ? cmd : null,
      Healthcheck: parseHealthcheck(args),
      Image: image,
      Volumes: volumes,
      WorkingDir: args.str('workdir') ?? '',
      Entrypoint: entrypoint,
      Labels: labels,
      StopSignal: args.str('stop-signal'),
      StopTimeout: args.int('stop-timeout'),
      HostConfig: hostConfig,
      NetworkingConfig: { EndpointsConfig: endpointsConfig(args) },
    },
  };
}

function optSize(args: ParsedArgs, name: string): number | undefined {
  const v = args.str(name);
  return v === undefined ? undefined : parseSize(v);
}

export function parseRestartPolicy(text: string): { Name: string; MaximumRetryCount: number } {
  const [name = '', count, ...extra] = text.split(':');
  if (extra.length > 0) throw new UsageError(`invalid restart policy format: '${text}'`);
  if (!['no', 'always', 'unless-stopped', 'on-failure', ''].includes(name)) {
    throw new UsageError(`invalid restart policy: '${name}'`);
  }
  if (count === undefined) return { Name: name === '' ? 'no' : name, MaximumRetryCount: 0 };
  if (name !== 'on-failure') throw new UsageError(`maximum retry count cannot be used with restart policy '${name}'`);
  if (!/^\d+$/.test(count)) throw new UsageError(`invalid maximum retry count: '${count}'`);
  return { Name: name, MaximumRetryCount: Number(count) };
}

function parseSecurityOpts(opts: string[]): string[] {
  for (const o of opts) {
    if (o !== 'no-new-privileges' && !/^[\w.-]+[=:]/.test(o)) throw new UsageError(`invalid --security-opt: '${o}'`);
  }
  return opts;
}

function parseTmpfs(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of list) {
    const colon = t.indexOf(':');
    const path = colon === -1 ? t : t.slice(0, colon);
    if (!path.startsWith('/')) throw new UsageError(`invalid tmpfs mount: '${t}': path must be absolute`);
    out[path] = colon === -1 ? '' : t.slice(colon + 1);
  }
  return out;
}

const VOLUME_MODES = new Set(['ro', 'rw', 'z', 'Z', 'nocopy', 'shared', 'rshared', 'slave', 'rslave', 'private', 'rprivate']);

/** `-v SRC:DST[:MODE]` goes to Binds; a lone `-v /path` is an anonymous volume. */
export function parseVolumes(list: string[]): { binds: string[]; volumes: Record<string, object> } {
  const binds: string[] = [];
  const volumes: Record<string, object> = {};
  for (const v of list) {
    const parts = v.split(':');
    if (parts.length === 1) {
      if (!v.startsWith('/')) throw new UsageError(`invalid volume specification: '${v}'`);
      volumes[v] = {};
      continue;
    }
    const [src, dst, mode] = parts;
    if (parts.length > 3 || !src || !dst || !dst.startsWith('/')) throw new UsageError(`invalid volume specification: '${v}'`);
    if (mode !== undefined && !mode.split(',').every((m) => VOLUME_MODES.has(m))) {
      throw new UsageError(`invalid mode: ${mode}`);
    }
    binds.push(v);
  }
  return { binds, volumes };
}

type PortBinding = { HostIp: string; HostPort: string };

/** Docker's `-p [ip:][hostPort:]containerPort[/proto]` with ranges, plus `--expose`. */
export function parsePorts(
  publish: string[],
  expose: string[] = [],
): { exposed: Record<string, object>; bindings: Record<string, PortBinding[]> } {
  const exposed: Record<string, object> = {};
  const bindings: Record<string, PortBinding[]> = {};
  for (const e of expose) {
    const { ports, proto } = splitProto(e);
    for (const p of expandRange(ports, e)) exposed[`${p}/${proto}`] = {};
  }
  for (const spec of publish) {
    const { ports: rest, proto } = splitProto(spec);
    let ip = '';
    let hostPart = '';
    let containerPart = rest;
    const v6 = /^\[([^\]]+)\]:(.*)$/.exec(rest);
    const parts = v6 ? [v6[1] as string, ...(v6[2] as string).split(':')] : rest.split(':');
    if (parts.length === 2) [hostPart, containerPart] = parts as [string, string];
    else if (parts.length === 3) [ip, hostPart, containerPart] = parts as [string, string, string];
    else if (parts.length > 3) throw new UsageError(`invalid port specification: '${spec}'`);
    const cports = expandRange(containerPart, spec);
    const hports = hostPart ? expandRange(hostPart, spec) : [];
    if (hports.length > 1 && cports.length > 1 && hports.length !== cports.length) {
      throw new UsageError(`invalid ranges specified for container and host ports: '${spec}'`);
    }
    cports.forEach((cp, i) => {
      const key = `${cp}/${proto}`;
      exposed[key] = {};
      // A host range for a single container port means "any port in this range".
      const hostPort = hports.length === 0 ? '' : cports.length === 1 ? hostPart : String(hports[i]);
      (bindings[key] ??= []).push({ HostIp: ip, HostPort: hostPort });
    });
  }
  return { exposed, bindings };
}

function splitProto(spec: string): { ports: string; proto: string } {
  const slash = spec.lastIndexOf('/');
  if (slash === -1) return { ports: spec, proto: 'tcp' };
  const proto = spec.slice(slash + 1).toLowerCase();
  if (!['tcp', 'udp', 'sctp'].includes(proto)) throw new UsageError(`invalid proto: '${proto}'`);
  return { ports: spec.slice(0, slash), proto };
}

function expandRange(text: string, spec: string): number[] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text);
  if (!m) throw new UsageError(`invalid port specification: '${spec}'`);
  const start = Number(m[1]);
  const end = m[2] === undefined ? start : Number(m[2]);
  if (start < 1 || end > 65535 || end < start) throw new UsageError(`invalid port specification: '${spec}'`);
  return Array.from({ length: end - start + 1 }, (_, i) => start + i);
}

function parseHealthcheck(args: ParsedArgs): Record<string, unknown> | null {
  const timing = ['health-interval', 'health-timeout', 'health-start-period', 'health-retries'];
  const anyTiming = timing.some((f) => args.has(f));
  if (args.bool('no-healthcheck')) {
    if (anyTiming || args.has('health-cmd')) throw new UsageError('--no-healthcheck conflicts with --health-* options');
    return { Test: ['NONE'] };
  }
  if (!anyTiming && !args.has('health-cmd')) return null;
  const dur = (f: string): number => {
    const v = args.str(f);
    if (v === undefined) return 0;
    const ns = parseGoDuration(v);
    if (ns < 0) throw new UsageError(`--${f} cannot be negative`);
    return ns;
  };
  const retries = args.int('health-retries') ?? 0;
  if (retries < 0) throw new UsageError('--health-retries cannot be negative');
  const cmd = args.str('health-cmd');
  return {
    Test: cmd ? ['CMD-SHELL', cmd] : null,
    Interval: dur('health-interval'),
    Timeout: dur('health-timeout'),
    StartPeriod: dur('health-start-period'),
    Retries: retries,
  };
}

/** `--network-alias` and `--ip` apply to the network named by `--network` (Docker's EndpointsConfig). */
function endpointsConfig(args: ParsedArgs): Record<string, unknown> {
  const network = args.str('network');
  const aliases = args.list('network-alias');
  const ip = args.str('ip');
  if (!aliases.length && !ip) return {};
  if (!network || ['default', 'bridge', 'none', 'host'].includes(network) || network.startsWith('container:')) {
    throw new UsageError('--network-alias and --ip need a user-defined network (--network NAME)');
  }
  return { [network]: { Aliases: aliases, ...(ip ? { IPAMConfig: { IPv4Address: ip } } : {}) } };
}

/** Docker's `--mount` CSV syntax, as the API's `HostConfig.Mounts` objects. */
export function parseMounts(list: string[]): Array<Record<string, unknown>> {
  return list.map(parseMount);
}

export function parseMount(spec: string): Record<string, unknown> {
  let type = 'volume';
  let source = '';
  let target = '';
  let readonly = false;
  let propagation: string | undefined;
  let nocopy: boolean | undefined;
  const labels: Record<string, string> = {};
  let tmpfsSize: number | undefined;
  let tmpfsMode: number | undefined;
  const kinds = new Set<string>();
  const bool = (key: string, v: string | undefined): boolean => {
    if (v === undefined) return true;
    if (['1', 'true'].includes(v.toLowerCase())) return true;
    if (['0', 'false'].includes(v.toLowerCase())) return false;
    throw new UsageError(`invalid value for ${key}: ${v}`);
  };
  for (const field of spec.split(',')) {
    if (field.trim() === '') continue;
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? undefined : field.slice(eq + 1);
    const need = (): string => {
      if (value === undefined) throw new UsageError(`invalid field '${field}' must be a key=value pair`);
      return value;
    };
    switch (key) {
      case 'type':
        type = need();
        break;
      case 'source':
      case 'src':
        source = need();
        break;
      case 'target':
      case 'destination':
      case 'dst':
        target = need();
        break;
      case 'readonly':
      case 'ro':
        readonly = bool(key, value);
        break;
      case 'consistency':
        need();
        break;
      case 'bind-propagation':
        propagation = need();
        kinds.add('bind');
        break;
      case 'volume-nocopy':
        nocopy = bool(key, value);
        kinds.add('volume');
        break;
      case 'volume-label': {
        const v = need();
        const i = v.indexOf('=');
        labels[i < 0 ? v : v.slice(0, i)] = i < 0 ? '' : v.slice(i + 1);
        kinds.add('volume');
        break;
      }
      case 'volume-driver':
        if (need() !== 'local') throw new UsageError(`volume driver not supported: ${value}`);
        kinds.add('volume');
        break;
      case 'tmpfs-size':
        tmpfsSize = parseSize(need());
        kinds.add('tmpfs');
        break;
      case 'tmpfs-mode': {
        const v = need();
        if (!/^[0-7]{1,4}$/.test(v)) throw new UsageError(`invalid value for tmpfs-mode: ${v}`);
        tmpfsMode = parseInt(v, 8);
        kinds.add('tmpfs');
        break;
      }
      default:
        throw new UsageError(`unexpected key '${key}' in '${field}'`);
    }
  }
  if (!['bind', 'volume', 'tmpfs'].includes(type)) throw new UsageError(`invalid mount type: '${type}'`);
  if (!target) throw new UsageError('target is required');
  for (const k of kinds) {
    if (k !== type) throw new UsageError(`cannot mix '${k}-*' options with mount type '${type}'`);
  }
  const mount: Record<string, unknown> = { Type: type, Source: source, Target: target, ReadOnly: readonly };
  if (propagation !== undefined) mount['BindOptions'] = { Propagation: propagation };
  if (nocopy !== undefined || Object.keys(labels).length) mount['VolumeOptions'] = { NoCopy: !!nocopy, Labels: labels };
  if (tmpfsSize !== undefined || tmpfsMode !== undefined) {
    mount['TmpfsOptions'] = { ...(tmpfsSize !== undefined ? { SizeBytes: tmpfsSize } : {}), ...(tmpfsMode !== undefined ? { Mode: tmpfsMode } : {}) };
  }
  return mount;
}
