/**
 * Named volumes (Docker's `local` driver): a directory
 * `<root>/volumes/<name>/_data` plus a row in the `volumes` table, and the
 * bookkeeping of which container mounts which volume where
 * (`volume_mounts`, removed with the container by ON DELETE CASCADE).
 *
 * Containers resolve their volumes when they are created: named volumes that
 * do not exist yet are made then (as Docker does), anonymous ones get a random
 * 64-hex name. A volume referenced by any container, whatever its state,
 * cannot be removed. At start, `startMounts` turns the references into bind
 * mounts of the `_data` directories and pre-populates a still-empty volume
 * from the image's content at the mount point, once.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fs, readdirSync, lstatSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../core/errors.js';
import { run } from '../core/exec.js';
import { log } from '../core/log.js';
import type { ContainerRecord, ContainerSpec } from '../container/model.js';
import type { DaemonPaths } from '../container/paths.js';
import type { BindMount } from '../container/spec.js';
import type { Db } from '../store/db.js';
import { ContainerFs } from './container-fs.js';
import { checkVolumeName, planMounts, type PlannedMount } from './mounts.js';

export interface VolumeRecord {
  name: string;
  driver: 'local';
  labels: Record<string, string>;
  options: Record<string, string>;
  created: string;
  anonymous: boolean;
  populated: boolean;
}

export interface VolumeRef {
  containerId: string;
  destination: string;
  volume: string;
  readonly: boolean;
  nocopy: boolean;
  mode: string;
}

/** Docker API `volume.Volume`. */
export interface VolumeView {
  Name: string;
  Driver: string;
  Mountpoint: string;
  CreatedAt: string;
  Labels: Record<string, string>;
  Scope: 'local';
  Options: Record<string, string>;
}

export interface CreateVolumeRequest {
  Name?: string;
  Driver?: string;
  DriverOpts?: Record<string, string> | null;
  Labels?: Record<string, string> | null;
}

interface Row {
  name: string;
  driver: string;
  labels: string;
  options: string;
  created: string;
  anonymous: number;
  populated: number;
}

interface RefRow {
  container_id: string;
  destination: string;
  volume: string;
  readonly: number;
  nocopy: number;
  mode: string;
}

const toRecord = (r: Row): VolumeRecord => ({
  name: r.name,
  driver: 'local',
  labels: JSON.parse(r.labels) as Record<string, string>,
  options: JSON.parse(r.options) as Record<string, string>,
  created: r.created,
  anonymous: r.anonymous === 1,
  populated: r.populated === 1,
});

const toRef = (r: RefRow): VolumeRef => ({
  containerId: r.container_id,
  destination: r.destination,
  volume: r.volume,
  readonly: r.readonly === 1,
  nocopy: r.nocopy === 1,
  mode: r.mode,
});

/** Trash directories (names no volume can have): removals in flight, deleted at start-up. */
const TRASH = '.trash-';

function checkStringMap(v: unknown, what: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string')) {
    throw new InvalidArgumentError(`Invalid ${what}: must be an object of strings`);
  }
  return { ...(v as Record<string, string>) };
}

export class VolumeService {
  readonly dir: string;
  /** Per-volume serialisation of pre-population. */
  #locks = new Map<string, Promise<unknown>>();

  constructor(
    private readonly db: Db,
    readonly paths: DaemonPaths,
  ) {
    this.dir = path.join(paths.root, 'volumes');
  }

  async init(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o701 });
    for (const e of await fs.readdir(this.dir)) {
      if (e.startsWith(TRASH)) await fs.rm(path.join(this.dir, e), { recursive: true, force: true });
    }
  }

  mountpoint(name: string): string {
    return path.join(this.dir, name, '_data');
  }

  // ---- records -------------------------------------------------------------

  tryGet(name: string): VolumeRecord | null {
    const r = this.db.prepare('SELECT * FROM volumes WHERE name = ?').get(name) as Row | undefined;
    return r ? toRecord(r) : null;
  }

  get(name: string): VolumeRecord {
    const v = this.tryGet(name);
    if (!v) throw new NotFoundError(`No such volume: ${name}`);
    return v;
  }

  list(): VolumeRecord[] {
    return (this.db.prepare('SELECT * FROM volumes ORDER BY name').all() as Row[]).map(toRecord);
  }

  view(v: VolumeRecord): VolumeView {
    return {
      Name: v.name,
      Driver: v.driver,
      Mountpoint: this.mountpoint(v.name),
      CreatedAt: v.created,
      Labels: v.labels,
      Scope: 'local',
      Options: v.options,
    };
  }

  /** Docker's `POST /volumes/create`: an existing volume of that name is returned as it is. */
  async create(req: CreateVolumeRequest, anonymous = false): Promise<VolumeRecord> {
    const driver = req.Driver || 'local';
    if (driver !== 'local') throw new NotFoundError(`Volume driver not found: ${driver}`);
    const options = checkStringMap(req.DriverOpts, 'DriverOpts');
    if (Object.keys(options).length > 0) {
      throw new InvalidArgumentError(`Volume driver options are not supported: ${Object.keys(options).join(', ')}`);
    }
    const labels = checkStringMap(req.Labels, 'Labels');
    const name = req.Name ? checkVolumeName(req.Name) : randomBytes(32).toString('hex');
    const existing = this.tryGet(name);
    if (existing) {
      await fs.mkdir(this.mountpoint(name), { recursive: true, mode: 0o755 });
      return existing;
    }
    const created = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const res = this.db
      .prepare('INSERT OR IGNORE INTO volumes (name, driver, labels, options, created, anonymous, populated) VALUES (?, ?, ?, ?, ?, ?, 0)')
      .run(name, driver, JSON.stringify(labels), JSON.stringify(options), created, anonymous ? 1 : 0);
    try {
      await fs.mkdir(path.join(this.dir, name), { recursive: true, mode: 0o755 });
      await fs.mkdir(this.mountpoint(name), { recursive: true, mode: 0o755 });
    } catch (e) {
      if (res.changes === 1) this.db.prepare('DELETE FROM volumes WHERE name = ?').run(name);
      throw e;
    }
    return this.get(name);
  }

  /** Ids of the containers that reference a volume. */
  users(name: string): string[] {
    return (this.db.prepare('SELECT DISTINCT container_id FROM volume_mounts WHERE volume = ? ORDER BY container_id').all(name) as Array<{ container_id: string }>).map(
      (r) => r.container_id,
    );
  }

  /** `DELETE /volumes/{name}`: refused while any container references it, even with force. */
  async remove(name: string, force = false): Promise<void> {
    const v = this.tryGet(name);
    if (!v) {
      if (force) return;
      throw new NotFoundError(`No such volume: ${name}`);
    }
    const users = this.users(name);
    if (users.length > 0) throw new ConflictError(`Volume is in use: ${name}: [${users.join(', ')}]`);
    const dir = path.join(this.dir, name);
    const trash = path.join(this.dir, `${TRASH}${name}-${randomBytes(4).toString('hex')}`);
    // Out of the way first (atomic), then forget, then delete: a crash leaves only trash.
    const moved = await fs.rename(dir, trash).then(
      () => true,
      (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return false;
        throw e;
      },
    );
    try {
      this.db.prepare('DELETE FROM volumes WHERE name = ?').run(name);
    } catch (e) {
      if (moved) await fs.rename(trash, dir).catch(() => {});
      if (/FOREIGN KEY/.test(String(e))) throw new ConflictError(`Volume is in use: ${name}`, { cause: e });
      throw e;
    }
    if (moved) await fs.rm(trash, { recursive: true, force: true });
  }

  /** `POST /volumes/prune`: every volume no container references (matching the label filters). */
  async prune(filters: Record<string, string[]> = {}): Promise<{ VolumesDeleted: string[]; SpaceReclaimed: number }> {
    const deleted: string[] = [];
    let space = 0;
    for (const v of this.list()) {
      if (this.users(v.name).length > 0) continue;
      if (!matchesLabelFilters(v, filters)) continue;
      const size = diskUsage(path.join(this.dir, v.name));
      try {
        await this.remove(v.name);
        deleted.push(v.name);
        space += size;
      } catch (e) {
        log.warn('volume prune: cannot remove volume', { name: v.name, error: String(e) });
      }
    }
    return { VolumesDeleted: deleted, SpaceReclaimed: space };
  }

  // ---- containers ----------------------------------------------------------

  refs(containerId: string): VolumeRef[] {
    return (this.db.prepare('SELECT * FROM volume_mounts WHERE container_id = ? ORDER BY destination').all(containerId) as RefRow[]).map(toRef);
  }

  /**
   * At container create (after its row is inserted): checks bind sources of
   * `--mount`, makes missing named volumes and the anonymous ones, and
   * records the references. On failure the anonymous volumes made here are
   * removed again; the caller removes the container row.
   */
  async attachContainer(c: ContainerRecord, imageVolumes: Record<string, object> | undefined | null): Promise<void> {
    const plan = planMounts(c.spec, imageVolumes);
    for (const m of plan) {
      if (m.type === 'bind' && !m.createSource && !existsSync(m.source)) {
        throw new InvalidArgumentError(`Invalid mount config for type "bind": bind source path does not exist: ${m.source}`);
      }
    }
    const made: string[] = [];
    try {
      const refs: VolumeRef[] = [];
      for (const m of plan) {
        if (m.type !== 'volume') continue;
        let name = m.name;
        if (name === '') {
          name = (await this.create({}, true)).name;
          made.push(name);
        } else if (!this.tryGet(name)) {
          await this.create({ Name: name, Labels: m.labels });
        }
        refs.push({ containerId: c.id, destination: m.destination, volume: name, readonly: m.readonly, nocopy: m.nocopy, mode: m.mode });
      }
      const insert = this.db.prepare(
        'INSERT INTO volume_mounts (container_id, destination, volume, readonly, nocopy, mode) VALUES (?, ?, ?, ?, ?, ?)',
      );
      this.db.transaction(() => {
        for (const r of refs) insert.run(r.containerId, r.destination, r.volume, r.readonly ? 1 : 0, r.nocopy ? 1 : 0, r.mode);
      })();
    } catch (e) {
      this.db.prepare('DELETE FROM volume_mounts WHERE container_id = ?').run(c.id);
      for (const name of made) await this.remove(name, true).catch(() => {});
      throw e;
    }
  }

  /** The anonymous volumes a container references (for `rm -v`), read before its row goes. */
  anonymousOf(containerId: string): string[] {
    return this.refs(containerId)
      .map((r) => this.tryGet(r.volume))
      .filter((v): v is VolumeRecord => !!v && v.anonymous)
      .map((v) => v.name);
  }

  /** After a container is gone: removes those of `names` nobody else uses (errors are only logged). */
  async removeUnused(names: string[]): Promise<void> {
    for (const name of names) {
      if (this.users(name).length > 0) continue;
      await this.remove(name, true).catch((e: unknown) => log.warn('cannot remove anonymous volume', { name, error: String(e) }));
    }
  }

  /**
   * The mounts of a starting container whose root filesystem is mounted at
   * `rootfs`: host binds (`-v /abs`, `--mount type=bind`; `-v` makes a missing
   * source directory), tmpfs mounts from `--mount`, and its volumes, which are
   * pre-populated here when needed.
   */
  async startMounts(c: ContainerRecord, rootfs: string, imageVolumes?: Record<string, object> | null): Promise<{ binds: BindMount[]; tmpfs: Record<string, string> }> {
    const plan = planMounts(c.spec, imageVolumes);
    const binds: BindMount[] = [];
    const tmpfs: Record<string, string> = {};
    for (const m of plan) {
      if (m.type === 'bind') {
        if (m.createSource) await fs.mkdir(m.source, { recursive: true }).catch(() => {});
        binds.push({ source: m.source, destination: m.destination, readonly: m.readonly, propagation: m.propagation });
      } else if (m.type === 'tmpfs') {
        tmpfs[m.destination] = m.options;
      }
    }
    for (const r of this.refs(c.id)) {
      const v = this.get(r.volume);
      const data = this.mountpoint(v.name);
      await fs.mkdir(data, { recursive: true, mode: 0o755 });
      if (!r.nocopy && !v.populated) await this.#locked(v.name, () => this.#populate(v.name, rootfs, r.destination));
      binds.push({ source: data, destination: r.destination, readonly: r.readonly });
    }
    return { binds, tmpfs };
  }

  /** Copies the image's content at `destination` into a volume that is still empty, then marks it populated. */
  async #populate(name: string, rootfs: string, destination: string): Promise<void> {
    const v = this.tryGet(name);
    if (!v || v.populated) return;
    const data = this.mountpoint(name);
    if (readdirSync(data).length > 0) return;
    const src = new ContainerFs(rootfs).resolve(destination, true);
    if (!src.stat?.isDirectory()) return;
    if (readdirSync(src.host).length === 0) return;
    // `cp -a SRC/. DST` copies the tree without following its symlinks and gives
    // DST the directory's own mode, owner and times, as Docker does.
    await run('cp', ['-a', '--', `${src.host}/.`, data]);
    this.db.prepare('UPDATE volumes SET populated = 1 WHERE name = ?').run(name);
    log.debug('volume populated from image', { name, destination });
  }

  async #locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#locks.get(key) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(fn);
    this.#locks.set(key, next);
    try {
      return await next;
    } finally {
      if (this.#locks.get(key) === next) this.#locks.delete(key);
    }
  }

  /** Docker's `Mounts` entries of `inspect`/`ps` for a container. */
  mountViews(c: ContainerRecord): Array<Record<string, unknown>> {
    return mountViews(c, this.refs(c.id), (n) => this.mountpoint(n));
  }
}

/**
 * Docker's `Mounts` entries; `refs` are the container's volume references
 * (null when unknown: named volumes are then shown from the request, without a Source).
 */
export function mountViews(c: ContainerRecord, refs: VolumeRef[] | null, mountpoint: (name: string) => string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  let plan: PlannedMount[] = [];
  try {
    plan = planMounts(c.spec as ContainerSpec, null);
  } catch {
    /* shown as far as it parses */
  }
  for (const m of plan) {
    if (m.type === 'bind') {
      out.push({ Type: 'bind', Source: m.source, Destination: m.destination, Mode: m.mode, RW: !m.readonly, Propagation: m.propagation });
    } else if (m.type === 'tmpfs') {
      out.push({ Type: 'tmpfs', Source: '', Destination: m.destination, Mode: '', RW: !m.readonly, Propagation: '' });
    } else if (refs === null && m.name) {
      out.push({ Type: 'volume', Name: m.name, Source: '', Destination: m.destination, Driver: 'local', Mode: m.mode, RW: !m.readonly, Propagation: '' });
    }
  }
  for (const dest of Object.keys(c.spec.HostConfig.Tmpfs ?? {})) {
    out.push({ Type: 'tmpfs', Source: '', Destination: dest, Mode: '', RW: true, Propagation: '' });
  }
  for (const r of refs ?? []) {
    out.push({
      Type: 'volume',
      Name: r.volume,
      Source: mountpoint(r.volume),
      Destination: r.destination,
      Driver: 'local',
      Mode: r.mode,
      RW: !r.readonly,
      Propagation: '',
    });
  }
  return out;
}

/** Docker's volume filters: name (substring), label (key or key=value), dangling. */
export function matchesVolumeFilters(v: VolumeRecord, inUse: boolean, filters: Record<string, string[]>): boolean {
  for (const [key, values] of Object.entries(filters)) {
    if (!values.length) continue;
    switch (key) {
      case 'name':
        if (!values.some((x) => v.name.includes(x))) return false;
        break;
      case 'label':
        if (!matchesLabelFilters(v, { label: values })) return false;
        break;
      case 'dangling': {
        const want = values.map((x) => x.toLowerCase());
        if (!want.every((x) => ['true', '1', 'false', '0'].includes(x))) throw new InvalidArgumentError(`Invalid filter 'dangling=${values[0]}'`);
        const dangling = want.some((x) => x === 'true' || x === '1');
        if (dangling === inUse) return false;
        break;
      }
      case 'driver':
        if (!values.includes(v.driver)) return false;
        break;
      default:
        throw new InvalidArgumentError(`Invalid filter '${key}'`);
    }
  }
  return true;
}

/** Every `label` filter must match (Docker's AND semantics); `label!` must not. */
function matchesLabelFilters(v: VolumeRecord, filters: Record<string, string[]>): boolean {
  const test = (f: string): boolean => {
    const i = f.indexOf('=');
    return i < 0 ? f in v.labels : v.labels[f.slice(0, i)] === f.slice(i + 1);
  };
  return (filters['label'] ?? []).every(test) && !(filters['label!'] ?? []).some(test);
}

/** Bytes used by a tree (apparent sizes, hard links counted once), not crossing file systems. */
export function diskUsage(dir: string): number {
  let total = 0;
  const seen = new Set<string>();
  const root = statSync(dir, { throwIfNoEntry: false });
  if (!root) return 0;
  const walk = (p: string): void => {
    let names: string[];
    try {
      names = readdirSync(p);
    } catch {
      return;
    }
    for (const n of names) {
      const child = path.join(p, n);
      const st = lstatSync(child, { throwIfNoEntry: false });
      if (!st || st.dev !== root.dev) continue;
      if (st.isDirectory()) walk(child);
      else {
        const key = `${st.ino}`;
        if (st.nlink > 1 && seen.has(key)) continue;
        seen.add(key);
        total += st.size;
      }
    }
  };
  walk(dir);
  return total;
}
