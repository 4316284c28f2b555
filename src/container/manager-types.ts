/** Types and a small helper of the container manager (kept apart to keep manager.ts one concept). */
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import type { ImageStore } from '../image/image-store.js';
import type { NetworkManager } from '../network/network-manager.js';
import type { Db } from '../store/db.js';
import type { DaemonPaths } from './paths.js';

/** A small file's text (pid and exit files, /proc entries), or `fallback` if it cannot be read. */
export function readSmall<T extends string | null = string>(file: string, fallback: T = '' as T): string | T {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

/**
 * Removes a small file of the daemon's own (exit files, markers) synchronously;
 * a missing one is fine. Usually it is missing: a stat is cheaper than the
 * exception a failed unlink raises.
 */
export function unlinkIfPresent(file: string): void {
  if (!existsSync(file)) return;
  try {
    unlinkSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

export type WaitCondition = 'not-running' | 'next-exit' | 'removed';

export interface ManagerOptions {
  paths: DaemonPaths;
  db: Db;
  images: ImageStore;
  defaultRuntime: string;
  hostRlimits: { nofile: { soft: number; hard: number }; nproc: { soft: number; hard: number } };
  cgroupVersion: 1 | 2;
  networks: NetworkManager;
}

export interface ContainerEvent {
  action: string;
  id: string;
  attributes: Record<string, string>;
}

