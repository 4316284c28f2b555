/**
 * Port publishing: turning `-p` / `-P` requests into concrete host ports.
 * Parsing is pure; picking a free host port tries to bind it, which is also
 * how "port already in use" is detected before anything is set up.
 */
import net from 'node:net';
import dgram from 'node:dgram';
import { ConflictError, InvalidArgumentError } from '../core/errors.js';

export interface PortRequest {
  proto: 'tcp' | 'udp';
  containerPort: number;
  hostIp: string | null;
  /** null = pick a free port. */
  hostPort: number | null;
}

export interface PublishedPort {
  proto: 'tcp' | 'udp';
  containerPort: number;
  hostIp: string | null;
  hostPort: number;
}

function parsePortKey(key: string): { port: number; proto: 'tcp' | 'udp' } {
  const [p, proto = 'tcp'] = key.split('/');
  const port = Number(p);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidArgumentError(`Invalid port: ${key}`);
  if (proto !== 'tcp' && proto !== 'udp') throw new InvalidArgumentError(`Invalid protocol: ${proto}: only tcp and udp are supported`);
  return { port, proto };
}

/** Docker's HostConfig.PortBindings (+ PublishAllPorts over the exposed ports). */
export function portRequests(
  bindings: Record<string, Array<{ HostIp?: string; HostPort?: string }> | null> | null | undefined,
  publishAll: boolean,
  exposed: Record<string, object> | undefined,
): PortRequest[] {
  const out: PortRequest[] = [];
  for (const [key, list] of Object.entries(bindings ?? {})) {
    const { port, proto } = parsePortKey(key);
    for (const b of list && list.length ? list : [{}]) {
      const hostIp = b.HostIp && b.HostIp !== '0.0.0.0' ? b.HostIp : null;
      if (hostIp && net.isIPv4(hostIp) === false) throw new InvalidArgumentError(`Invalid host IP: ${hostIp}`);
      let hostPort: number | null = null;
      if (b.HostPort) {
        hostPort = Number(b.HostPort);
        if (!Number.isInteger(hostPort) || hostPort < 1 || hostPort > 65535) throw new InvalidArgumentError(`Invalid host port: ${b.HostPort}`);
      }
      out.push({ proto, containerPort: port, hostIp, hostPort });
    }
  }
  if (publishAll) {
    for (const key of Object.keys(exposed ?? {})) {
      const { port, proto } = parsePortKey(key);
      if (!out.some((r) => r.containerPort === port && r.proto === proto)) out.push({ proto, containerPort: port, hostIp: null, hostPort: null });
    }
  }
  return out;
}

/** True when `hostPort` can be bound on `hostIp` right now. */
export function portFree(proto: 'tcp' | 'udp', hostIp: string | null, hostPort: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (proto === 'tcp') {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen({ port: hostPort, host: hostIp ?? '0.0.0.0', exclusive: true }, () => srv.close(() => resolve(true)));
    } else {
      const sock = dgram.createSocket('udp4');
      sock.once('error', () => resolve(false));
      sock.bind({ port: hostPort, address: hostIp ?? '0.0.0.0', exclusive: true }, () => sock.close(() => resolve(true)));
    }
  });
}

const EPHEMERAL = { low: 32768, high: 60999 };

/**
 * Concrete host ports for `requests`, checked against the host (bind test) and
 * against `taken` (ports this daemon already publishes).
 */
export async function resolvePorts(requests: PortRequest[], taken: PublishedPort[]): Promise<PublishedPort[]> {
  const out: PublishedPort[] = [];
  const clash = (p: PublishedPort) =>
    [...taken, ...out].some((t) => t.proto === p.proto && t.hostPort === p.hostPort && (!t.hostIp || !p.hostIp || t.hostIp === p.hostIp));
  for (const r of requests) {
    if (r.hostPort !== null) {
      const p = { proto: r.proto, containerPort: r.containerPort, hostIp: r.hostIp, hostPort: r.hostPort };
      if (clash(p) || !(await portFree(r.proto, r.hostIp, r.hostPort))) {
        throw new ConflictError(`Bind for ${r.hostIp ?? '0.0.0.0'}:${r.hostPort} failed: port is already allocated`);
      }
      out.push(p);
      continue;
    }
    let found: PublishedPort | null = null;
    for (let i = 0; i < 200 && !found; i++) {
      const port = EPHEMERAL.low + Math.floor(Math.random() * (EPHEMERAL.high - EPHEMERAL.low));
      const p = { proto: r.proto, containerPort: r.containerPort, hostIp: r.hostIp, hostPort: port };
      if (!clash(p) && (await portFree(r.proto, r.hostIp, port))) found = p;
    }
    if (!found) throw new ConflictError('No free host port to publish on');
    out.push(found);
  }
  return out;
}
