/**
 * Where a reference lives: the registry host and the repository path on it,
 * and whether that host may be spoken to over plain HTTP. Pure; no I/O.
 *
 * Our references keep names as the user wrote them (`busybox`,
 * `127.0.0.1:5000/team/app:v1`). A first component with a dot, a colon or
 * `localhost` is a registry host; anything else is Docker Hub, where
 * single-component names live under `library/`.
 */
import { InvalidArgumentError } from '../../core/errors.js';
import { parseReference } from '../../image/reference.js';

export const DOCKER_HUB_HOST = 'registry-1.docker.io';
/** The key Docker uses for Hub credentials in config.json. */
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

export interface RemoteRef {
  /** Registry host as used on the wire, with port: `127.0.0.1:5000`, `registry-1.docker.io`. */
  host: string;
  /** Repository path on that registry: `team/app`, `library/busybox`. */
  repo: string;
  /** The local repository name (what tags are stored under): `127.0.0.1:5000/team/app`, `busybox`. */
  localRepo: string;
  tag: string | null;
  digest: string | null;
  /** The name credentials are stored under (host, or Hub's legacy URL). */
  authKey: string;
}

const HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/** Splits `[host/]path[:tag][@digest]` into registry host and repository. */
export function resolveRemote(input: string): RemoteRef {
  const ref = parseReference(input);
  const parts = ref.repo.split('/');
  const first = parts[0] ?? '';
  const hasHost = parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (!hasHost || HUB_ALIASES.has(first)) {
    const path = hasHost ? parts.slice(1) : parts;
    const repo = path.length === 1 ? `library/${path[0]}` : path.join('/');
    // Docker's familiar name: `docker.io/library/busybox` is stored as `busybox`.
    const localRepo = repo.startsWith('library/') && repo.split('/').length === 2 ? repo.slice('library/'.length) : repo;
    return { host: DOCKER_HUB_HOST, repo, localRepo, tag: ref.tag, digest: ref.digest, authKey: DOCKER_HUB_AUTH_KEY };
  }
  return { host: first, repo: parts.slice(1).join('/'), localRepo: ref.repo, tag: ref.tag, digest: ref.digest, authKey: first };
}

/** The key credentials for a server name typed by the user (`vessel login SERVER`) are stored under. */
export function authKeyOf(server: string): string {
  const s = server.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  if (!s) throw new InvalidArgumentError(`Invalid registry address: ${JSON.stringify(server)}`);
  return HUB_ALIASES.has(s) ? DOCKER_HUB_AUTH_KEY : s;
}

/** The wire host for a login server name (`docker.io` → Hub's registry host). */
export function hostOfServer(server: string): string {
  const key = authKeyOf(server);
  return key === DOCKER_HUB_AUTH_KEY ? DOCKER_HUB_HOST : key;
}

/** Host part without the port; IPv6 brackets removed. */
export function hostname(host: string): string {
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(host);
  if (m) return m[1] as string;
  const i = host.lastIndexOf(':');
  return i >= 0 && host.indexOf(':') === i ? host.slice(0, i) : host;
}

function ipv4(s: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return null;
  const o = m.slice(1).map(Number);
  if (o.some((x) => x > 255)) return null;
  return ((o[0]! << 24) >>> 0) + (o[1]! << 16) + (o[2]! << 8) + o[3]!;
}

function inCidr(ip: string, cidr: string): boolean {
  const [net, bitsText] = cidr.split('/');
  const a = ipv4(ip);
  const b = ipv4(net ?? '');
  const bits = Number(bitsText);
  if (a === null || b === null || !Number.isInteger(bits) || bits < 0 || bits > 32) return false;
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return (a & mask) >>> 0 === (b & mask) >>> 0;
}

/**
 * Whether plain HTTP is allowed for `host` (as Docker decides): loopback
 * (127.0.0.0/8, ::1, localhost) always; otherwise only hosts or CIDRs the
 * daemon was started with (`--insecure-registry`), matched with or without port.
 */
export function isInsecureRegistry(host: string, insecure: readonly string[] = []): boolean {
  const name = hostname(host).toLowerCase();
  if (name === 'localhost' || name === '::1' || inCidr(name, '127.0.0.0/8')) return true;
  for (const entry of insecure) {
    const e = entry.replace(/^https?:\/\//, '').toLowerCase();
    if (e === host.toLowerCase() || e === name) return true;
    if (e.includes('/') && inCidr(name, e)) return true;
  }
  return false;
}

/** Validates a `--insecure-registry` value: `host[:port]` or an IPv4 CIDR. */
export function checkInsecureEntry(entry: string): string {
  const e = entry.replace(/^https?:\/\//, '');
  const okCidr = /^\d+\.\d+\.\d+\.\d+\/\d{1,2}$/.test(e) && ipv4(e.split('/')[0] ?? '') !== null;
  const okHost = /^(\[[0-9a-fA-F:]+\]|[a-zA-Z0-9.-]+)(:\d{1,5})?$/.test(e);
  if (!okCidr && !okHost) throw new InvalidArgumentError(`Invalid insecure registry: ${entry}`);
  return e;
}
