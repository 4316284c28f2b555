/** Persistence of container records in the daemon database. */
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
  constructor(private readonly db: Db) {}

  insert(c: ContainerRecord): void {
    try {
      this.db
        .prepare('INSERT INTO containers (id, name, image_id, created, spec, state) VALUES (?, ?, ?, ?, ?, ?)')
        .run(c.id, c.name, c.imageId, c.created, JSON.stringify(c.spec), JSON.stringify(c.state));
    } catch (e) {
      if (/UNIQUE constraint failed: containers.name/.test(String(e))) {
        throw new ConflictError(`Conflict: the container name "/${c.name}" is already in use`, { cause: e });
      }
      throw e;
    }
  }

  saveSpec(id: string, spec: ContainerSpec): void {
    this.db.prepare('UPDATE containers SET spec = ? WHERE id = ?').run(JSON.stringify(spec), id);
  }

  saveState(id: string, state: ContainerState): void {
    this.db.prepare('UPDATE containers SET state = ? WHERE id = ?').run(JSON.stringify(state), id);
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
  }

  delete(id: string): void {
    this.db.prepare('DELETE FROM containers WHERE id = ?').run(id);
  }

  get(id: string): ContainerRecord | null {
    const r = this.db.prepare('SELECT * FROM containers WHERE id = ?').get(id) as Row | undefined;
    return r ? toRecord(r) : null;
  }

  nameTaken(name: string): boolean {
    return !!this.db.prepare('SELECT 1 FROM containers WHERE name = ?').get(name);
  }

  /** By exact name, full ID, or unique ID prefix (Docker's lookup order). */
  resolve(ref: string): ContainerRecord {
    const name = ref.startsWith('/') ? ref.slice(1) : ref;
    if (!name) throw new InvalidArgumentError('A container name or ID is needed');
    const byName = this.db.prepare('SELECT * FROM containers WHERE name = ?').get(name) as Row | undefined;
    if (byName) return toRecord(byName);
    if (/^[a-f0-9]+$/.test(name)) {
      const rows = this.db.prepare('SELECT * FROM containers WHERE id LIKE ?').all(`${name}%`) as Row[];
      if (rows.length === 1) return toRecord(rows[0] as Row);
      if (rows.length > 1) throw new InvalidArgumentError(`Multiple IDs found with provided prefix: ${name}`);
    }
    throw new NotFoundError(`No such container: ${ref}`);
  }

  list(): ContainerRecord[] {
    return (this.db.prepare('SELECT * FROM containers ORDER BY created DESC').all() as Row[]).map(toRecord);
  }

  usersOfImage(imageId: string): string[] {
    return (this.db.prepare('SELECT id FROM containers WHERE image_id = ?').all(imageId) as Array<{ id: string }>).map(
      (r) => r.id,
    );
  }
}
