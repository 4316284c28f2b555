/** Persistence of VM records and their snapshots in the daemon database. */
import type { Db } from '../store/db.js';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../core/errors.js';
import type { VmConfig, VmRecord, VmSnapshot, VmState } from './model.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS vms (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created TEXT NOT NULL,
  config TEXT NOT NULL,
  state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS vm_snapshots (
  vm_id TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  created TEXT NOT NULL,
  with_memory INTEGER NOT NULL,
  vm_clock_ms INTEGER,
  PRIMARY KEY (vm_id, name)
);
`;

interface Row {
  id: string;
  name: string;
  created: string;
  config: string;
  state: string;
}

const toRecord = (r: Row): VmRecord => ({
  id: r.id,
  name: r.name,
  created: r.created,
  config: JSON.parse(r.config) as VmConfig,
  state: JSON.parse(r.state) as VmState,
});

export class VmStore {
  constructor(private readonly db: Db) {
    db.exec(SCHEMA);
  }

  insert(vm: VmRecord): void {
    try {
      this.db
        .prepare('INSERT INTO vms (id, name, created, config, state) VALUES (?, ?, ?, ?, ?)')
        .run(vm.id, vm.name, vm.created, JSON.stringify(vm.config), JSON.stringify(vm.state));
    } catch (e) {
      if (/UNIQUE constraint failed: vms.name/.test(String(e))) {
        throw new ConflictError(`A VM named "${vm.name}" already exists`, { cause: e });
      }
      throw e;
    }
  }

  saveConfig(id: string, config: VmConfig): void {
    this.db.prepare('UPDATE vms SET config = ? WHERE id = ?').run(JSON.stringify(config), id);
  }

  saveState(id: string, state: VmState): void {
    this.db.prepare('UPDATE vms SET state = ? WHERE id = ?').run(JSON.stringify(state), id);
  }

  remove(id: string): void {
    this.db.prepare('DELETE FROM vms WHERE id = ?').run(id);
  }

  list(): VmRecord[] {
    return (this.db.prepare('SELECT * FROM vms ORDER BY created').all() as Row[]).map(toRecord);
  }

  tryResolve(ref: string): VmRecord | null {
    const byName = this.db.prepare('SELECT * FROM vms WHERE name = ?').get(ref) as Row | undefined;
    if (byName) return toRecord(byName);
    if (/^[a-f0-9]{4,64}$/.test(ref)) {
      const rows = this.db.prepare('SELECT * FROM vms WHERE id LIKE ?').all(`${ref}%`) as Row[];
      if (rows.length > 1) throw new InvalidArgumentError(`Ambiguous VM ID prefix: ${ref}`);
      if (rows[0]) return toRecord(rows[0]);
    }
    return null;
  }

  resolve(ref: string): VmRecord {
    const vm = this.tryResolve(ref);
    if (!vm) throw new NotFoundError(`No such VM: ${ref}`);
    return vm;
  }

  snapshots(vmId: string): VmSnapshot[] {
    return (
      this.db.prepare('SELECT * FROM vm_snapshots WHERE vm_id = ? ORDER BY created').all(vmId) as Array<{
        vm_id: string;
        name: string;
        created: string;
        with_memory: number;
        vm_clock_ms: number | null;
      }>
    ).map((r) => ({ vmId: r.vm_id, name: r.name, created: r.created, withMemory: !!r.with_memory, vmClockMs: r.vm_clock_ms }));
  }

  snapshot(vmId: string, name: string): VmSnapshot {
    const s = this.snapshots(vmId).find((x) => x.name === name);
    if (!s) throw new NotFoundError(`No such snapshot: ${name}`);
    return s;
  }

  addSnapshot(s: VmSnapshot): void {
    try {
      this.db
        .prepare('INSERT INTO vm_snapshots (vm_id, name, created, with_memory, vm_clock_ms) VALUES (?, ?, ?, ?, ?)')
        .run(s.vmId, s.name, s.created, s.withMemory ? 1 : 0, s.vmClockMs);
    } catch (e) {
      if (/UNIQUE|PRIMARY KEY/.test(String(e))) throw new ConflictError(`Snapshot "${s.name}" already exists`, { cause: e });
      throw e;
    }
  }

  removeSnapshot(vmId: string, name: string): void {
    this.db.prepare('DELETE FROM vm_snapshots WHERE vm_id = ? AND name = ?').run(vmId, name);
  }
}
