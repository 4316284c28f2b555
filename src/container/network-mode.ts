/** A container's network request (Docker's HostConfig.NetworkMode + NetworkingConfig), as pure parsing. */
import { InvalidArgumentError } from '../core/errors.js';
import type { NetworkMode } from '../network/network-manager.js';
import type { ContainerSpec } from './model.js';

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
