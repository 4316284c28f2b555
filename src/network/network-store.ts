/** Networks and their endpoints (IP leases) in the daemon database. */
import type { Db } from '../store/db.js';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../core/errors.js';

export interface NetworkRecord {
  id: string;
  name: string;
  bridge: string;
  subnet: string;
  gateway: string;
  internal: boolean;
  /** The daemon's default network (`bridge`): cannot be removed, no embedded DNS (as Docker's). */
  builtin: boolean;
  labels: Record<string, string>;
  created: string;
}

export interface Endpoint {
  networkId: string;
  containerId: string;
  ip: string;
  mac: string;
  aliases: string[];
  hostIf: string;
}

interface NetRow {
  id: string;
  name: string;
  bridge: string;
  subnet: string;
  gateway: string;
  internal: number;
  builtin: number;
  labels: string;
  created: string;
}

interface EpRow {
  network_id: string;
  container_id: string;
  ip: string;
  mac: string;
  aliases: string;
  host_if: string;
}

const toNet = (r: NetRow): NetworkRecord => ({
  id: r.id,
  name: r.name,
  bridge: r.bridge,
  subnet: r.subnet,
  gateway: r.gateway,
  internal: !!r.internal,
  builtin: !!r.builtin,
  labels: JSON.parse(r.labels) as Record<string, string>,
  created: r.created,
});

const toEp = (r: EpRow): Endpoint => ({
  networkId: r.network_id,
  containerId: r.container_id,
  ip: r.ip,
  mac: r.mac,
  aliases: JSON.parse(r.aliases) as string[],
  hostIf: r.host_if,
});

export class NetworkStore {
  constructor(private readonly db: Db) {}

  insert(n: NetworkRecord): void {
    try {
      this.db
        .prepare('INSERT INTO networks (id, name, bridge, subnet, gateway, internal, builtin, labels, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(n.id, n.name, n.bridge, n.subnet, n.gateway, n.internal ? 1 : 0, n.builtin ? 1 : 0, JSON.stringify(n.labels), n.created);
    } catch (e) {
      if (/UNIQUE constraint failed: networks.name/.test(String(e))) throw new ConflictError(`Network with name ${n.name} already exists`, { cause: e });
      if (/UNIQUE constraint failed: networks.bridge/.test(String(e))) throw new ConflictError(`Bridge ${n.bridge} is already used by another network`, { cause: e });
      throw e;
    }
  }

  delete(id: string): void {
    this.db.prepare('DELETE FROM networks WHERE id = ?').run(id);
  }

  list(): NetworkRecord[] {
    return (this.db.prepare('SELECT * FROM networks ORDER BY created').all() as NetRow[]).map(toNet);
  }

  /** By name, full ID or unique ID prefix. */
  resolve(ref: string): NetworkRecord {
    const byName = this.db.prepare('SELECT * FROM networks WHERE name = ?').get(ref) as NetRow | undefined;
    if (byName) return toNet(byName);
    if (/^[a-f0-9]+$/.test(ref)) {
      const rows = this.db.prepare('SELECT * FROM networks WHERE id LIKE ?').all(`${ref}%`) as NetRow[];
      if (rows.length === 1) return toNet(rows[0] as NetRow);
      if (rows.length > 1) throw new InvalidArgumentError(`Network ${ref} is ambiguous (${rows.length} matches found based on ID prefix)`);
    }
    throw new NotFoundError(`Network ${ref} not found`);
  }

  endpoints(filter: { networkId?: string; containerId?: string } = {}): Endpoint[] {
    if (filter.networkId && filter.containerId) {
      return (this.db.prepare('SELECT * FROM endpoints WHERE network_id = ? AND container_id = ?').all(filter.networkId, filter.containerId) as EpRow[]).map(toEp);
    }
    if (filter.networkId) return (this.db.prepare('SELECT * FROM endpoints WHERE network_id = ?').all(filter.networkId) as EpRow[]).map(toEp);
    if (filter.containerId) return (this.db.prepare('SELECT * FROM endpoints WHERE container_id = ? ORDER BY rowid').all(filter.containerId) as EpRow[]).map(toEp);
    return (this.db.prepare('SELECT * FROM endpoints').all() as EpRow[]).map(toEp);
  }

  addEndpoint(e: Endpoint): void {
    this.db
      .prepare('INSERT INTO endpoints (network_id, container_id, ip, mac, aliases, host_if) VALUES (?, ?, ?, ?, ?, ?)')
      .run(e.networkId, e.containerId, e.ip, e.mac, JSON.stringify(e.aliases), e.hostIf);
  }

  removeEndpoint(networkId: string, containerId: string): void {
    this.db.prepare('DELETE FROM endpoints WHERE network_id = ? AND container_id = ?').run(networkId, containerId);
  }
}
