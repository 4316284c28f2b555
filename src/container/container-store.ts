/**
 * Persistence of container records in the daemon database.
 *
 * The daemon is the only process that reads or writes the table, so the rows
 * are also kept in memory (as the stored JSON text): lookups by id, name or
 * id prefix never go to SQLite, and every write goes to SQLite first and to
 * memory only once it succeeded. Each read parses the JSON afresh, so callers
 * get records of their own to change, exactly as from a query.
 */
import type { Db } from '../store/db.js';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../core/errors.js';
import type { ContainerRecord, ContainerSpec, ContainerState } from './model.js';

interface Row {
  id: string;
  name: string;
  image_id: string;
  created: string;
  spec: string;
  state: string;
}

function toRecord(r: Row): ContainerRecord {
  return {
    id: r.id,
    name: r.name,
    imageId: r.image_id,
    created: r.created,
    spec: JSON.parse(r.spec) as ContainerSpec,
    state: JSON.parse(r.state) as ContainerState,
  };
}

export class ContainerStore {
  readonly #rows = new Map<string, Row>();
  readonly #byName = new Map<string, string>();

  constructor(private readonly db: Db) {
    for (const r of db.prepare('SELECT * FROM containers').all() as Row[]) this.#remember(r);
  }

  #remember(r: Row): void {
    this.#rows.set(r.id, r);
    this.#byName.set(r.name, r.id);
  }

  insert(c: ContainerRecord): void {
    const row: Row = {
      id: c.id,
      name: c.name,
      image_id: c.imageId,
      created: c.created,
      spec: JSON.stringify(c.spec),
      state: JSON.stringify(c.state),
    };
    try {
      this.db
        .prepare('INSERT INTO containers (id, name, image_id, created, spec, state) VALUES (?, ?, ?, ?, ?, ?)')
        .run(row.id, row.name, row.image_id, row.created, row.spec, row.state);
    } catch (e) {
      if (/UNIQUE constraint failed: containers.name/.test(String(e))) {
        throw new ConflictError(`Conflict: the container name "/${c.name}" is already in use`, { cause: e });
      }
      throw e;
    }
    this.#remember(row);
  }

  saveSpec(id: string, spec: ContainerSpec): void {
    const text = JSON.stringify(spec);
    this.db.prepare('UPDATE containers SET spec = ? WHERE id = ?').run(text, id);
    const r = this.#rows.get(id);
    if (r) r.spec = text;
  }

  saveState(id: string, state: ContainerState): void {
    const text = JSON.stringify(state);
    this.db.prepare('UPDATE containers SET state = ? WHERE id = ?').run(text, id);
    const r = this.#rows.get(id);
    if (r) r.state = text;
  }

  rename(id: string, name: string): void {
    try {
      this.db.prepare('UPDATE containers SET name = ? WHERE id = ?').run(name, id);
    } catch (e) {
      if (/UNIQUE constraint failed/.test(String(e))) {
        throw new ConflictError(`Conflict: the container name "/${name}" is already in use`, { cause: e });
      }
      throw e;
    }
    const r = this.#rows.get(id);
    if (r) {
      this.#byName.delete(r.name);
      r.name = name;
      this.#byName.set(name, id);
    }
  }

  delete(id: string): void {
    this.db.prepare('DELETE FROM containers WHERE id = ?').run(id);
    const r = this.#rows.get(id);
    if (r) {
      this.#rows.delete(id);
      if (this.#byName.get(r.name) === id) this.#byName.delete(r.name);
    }
  }

  get(id: string): ContainerRecord | null {
    const r = this.#rows.get(id);
    return r ? toRecord(r) : null;
  }

  nameTaken(name: string): boolean {
    return this.#byName.has(name);
  }

  /** By full ID, exact name, or unique ID prefix (Docker's lookup order). */
  resolve(ref: string): ContainerRecord {
    const name = ref.startsWith('/') ? ref.slice(1) : ref;
    if (!name) throw new InvalidArgumentError('A container name or ID is needed');
    const exact = this.#rows.get(name) ?? this.#rows.get(this.#byName.get(name) ?? '');
    if (exact) return toRecord(exact);
    if (/^[a-f0-9]+$/.test(name)) {
      let found: Row | null = null;
      for (const [id, r] of this.#rows) {
        if (!id.startsWith(name)) continue;
        if (found) throw new InvalidArgumentError(`Multiple IDs found with provided prefix: ${name}`);
        found = r;
      }
      if (found) return toRecord(found);
    }
    throw new NotFoundError(`No such container: ${ref}`);
  }

  /** Newest first. */
  list(): ContainerRecord[] {
    return [...this.#rows.values()].sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : 0)).map(toRecord);
  }

  usersOfImage(imageId: string): string[] {
    const out: string[] = [];
    for (const r of this.#rows.values()) if (r.image_id === imageId) out.push(r.id);
    return out;
  }
}
