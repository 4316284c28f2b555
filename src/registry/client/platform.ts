/**
 * Platforms (`os/arch[/variant]`) and picking one manifest from an index.
 * Pure; no I/O.
 */
import { InvalidArgumentError, NotFoundError } from '../../core/errors.js';
import type { RemoteDescriptor } from './manifest.js';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export const DEFAULT_PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };

const ARCH_ALIASES: Record<string, string> = { x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', armhf: 'arm', armel: 'arm' };

/** `linux/amd64`, `linux/arm64/v8`, `linux/arm/v7`; empty means the default platform. */
export function parsePlatform(text: string | null | undefined): Platform {
  if (!text) return { ...DEFAULT_PLATFORM };
  const parts = text.toLowerCase().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/.test(p))) {
    throw new InvalidArgumentError(`Invalid platform: ${JSON.stringify(text)} (expected os/arch[/variant])`);
  }
  const [os, arch, variant] = parts as [string, string, string | undefined];
  const architecture = ARCH_ALIASES[arch] ?? arch;
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** arm64 images usually say `v8` or nothing; treat those as the same. */
function variantOf(p: Platform): string {
  const v = p.variant ?? '';
  return p.architecture === 'arm64' && v === 'v8' ? '' : v;
}

/**
 * Picks the manifest for `want` from an index's entries: the first with the
 * same os and architecture and, when a variant is asked for, that variant
 * (an entry without a variant matches when no exact one exists).
 */
export function selectManifest(entries: RemoteDescriptor[], want: Platform): RemoteDescriptor {
  const candidates = entries.filter(
    (e) => e.platform && e.platform.os === want.os && (ARCH_ALIASES[e.platform.architecture] ?? e.platform.architecture) === want.architecture,
  );
  const wantVariant = variantOf(want);
  const exact = candidates.find((e) => variantOf(e.platform as Platform) === wantVariant);
  const loose = wantVariant ? candidates.find((e) => !e.platform?.variant) : candidates[0];
  const found = exact ?? loose;
  if (!found) {
    const have = entries.filter((e) => e.platform).map((e) => formatPlatform(e.platform as Platform));
    throw new NotFoundError(
      `No matching manifest for ${formatPlatform(want)} in the manifest list entries${have.length ? ` (available: ${have.join(', ')})` : ''}`,
    );
  }
  return found;
}
