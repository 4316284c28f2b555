/**
 * The registry's on-disk layout under one root directory:
 *
 * ```
 * <root>/blobs/sha256/<hex>                                  complete blobs (manifests too), global
 * <root>/tmp/                                                files being written, renamed into blobs/
 * <root>/uploads/<uuid>/{data,state.json}                    upload sessions (see uploads.ts)
 * <root>/repositories/<name>/_layers/sha256/<hex>            blob linked into the repository (empty file)
 * <root>/repositories/<name>/_manifests/revisions/sha256/<hex>  manifest in the repository; holds its media type
 * <root>/repositories/<name>/_manifests/tags/<tag>           the digest the tag points to
 * ```
 *
 * A blob is written to `tmp/`, verified and renamed, so a file in `blobs/`
 * is always complete. Repository names cannot contain a component starting
 * with `_`, so the `_layers`/`_manifests` directories never collide with
 * nested repositories. Manifests are stored as their exact pushed bytes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';

export interface ManifestRecord {
  digest: string;
  mediaType: string;
  bytes: Buffer;
}

function hexOf(digest: string): string {
  const m = /^sha256:([a-f0-9]{64})$/.exec(digest);
  if (!m) throw new Error(`Invalid digest: ${digest}`);
  return m[1] as string;
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}

async function readdirOrEmpty(p: string): Promise<string[]> {
  try {
    return await fs.readdir(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

export function sha256Of(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export class RegistryStorage {
  constructor(readonly root: string) {}

  async init(): Promise<void> {
    for (const d of ['blobs/sha256', 'tmp', 'uploads', 'repositories']) {
      await fs.mkdir(path.join(this.root, d), { recursive: true });
    }
  }

  /** A fresh path in tmp/ (same filesystem as blobs/, so rename is atomic). */
  tempPath(): string {
    return path.join(this.root, 'tmp', randomBytes(12).toString('hex'));
  }

  blobPath(digest: string): string {
    return path.join(this.root, 'blobs', 'sha256', hexOf(digest));
  }

  private repoDir(name: string): string {
    return path.join(this.root, 'repositories', ...name.split('/'));
  }

  private layerLink(name: string, digest: string): string {
    return path.join(this.repoDir(name), '_layers', 'sha256', hexOf(digest));
  }

  private revisionLink(name: string, digest: string): string {
    return path.join(this.repoDir(name), '_manifests', 'revisions', 'sha256', hexOf(digest));
  }

  private tagFile(name: string, tag: string): string {
    return path.join(this.repoDir(name), '_manifests', 'tags', tag);
  }

  // --- global blobs ---

  /** Size of a stored blob, or undefined. */
  async blobSize(digest: string): Promise<number | undefined> {
    try {
      return (await fs.stat(this.blobPath(digest))).size;
    } catch {
      return undefined;
    }
  }

  openBlob(digest: string, range?: { start: number; end: number }): Readable {
    // 1 MiB reads: layers are big, and 64 KiB reads cost a syscall and an event-loop turn each.
    return createReadStream(this.blobPath(digest), { ...(range ?? {}), highWaterMark: 1024 * 1024 });
  }

  /**
   * Moves a verified file into blobs/. If the blob already exists the file is
   * removed instead (same digest, same bytes).
   */
  async commitBlob(file: string, digest: string): Promise<void> {
    const dest = this.blobPath(digest);
    if (await exists(dest)) {
      await fs.rm(file, { force: true });
      return;
    }
    await fs.rename(file, dest);
  }

  async writeBlobBytes(bytes: Buffer): Promise<string> {
    const digest = sha256Of(bytes);
    if (!(await exists(this.blobPath(digest)))) {
      const tmp = this.tempPath();
      try {
        await fs.writeFile(tmp, bytes);
        await fs.rename(tmp, this.blobPath(digest));
      } catch (e) {
        await fs.rm(tmp, { force: true });
        throw e;
      }
    }
    return digest;
  }

  async listBlobs(): Promise<string[]> {
    return (await readdirOrEmpty(path.join(this.root, 'blobs', 'sha256'))).map((h) => `sha256:${h}`);
  }

  async removeBlob(digest: string): Promise<void> {
    await fs.rm(this.blobPath(digest), { force: true });
  }

  // --- repository blob links ---

  async linkBlob(name: string, digest: string): Promise<void> {
    const link = this.layerLink(name, digest);
    await fs.mkdir(path.dirname(link), { recursive: true });
    await fs.writeFile(link, '');
  }

  /** Size of a blob visible in `name`, or undefined. */
  async repoBlobSize(name: string, digest: string): Promise<number | undefined> {
    if (!(await exists(this.layerLink(name, digest)))) return undefined;
    return this.blobSize(digest);
  }

  /** Removes the link; false when the repository had no such blob. */
  async unlinkBlob(name: string, digest: string): Promise<boolean> {
    const link = this.layerLink(name, digest);
    if (!(await exists(link))) return false;
    await fs.rm(link, { force: true });
    return true;
  }

  async listBlobLinks(name: string): Promise<string[]> {
    return (await readdirOrEmpty(path.join(this.repoDir(name), '_layers', 'sha256'))).map((h) => `sha256:${h}`);
  }

  // --- manifests and tags ---

  async putManifest(name: string, bytes: Buffer, mediaType: string): Promise<string> {
    const digest = await this.writeBlobBytes(bytes);
    const link = this.revisionLink(name, digest);
    await fs.mkdir(path.dirname(link), { recursive: true });
    await atomicWrite(this, link, mediaType);
    return digest;
  }

  async hasManifest(name: string, digest: string): Promise<boolean> {
    return (await exists(this.revisionLink(name, digest))) && (await exists(this.blobPath(digest)));
  }

  async getManifest(name: string, digest: string): Promise<ManifestRecord | undefined> {
    try {
      const mediaType = await fs.readFile(this.revisionLink(name, digest), 'utf8');
      const bytes = await fs.readFile(this.blobPath(digest));
      return { digest, mediaType, bytes };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  /** Removes the revision and every tag pointing at it; false when absent. */
  async deleteManifest(name: string, digest: string): Promise<boolean> {
    const link = this.revisionLink(name, digest);
    if (!(await exists(link))) return false;
    for (const tag of await this.listTags(name)) {
      if ((await this.resolveTag(name, tag)) === digest) await this.deleteTag(name, tag);
    }
    await fs.rm(link, { force: true });
    return true;
  }

  async listManifests(name: string): Promise<string[]> {
    const dir = path.join(this.repoDir(name), '_manifests', 'revisions', 'sha256');
    return (await readdirOrEmpty(dir)).map((h) => `sha256:${h}`);
  }

  async tag(name: string, tag: string, digest: string): Promise<void> {
    const file = this.tagFile(name, tag);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await atomicWrite(this, file, digest);
  }

  async resolveTag(name: string, tag: string): Promise<string | undefined> {
    try {
      return (await fs.readFile(this.tagFile(name, tag), 'utf8')).trim();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async deleteTag(name: string, tag: string): Promise<boolean> {
    const file = this.tagFile(name, tag);
    if (!(await exists(file))) return false;
    await fs.rm(file, { force: true });
    return true;
  }

  /** Tags in lexical order. */
  async listTags(name: string): Promise<string[]> {
    return (await readdirOrEmpty(path.join(this.repoDir(name), '_manifests', 'tags'))).sort();
  }

  async hasRepository(name: string): Promise<boolean> {
    const dir = this.repoDir(name);
    return (await exists(path.join(dir, '_manifests'))) || (await exists(path.join(dir, '_layers')));
  }

  /** All repository names, sorted. */
  async listRepositories(): Promise<string[]> {
    const out: string[] = [];
    const walk = async (dir: string, prefix: string): Promise<void> => {
      const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
      if (prefix && entries.some((e) => e.name === '_manifests' || e.name === '_layers')) out.push(prefix);
      for (const e of entries) {
        if (e.isDirectory() && !e.name.startsWith('_')) await walk(path.join(dir, e.name), prefix ? `${prefix}/${e.name}` : e.name);
      }
    };
    await walk(path.join(this.root, 'repositories'), '');
    return out.sort();
  }
}

/** Writes a small file via tmp/ + rename so readers never see half of it. */
async function atomicWrite(store: RegistryStorage, file: string, text: string): Promise<void> {
  const tmp = store.tempPath();
  try {
    await fs.writeFile(tmp, text);
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}
