/** Docker Engine API: /networks/... */
import { ConflictError, InvalidArgumentError } from '../../core/errors.js';
import { networkModeOf } from '../../container/network-mode.js';
import { connectNetwork, disconnectNetwork } from '../../container/network-attach.js';
import type { ContainerRecord } from '../../container/model.js';
import type { NetworkRecord } from '../../network/network-store.js';
import { parseCidr } from '../../network/ipam.js';
import type { DaemonContext } from '../context.js';
import { sendEmpty, sendJson } from '../context.js';
import { parseFilters, readJson, type Router } from '../router.js';

export function networkJson(n: NetworkRecord, ctx: DaemonContext, withContainers: boolean): Record<string, unknown> {
  const prefix = parseCidr(n.subnet).prefix;
  const containers: Record<string, unknown> = {};
  if (withContainers) {
    for (const ep of ctx.networks.containersOf(n.id)) {
      const c = ctx.manager.store.get(ep.containerId);
      containers[ep.containerId] = {
        Name: c?.name ?? '',
        EndpointID: `${n.id.slice(0, 16)}${ep.containerId.slice(0, 48)}`,
        MacAddress: ep.mac,
        IPv4Address: `${ep.ip}/${prefix}`,
        IPv6Address: '',
      };
    }
  }
  return {
    Name: n.name,
    Id: n.id,
    Created: n.created,
    Scope: 'local',
    Driver: 'bridge',
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: {}, Config: [{ Subnet: n.subnet, Gateway: n.gateway }] },
    Internal: n.internal,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: containers,
    Options: { 'com.docker.network.bridge.name': n.bridge },
    Labels: n.labels,
  };
}

function inUse(ctx: DaemonContext, n: NetworkRecord): ContainerRecord[] {
  return ctx.manager.list().filter((c) => {
    try {
      const mode = networkModeOf(c.spec);
      return mode.kind === 'networks' && mode.attach.some((a) => a.network === n.name || a.network === n.id);
    } catch {
      return false;
    }
  });
}

export function networkRoutes(r: Router, ctx: DaemonContext): void {
  r.add('GET', '/networks', ({ res, query }) => {
    const f = parseFilters(query);
    const list = ctx.networks
      .list()
      .filter((n) => !f.name?.length || f.name.some((v) => n.name.includes(v)))
      .filter((n) => !f.id?.length || f.id.some((v) => n.id.startsWith(v)));
    sendJson(res, 200, list.map((n) => networkJson(n, ctx, false)));
  });

  r.add('POST', '/networks/create', async ({ req, res }) => {
    const body = await readJson<{
      Name?: string;
      Driver?: string;
      Internal?: boolean;
      IPAM?: { Config?: Array<{ Subnet?: string; Gateway?: string }> };
      Labels?: Record<string, string>;
    }>(req);
    if (!body.Name) throw new InvalidArgumentError('A network name is needed');
    if (body.Driver && body.Driver !== 'bridge') throw new InvalidArgumentError(`Network driver ${body.Driver} is not supported: only bridge`);
    const cfg = body.IPAM?.Config?.[0];
    const n = await ctx.networks.create({
      name: body.Name,
      ...(cfg?.Subnet ? { subnet: cfg.Subnet } : {}),
      ...(cfg?.Gateway ? { gateway: cfg.Gateway } : {}),
      internal: !!body.Internal,
      labels: body.Labels ?? {},
    });
    sendJson(res, 201, { Id: n.id, Warning: '' });
  });

  r.add('POST', '/networks/prune', async ({ res }) => {
    const deleted: string[] = [];
    for (const n of ctx.networks.list()) {
      if (n.builtin || inUse(ctx, n).length) continue;
      await ctx.networks.remove(n.id);
      deleted.push(n.name);
    }
    sendJson(res, 200, { NetworksDeleted: deleted });
  });

  r.add('GET', '/networks/([^/]+)', ({ res, params }) => {
    sendJson(res, 200, networkJson(ctx.networks.get(params[0]!), ctx, true));
  });

  r.add('DELETE', '/networks/([^/]+)', async ({ res, params }) => {
    const n = ctx.networks.get(params[0]!);
    const users = inUse(ctx, n);
    if (users.length) {
      throw new ConflictError(`Network ${n.name} has active endpoints: ${users.map((c) => c.name).join(', ')}`);
    }
    await ctx.networks.remove(n.id);
    sendEmpty(res, 204);
  });

  r.add('POST', '/networks/([^/]+)/connect', async ({ req, res, params }) => {
    const body = await readJson<{ Container?: string; EndpointConfig?: { Aliases?: string[]; IPAMConfig?: { IPv4Address?: string } } }>(req);
    if (!body.Container) throw new InvalidArgumentError('A container is needed');
    await connectNetwork(ctx.manager, body.Container, params[0]!, body.EndpointConfig?.Aliases ?? [], body.EndpointConfig?.IPAMConfig?.IPv4Address || null);
    sendEmpty(res, 200);
  });

  r.add('POST', '/networks/([^/]+)/disconnect', async ({ req, res, params }) => {
    const body = await readJson<{ Container?: string }>(req);
    if (!body.Container) throw new InvalidArgumentError('A container is needed');
    await disconnectNetwork(ctx.manager, body.Container, params[0]!);
    sendEmpty(res, 200);
  });
}
