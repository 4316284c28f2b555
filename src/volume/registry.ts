/**
 * Which VolumeService serves which daemon root. The container code that
 * needs volumes (create/remove bookkeeping, bundle mounts, inspect views) only
 * has the daemon's paths at hand, so the daemon registers its service here
 * at start-up, keyed by its containers directory.
 */
import path from 'node:path';
import type { VolumeService } from './volume-service.js';

const services = new Map<string, VolumeService>();

export function registerVolumeService(svc: VolumeService): void {
  services.set(path.resolve(svc.paths.containers), svc);
}

export function unregisterVolumeService(svc: VolumeService): void {
  const key = path.resolve(svc.paths.containers);
  if (services.get(key) === svc) services.delete(key);
}

/** The service of the daemon whose containers directory is `containersDir` (e.g. `DaemonPaths.containers`). */
export function volumeServiceFor(containersDir: string): VolumeService | undefined {
  return services.get(path.resolve(containersDir));
}
