/**
 * Create-time validation of a container request, so bad input fails before
 * anything is made (one clear message, nothing to clean up).
 */
import { InvalidArgumentError } from '../core/errors.js';
import type { ImageConfig } from '../image/oci.js';
import { hostCpuCount } from './bundle.js';
import { resolveCapabilities } from './capabilities.js';
import type { ContainerSpec } from './model.js';
import { validateRestartPolicy } from './restart-policy.js';
import { effectiveProcess, parseBind } from './run-config.js';
import { MIN_MEMORY, parseTmpfsOptions } from './spec.js';
import { planMounts } from '../volume/mounts.js';

const SECURITY_OPTS = /^(no-new-privileges([:=](true|false))?|seccomp[:=]unconfined)$/;

export function validateSpec(spec: ContainerSpec, image: ImageConfig): string[] {
  const warnings: string[] = [];
  const hc = spec.HostConfig;
  effectiveProcess(image, spec);
  if (hc.Memory && hc.Memory < 0) throw new InvalidArgumentError('Invalid memory limit: must be positive');
  if (hc.Memory && hc.Memory < MIN_MEMORY) throw new InvalidArgumentError('Minimum memory limit allowed is 6MB');
  if (hc.Memory && hc.MemoryReservation && hc.MemoryReservation > hc.Memory) {
    throw new InvalidArgumentError('Minimum memory limit can not be less than memory reservation limit, see usage');
  }
  if (hc.MemorySwap && hc.MemorySwap > 0 && hc.Memory && hc.MemorySwap < hc.Memory) {
    throw new InvalidArgumentError('Minimum memoryswap limit should be larger than memory limit, see usage');
  }
  const cpus = hostCpuCount();
  if (hc.NanoCpus) {
    if (hc.NanoCpus < 0 || hc.NanoCpus > cpus * 1e9) {
      throw new InvalidArgumentError(`Range of CPUs is from 0.01 to ${cpus}.00, as there are only ${cpus} CPUs available`);
    }
    if (hc.NanoCpus < 1e7) throw new InvalidArgumentError(`Range of CPUs is from 0.01 to ${cpus}.00`);
  }
  if (hc.CpuShares && hc.CpuShares < 0) throw new InvalidArgumentError('Invalid CPU shares: must be positive');
  validateRestartPolicy(hc.RestartPolicy);
  const policy = hc.RestartPolicy?.Name ?? '';
  if (hc.AutoRemove && policy !== '' && policy !== 'no') {
    throw new InvalidArgumentError('Conflicting options: cannot specify both --restart and --rm');
  }
  for (const b of hc.Binds ?? []) parseBind(b);
  for (const [dest, opts] of Object.entries(hc.Tmpfs ?? {})) {
    if (!dest.startsWith('/')) throw new InvalidArgumentError(`Invalid tmpfs mount point: ${dest}: must be an absolute path`);
    parseTmpfsOptions(opts);
  }
  // -v, --mount and anonymous volumes: syntax, and no two explicit mounts at one destination.
  planMounts(spec, image.config?.Volumes);
  resolveCapabilities(hc.CapAdd ?? [], hc.CapDrop ?? []);
  for (const o of hc.SecurityOpt ?? []) {
    if (!SECURITY_OPTS.test(o)) throw new InvalidArgumentError(`Invalid --security-opt: ${o}`);
  }
  for (const h of (hc.ExtraHosts as string[] | undefined) ?? []) {
    const i = h.lastIndexOf(':');
    if (i <= 0 || !/^[0-9a-fA-F.:]+$/.test(h.slice(i + 1))) throw new InvalidArgumentError(`Invalid extra host: ${h}: use host:ip`);
  }
  for (const d of (hc.Dns as string[] | undefined) ?? []) {
    if (!/^[0-9a-fA-F.:]+$/.test(d)) throw new InvalidArgumentError(`Invalid DNS server address: ${d}`);
  }
  if (hc.Privileged) throw new InvalidArgumentError('Privileged containers are not supported');
  const hcfg = spec.Config.Healthcheck;
  if (hcfg?.Test && hcfg.Test.length && !['NONE', 'CMD', 'CMD-SHELL'].includes(hcfg.Test[0] ?? '')) {
    throw new InvalidArgumentError(`Invalid healthcheck test: ${hcfg.Test[0]}`);
  }
  for (const k of ['Interval', 'Timeout', 'StartPeriod'] as const) {
    const v = hcfg?.[k];
    if (v !== undefined && v !== 0 && v < 1e6) throw new InvalidArgumentError(`Healthcheck ${k} in nanoseconds must be at least 1ms`);
  }
  if ((hcfg?.Retries ?? 0) < 0) throw new InvalidArgumentError('Healthcheck Retries must not be negative');
  return warnings;
}
