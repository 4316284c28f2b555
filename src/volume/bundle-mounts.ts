/** The user mounts of a starting container, for prepareBundle (container/bundle.ts). */
import path from 'node:path';
import { promises as fs } from 'node:fs';
import { InternalError } from '../core/errors.js';
import type { ContainerRecord } from '../container/model.js';
import type { ContainerPaths } from '../container/paths.js';
import type { BindMount } from '../container/spec.js';
import { planMounts } from './mounts.js';
import { volumeServiceFor } from './registry.js';

/**
 * Host binds, `--mount` tmpfs mounts and volumes (bind mounts of their
 * `_data`, pre-populated from the rootfs mounted at `p.rootfs` when needed).
 */
export async function containerMounts(c: ContainerRecord, p: ContainerPaths): Promise<{ binds: BindMount[]; tmpfs: Record<string, string> }> {
  const svc = volumeServiceFor(path.dirname(p.dir));
  if (svc) return svc.startMounts(c, p.rootfs);
  // Without a volume service (a bare manager, e.g. in tools): host binds and tmpfs only.
  const binds: BindMount[] = [];
  const tmpfs: Record<string, string> = {};
  for (const m of planMounts(c.spec, null)) {
    if (m.type === 'volume') throw new InternalError(`Volumes are not available here: cannot mount ${m.destination}`);
    if (m.type === 'tmpfs') tmpfs[m.destination] = m.options;
    else {
      if (m.createSource) await fs.mkdir(m.source, { recursive: true }).catch(() => {});
      binds.push({ source: m.source, destination: m.destination, readonly: m.readonly, propagation: m.propagation });
    }
  }
  return { binds, tmpfs };
}
