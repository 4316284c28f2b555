/**
 * The build cache: a step's key (its parent image, its instruction and the
 * content it brings in) maps to the image the step produced. It lives in the
 * daemon database, so it survives restarts; `vessel builder prune` empties it.
 */
import { createHash } from 'node:crypto';
import type { Db } from '../store/db.js';

export function cacheKey(parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return `sha256:${h.digest('hex')}`;
}

export class BuildCache {
  constructor(private readonly db: Db) {
    db.exec(`CREATE TABLE IF NOT EXISTS build_cache (
      key TEXT PRIMARY KEY,
      image_id TEXT NOT NULL,
      created TEXT NOT NULL
    )`);
  }

  get(key: string): string | null {
    const r = this.db.prepare('SELECT image_id FROM build_cache WHERE key = ?').get(key) as { image_id: string } | undefined;
    return r?.image_id ?? null;
  }

  put(key: string, imageId: string): void {
    this.db.prepare('INSERT OR REPLACE INTO build_cache (key, image_id, created) VALUES (?, ?, ?)').run(key, imageId, new Date().toISOString());
  }

  /** Images the cache refers to, so image prune keeps them unless the cache is pruned too. */
  imageIds(): Set<string> {
    return new Set((this.db.prepare('SELECT image_id FROM build_cache').all() as Array<{ image_id: string }>).map((r) => r.image_id));
  }

  forgetImage(imageId: string): void {
    this.db.prepare('DELETE FROM build_cache WHERE image_id = ?').run(imageId);
  }

  prune(): number {
    return this.db.prepare('DELETE FROM build_cache').run().changes;
  }
}
