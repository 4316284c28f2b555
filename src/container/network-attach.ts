/** `network connect` / `network disconnect` of a container: recorded in its config, live when it runs. */
import { ConflictError, NotFoundError } from '../core/errors.js';
import type { ContainerManager } from './manager.js';
import { networkInfo, networkModeOf } from './network-mode.js';

export async function connectNetwork(m: ContainerManager, ref: string, networkRef: string, aliases: string[], ip: string | null): Promise<void> {
  const id = m.store.resolve(ref).id;
  await m.locked(id, async () => {
    const c = m.store.resolve(id);
    const n = m.options.networks.get(networkRef);
    const mode = networkModeOf(c.spec);
    if (mode.kind !== 'networks') throw new ConflictError(`Container ${c.name} uses network mode ${mode.kind} and cannot join networks`);
    if (mode.attach.some((a) => a.network === n.name || a.network === n.id)) {
      throw new ConflictError(`Endpoint with name ${c.name} already exists in network ${n.name}`);
    }
    if (c.state.Status === 'running' || c.state.Status === 'paused') {
      await m.options.networks.connect(networkInfo(c), n.id, aliases, ip);
    }
    const endpoints = { ...(c.spec.NetworkingConfig?.EndpointsConfig ?? {}) };
    endpoints[n.name] = { Aliases: aliases, ...(ip ? { IPAMConfig: { IPv4Address: ip } } : {}) };
    c.spec = { ...c.spec, NetworkingConfig: { EndpointsConfig: endpoints } };
    m.store.saveSpec(c.id, c.spec);
    m.emitEvent('connect', c, { network: n.name });
  });
}

export async function disconnectNetwork(m: ContainerManager, ref: string, networkRef: string): Promise<void> {
  const id = m.store.resolve(ref).id;
  await m.locked(id, async () => {
    const c = m.store.resolve(id);
    const n = m.options.networks.get(networkRef);
    const mode = networkModeOf(c.spec);
    if (mode.kind !== 'networks' || !mode.attach.some((a) => a.network === n.name || a.network === n.id)) {
      throw new NotFoundError(`Container ${c.name} is not connected to network ${n.name}`);
    }
    if (c.state.Status === 'running' || c.state.Status === 'paused') await m.options.networks.disconnect(c.id, n.id);
    const endpoints = { ...(c.spec.NetworkingConfig?.EndpointsConfig ?? {}) };
    delete endpoints[n.name];
    const hc = { ...c.spec.HostConfig };
    // Leaving the primary network: the next listed one (or none) becomes primary.
    if (hc.NetworkMode === n.name || (n.builtin && ['', 'default', 'bridge', undefined].includes(hc.NetworkMode as string))) {
      hc.NetworkMode = Object.keys(endpoints)[0] ?? 'none';
    }
    c.spec = { ...c.spec, HostConfig: hc, NetworkingConfig: { EndpointsConfig: endpoints } };
    m.store.saveSpec(c.id, c.spec);
    m.emitEvent('disconnect', c, { network: n.name });
  });
}
