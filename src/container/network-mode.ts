/** A container's network request (Docker's HostConfig.NetworkMode + NetworkingConfig), as pure parsing. */
import { InvalidArgumentError } from '../core/errors.js';
import { ConflictError } from '../core/errors.js';
import type { ContainerNetworkInfo, NetworkManager, NetworkMode, SetupResult } from '../network/network-manager.js';
import { portRequests, resolvePorts } from '../network/ports.js';
import type { ContainerStore } from './container-store.js';
import type { ContainerRecord, ContainerSpec, ContainerState } from './model.js';

export interface EndpointSettings {
  Aliases?: string[] | null;
  IPAMConfig?: { IPv4Address?: string } | null;
}

export function networkModeOf(spec: ContainerSpec): NetworkMode {
  const mode = String(spec.HostConfig.NetworkMode ?? '') || 'default';
  const endpoints = (spec.NetworkingConfig?.EndpointsConfig ?? {}) as Record<string, EndpointSettings>;
  if (mode === 'none' || mode === 'host') {
    if (Object.keys(endpoints).some((k) => k !== mode)) {
      throw new InvalidArgumentError(`Container cannot be connected to other networks with network mode ${mode}`);
    }
    return { kind: mode };
  }
  if (mode.startsWith('container:')) {
    const ref = mode.slice('container:'.length);
    if (!ref) throw new InvalidArgumentError('Invalid network mode: container: needs a container name or ID');
    return { kind: 'container', ref };
  }
  const primary = mode === 'default' ? 'bridge' : mode;
  const names = [primary, ...Object.keys(endpoints).filter((k) => k !== primary && k !== mode)];
  const spec0 = (name: string) => endpoints[name] ?? (name === primary ? endpoints[mode] : undefined);
  return {
    kind: 'networks',
    attach: names.map((network) => {
      const ep = spec0(network);
      const aliases = ep?.Aliases ?? [];
      if (network === 'bridge' && aliases.length) {
        throw new InvalidArgumentError('Network-scoped aliases are only supported for user-defined networks');
      }
      return { network, aliases, ip: ep?.IPAMConfig?.IPv4Address || null };
    }),
  };
}

/** What the network manager needs to know of a container. */
export function networkInfo(c: ContainerRecord): ContainerNetworkInfo {
  return {
    id: c.id,
    name: c.name,
    hostname: c.spec.Config.Hostname || c.id.slice(0, 12),
    mode: networkModeOf(c.spec),
    ports: c.state.Ports ?? [],
  };
}

/** Network namespace, addresses and published ports for a starting container. */
export async function setupContainerNetwork(
  c: ContainerRecord,
  store: ContainerStore,
  networks: NetworkManager,
  imageExposed: Record<string, object> | undefined,
): Promise<SetupResult & { ports: NonNullable<ContainerState['Ports']> }> {
  const mode = networkModeOf(c.spec);
  if (mode.kind === 'container') {
    const other = store.resolve(mode.ref);
    if (other.state.Status !== 'running' && other.state.Status !== 'paused') {
      throw new ConflictError(`Cannot join the network of container ${mode.ref}: it is not running`);
    }
    return { netns: `/proc/${other.state.Pid}/ns/net`, nameservers: null, endpoints: [], ports: [] };
  }
  const requests = portRequests(c.spec.HostConfig.PortBindings, !!c.spec.HostConfig.PublishAllPorts, {
    ...(imageExposed ?? {}),
    ...(c.spec.Config.ExposedPorts ?? {}),
  });
  if (requests.length && mode.kind !== 'networks') {
    throw new InvalidArgumentError(`Published ports are discarded with network mode ${mode.kind}`);
  }
  const ports = await resolvePorts(requests, networks.publishedPorts());
  const result = await networks.setup({ ...networkInfo(c), mode, ports });
  return { ...result, ports };
}
