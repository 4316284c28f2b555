/**
 * `cp` on the daemon side: a container's file tree as a `ContainerFs`, for
 * running and stopped containers alike.
 *
 * - Running (or paused): the root is `/proc/<pid>/root`, the container's own
 *   view, so its volumes, binds and tmpfs mounts are seen exactly as inside.
 * - Otherwise: the overlay root filesystem is mounted for the duration of the
 *   operation (reference-counted, and left mounted if the container started
 *   meanwhile), and the host sources of its volumes, binds and /etc files are
 *   overlaid by destination (tmpfs mounts have no content while stopped).
 */
import { existsSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { ConflictError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../core/errors.js';
import type { ContainerManager } from '../container/manager.js';
import { isActive, type ContainerRecord } from '../container/model.js';
import { containerPaths, type DaemonPaths } from '../container/paths.js';
import { mountRootfs, unmountRootfs } from '../container/rootfs.js';
import type { ImageStore } from '../image/image-store.js';
import { extractTar, goFileMode, packPath, type PathStat } from './archive.js';
import { archiveRootName, ContainerFs, endsWithSeparator, splitPath, type PathMount } from './container-fs.js';
import { planMounts } from './mounts.js';
import type { VolumeService } from './volume-service.js';

export interface ArchiveDeps {
  manager: ContainerManager;
  images: ImageStore;
  paths: DaemonPaths;
  volumes: VolumeService;
}

export interface PutOptions {
  noOverwriteDirNonDir: boolean;
}

export class ContainerArchiver {
  #mountUsers = new Map<string, number>();

  constructor(private readonly deps: ArchiveDeps) {}

  /** The file `p` of a container: its stat, and (for GET) a tar stream written to `sink`. */
  async stat(ref: string, p: string): Promise<PathStat> {
    return this.#withFs(ref, async (cfs, c) => this.#stat(cfs, c, p).stat);
  }

  async get(ref: string, p: string, sink: (stat: PathStat, tar: Readable) => Promise<void>): Promise<void> {
    await this.#withFs(ref, async (cfs, c, running) => {
      const { stat, host } = this.#stat(cfs, c, p);
      await sink(stat, packPath(host, archiveRootName(p), { skipPseudoFs: running }));
    });
  }

  /** Extracts a tar into the existing directory `p` of a container. */
  async put(ref: string, p: string, body: Readable, options: PutOptions): Promise<void> {
    await this.#withFs(ref, async (cfs, c) => {
      const dest = cfs.resolve(p, true);
      if (!dest.stat) throw new NotFoundError(`Could not find the file ${p} in container ${ref}`);
      if (!dest.stat.isDirectory()) throw new InvalidArgumentError(`Extraction point is not a directory: ${p}`);
      this.#checkWritable(c, dest.parts);
      await extractTar(
        body,
        { dir: (parts) => cfs.mkdirAll(ContainerFs.display([...dest.parts, ...parts])).host },
        { chown: process.geteuid?.() === 0, noOverwriteDirNonDir: options.noOverwriteDirNonDir },
      );
    });
  }

  #stat(cfs: ContainerFs, c: ContainerRecord, p: string): { stat: PathStat; host: string } {
    if (!p) throw new InvalidArgumentError('Path cannot be empty');
    let r;
    try {
      r = cfs.resolve(p, endsWithSeparator(p));
    } catch (e) {
      if (e instanceof NotFoundError) throw new NotFoundError(`Could not find the file ${p} in container ${c.name}`, { cause: e });
      throw e;
    }
    const st = r.stat;
    if (!st) throw new NotFoundError(`Could not find the file ${p} in container ${c.name}`);
    let linkTarget = '';
    if (st.isSymbolicLink()) {
      try {
        linkTarget = ContainerFs.display(cfs.resolve(ContainerFs.display(r.parts), true).parts);
      } catch {
        linkTarget = '';
      }
    }
    const parts = splitPath(p).filter((x) => x !== '..');
    return {
      stat: {
        name: parts[parts.length - 1] ?? '/',
        size: st.size,
        mode: goFileMode(st.mode),
        mtime: st.mtime.toISOString(),
        linkTarget,
      },
      host: r.host,
    };
  }

  /** Docker refuses to write to a read-only rootfs or a read-only mount. */
  #checkWritable(c: ContainerRecord, parts: string[]): void {
    const mounts: Array<{ parts: string[]; readonly: boolean; what: string }> = [];
    for (const m of planMounts(c.spec, null)) {
      if (m.type !== 'volume') mounts.push({ parts: splitPath(m.destination), readonly: m.readonly, what: m.type });
    }
    for (const dest of Object.keys(c.spec.HostConfig.Tmpfs ?? {})) {
      const opts = (c.spec.HostConfig.Tmpfs?.[dest] ?? '').split(',');
      mounts.push({ parts: splitPath(dest), readonly: opts.includes('ro'), what: 'tmpfs' });
    }
    for (const r of this.deps.volumes.refs(c.id)) mounts.push({ parts: splitPath(r.destination), readonly: r.readonly, what: 'volume' });
    let best: (typeof mounts)[number] | undefined;
    for (const m of mounts) {
      if (m.parts.length <= parts.length && m.parts.every((x, i) => parts[i] === x) && (!best || m.parts.length > best.parts.length)) best = m;
    }
    if (best?.readonly) throw new FailedPreconditionError(`Mounted ${best.what} is marked read-only: ${ContainerFs.display(best.parts)}`);
    if (!best && c.spec.HostConfig.ReadonlyRootfs) throw new FailedPreconditionError('Container rootfs is marked read-only');
  }

  async #withFs<T>(ref: string, fn: (cfs: ContainerFs, c: ContainerRecord, running: boolean) => Promise<T>): Promise<T> {
    const c = this.deps.manager.get(ref);
    if (c.state.Status === 'removing' || c.state.Status === 'dead') {
      throw new ConflictError(`Container ${c.name} is marked for removal`);
    }
    if ((c.state.Status === 'running' || c.state.Status === 'paused') && c.state.Pid > 0) {
      const root = `/proc/${c.state.Pid}/root`;
      if (existsSync(root)) return fn(new ContainerFs(root), c, true);
    }
    const p = containerPaths(this.deps.paths, c.id);
    const image = this.deps.images.resolve(c.imageId);
    await this.deps.images.ensureUnpacked(image);
    const users = this.#mountUsers.get(c.id) ?? 0;
    this.#mountUsers.set(c.id, users + 1);
    try {
      await mountRootfs(this.deps.images.lowerDirs(image), { upper: p.upper, work: p.work, merged: p.rootfs }, {
        volatile: !!c.spec.HostConfig.AutoRemove,
      });
      return await fn(new ContainerFs(p.rootfs, this.#stoppedMounts(c)), c, false);
    } finally {
      const left = (this.#mountUsers.get(c.id) ?? 1) - 1;
      if (left > 0) this.#mountUsers.set(c.id, left);
      else {
        this.#mountUsers.delete(c.id);
        const now = this.deps.manager.store.get(c.id);
        // A container that started meanwhile runs on this very mount.
        if (!now || !isActive(now.state.Status)) await unmountRootfs(p.rootfs).catch(() => {});
      }
    }
  }

  #stoppedMounts(c: ContainerRecord): PathMount[] {
    const out: PathMount[] = [];
    for (const m of planMounts(c.spec, null)) {
      if (m.type === 'bind' && existsSync(m.source)) out.push({ destination: m.destination, source: m.source });
    }
    for (const r of this.deps.volumes.refs(c.id)) out.push({ destination: r.destination, source: this.deps.volumes.mountpoint(r.volume) });
    const p = containerPaths(this.deps.paths, c.id);
    for (const [dest, src] of [
      ['/etc/hostname', p.hostname],
      ['/etc/hosts', p.hosts],
      ['/etc/resolv.conf', p.resolvConf],
    ] as const) {
      if (existsSync(src) && !out.some((m) => m.destination === dest)) out.push({ destination: dest, source: src });
    }
    return out;
  }
}
