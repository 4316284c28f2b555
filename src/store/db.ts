/**
 * The daemon's metadata store: one SQLite database under the daemon root.
 *
 * Blobs (layers, configs, manifests) live in the content store on disk; this
 * database holds what refers to them: images and their tags, unpacked layer
 * snapshots, and containers with their persisted state. Every write is a
 * single statement or an explicit transaction, so a `kill -9` of the daemon
 * never leaves a half-written record.
 */
import Database from 'better-sqlite3';

export type Db = Database.Database;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS images (
  id TEXT PRIMARY KEY,            -- config digest, sha256:...
  manifest_digest TEXT NOT NULL,
  created TEXT NOT NULL,
  size INTEGER NOT NULL,
  config TEXT NOT NULL,           -- the OCI image config JSON
  layers TEXT NOT NULL            -- JSON array of layer chain ids, bottom first
);
CREATE TABLE IF NOT EXISTS tags (
  name TEXT PRIMARY KEY,          -- normalised repo:tag
  image_id TEXT NOT NULL REFERENCES images(id)
);
CREATE TABLE IF NOT EXISTS layers (
  chain_id TEXT PRIMARY KEY,
  diff_id TEXT NOT NULL,
  parent TEXT,
  dir INTEGER NOT NULL UNIQUE,    -- short directory number under <root>/l
  size INTEGER NOT NULL,
  digest TEXT NOT NULL,           -- blob digest as stored
  blob_size INTEGER NOT NULL,
  media_type TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS containers (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  image_id TEXT NOT NULL,
  created TEXT NOT NULL,
  spec TEXT NOT NULL,             -- ContainerConfig JSON (what the user asked for)
  state TEXT NOT NULL             -- ContainerState JSON (what is)
);
CREATE TABLE IF NOT EXISTS networks (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  bridge TEXT NOT NULL UNIQUE,
  subnet TEXT NOT NULL,
  gateway TEXT NOT NULL,
  internal INTEGER NOT NULL,
  builtin INTEGER NOT NULL,
  labels TEXT NOT NULL,
  created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS endpoints (   -- IP leases: one per (network, container)
  network_id TEXT NOT NULL REFERENCES networks(id),
  container_id TEXT NOT NULL,
  ip TEXT NOT NULL,
  mac TEXT NOT NULL,
  aliases TEXT NOT NULL,
  host_if TEXT NOT NULL,
  PRIMARY KEY (network_id, container_id),
  UNIQUE (network_id, ip)
);
CREATE TABLE IF NOT EXISTS volumes (
  name TEXT PRIMARY KEY,
  driver TEXT NOT NULL,           -- always 'local'
  labels TEXT NOT NULL,           -- JSON object
  options TEXT NOT NULL,          -- JSON object (DriverOpts)
  created TEXT NOT NULL,
  anonymous INTEGER NOT NULL,     -- made for a container (-v /path, image VOLUME); removed by rm -v
  populated INTEGER NOT NULL      -- 1 once filled from an image: never pre-populated again
);
CREATE TABLE IF NOT EXISTS volume_mounts (  -- which container mounts which volume where
  container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
  destination TEXT NOT NULL,
  volume TEXT NOT NULL REFERENCES volumes(name),
  readonly INTEGER NOT NULL,
  nocopy INTEGER NOT NULL,
  mode TEXT NOT NULL,
  PRIMARY KEY (container_id, destination)
);
CREATE INDEX IF NOT EXISTS volume_mounts_by_volume ON volume_mounts(volume);
CREATE TABLE IF NOT EXISTS repo_digests (  -- repo@sha256:... an image was pulled as or pushed to
  name TEXT PRIMARY KEY,
  image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS repo_digests_by_image ON repo_digests(image_id);
CREATE TABLE IF NOT EXISTS blob_sources (  -- where blobs were pulled from / pushed to (cross-repo mounts)
  digest TEXT NOT NULL,
  registry TEXT NOT NULL,         -- host[:port]
  repo TEXT NOT NULL,             -- repository path on that registry
  PRIMARY KEY (digest, registry, repo)
);
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
`;

export function openDb(path: string): Db {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  db.exec(SCHEMA);
  cacheStatements(db);
  return db;
}

/**
 * Makes `db.prepare(sql)` return one compiled statement per SQL text. Every
 * query in the daemon is a fixed string, and compiling one costs more than
 * running it (a container's create-start-exit-remove runs about a dozen).
 * Reuse is safe because statements are only ever run to completion
 * (`get`/`all`/`run`; nothing keeps an `iterate()` open or switches a
 * statement's mode with `pluck`/`raw`/`expand`).
 */
function cacheStatements(db: Db): void {
  const compile = db.prepare.bind(db);
  const cache = new Map<string, ReturnType<Db['prepare']>>();
  db.prepare = ((sql: string) => {
    let stmt = cache.get(sql);
    if (!stmt) {
      stmt = compile(sql);
      cache.set(sql, stmt);
    }
    return stmt;
  }) as Db['prepare'];
}
