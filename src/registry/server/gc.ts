/**
 * Garbage collection of a registry root (mark and sweep).
 *
 * Mark: every manifest revision still stored in any repository, and
 * everything it references (config, layers, index children). Sweep: blobs
 * in `blobs/` that nothing marked, repository blob links to swept blobs,
 * upload sessions and temp files idle for longer than `uploadMaxAgeMs`.
 * With `deleteUntagged`, manifests that no tag reaches (directly, as an
 * index child, or as a referrer of a reached manifest) are removed first.
 *
 * Run it against a stopped server, or at least one no client is pushing
 * to: a blob uploaded but not yet referenced by a pushed manifest looks
 * unreferenced and is removed (as with distribution's garbage-collect).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { NotFoundError } from '../../core/errors.js';
import { parseManifest } from './manifest.js';
import { RegistryStorage } from './storage.js';
import { UploadManager } from './uploads.js';

export interface GcOptions {
  /** Report what would be removed without removing anything. */
  dryRun?: boolean;
  /** Also remove manifests that no tag reaches. */
  deleteUntagged?: boolean;
  /** Upload sessions idle for longer than this are removed (default 24 h). */
  uploadMaxAgeMs?: number;
}

export interface GcReport {
  dryRun: boolean;
  manifestsRemoved: Array<{ repository: string; digest: string }>;
  blobsRemoved: Array<{ digest: string; size: number }>;
  uploadsRemoved: Array<{ uuid: string; size: number }>;
  bytesReclaimed: number;
}

export const DEFAULT_UPLOAD_MAX_AGE_MS = 24 * 60 * 60 * 1000;

/** References of a stored manifest: blobs and child manifests, plus its subject. */
async function referencesOf(storage: RegistryStorage, repo: string, digest: string): Promise<{ refs: string[]; children: string[]; subject?: string }> {
  const record = await storage.getManifest(repo, digest);
  if (!record) return { refs: [], children: [] };
  try {
    const m = parseManifest(record.bytes, record.mediaType);
    const children = m.manifests.map((d) => d.digest);
    return { refs: [...m.blobs.map((d) => d.digest), ...children], children, ...(m.subject ? { subject: m.subject.digest } : {}) };
  } catch {
    return { refs: [], children: [] };
  }
}

/** Manifests of `repo` reachable from its tags (children of indexes and referrers included). */
async function reachable(storage: RegistryStorage, repo: string, all: string[]): Promise<Set<string>> {
  const keep = new Set<string>();
  const queue: string[] = [];
  for (const tag of await storage.listTags(repo)) {
    const d = await storage.resolveTag(repo, tag);
    if (d) queue.push(d);
  }
  const info = new Map<string, Awaited<ReturnType<typeof referencesOf>>>();
  for (const d of all) info.set(d, await referencesOf(storage, repo, d));
  for (;;) {
    while (queue.length > 0) {
      const d = queue.pop() as string;
      if (keep.has(d)) continue;
      keep.add(d);
      queue.push(...(info.get(d)?.children ?? []));
    }
    // Referrers (signatures, SBOMs) of kept manifests are kept too.
    for (const d of all) {
      const subject = info.get(d)?.subject;
      if (!keep.has(d) && subject && keep.has(subject)) queue.push(d);
    }
    if (queue.length === 0) return keep;
  }
}

export async function collectGarbage(root: string, options: GcOptions = {}): Promise<GcReport> {
  const storage = new RegistryStorage(root);
  try {
    await fs.access(path.join(root, 'blobs', 'sha256'));
  } catch (e) {
    throw new NotFoundError(`Not a registry root: ${root}: no blobs directory`, { cause: e });
  }
  const dryRun = options.dryRun ?? false;
  const report: GcReport = { dryRun, manifestsRemoved: [], blobsRemoved: [], uploadsRemoved: [], bytesReclaimed: 0 };
  const marked = new Set<string>();
  const repos = await storage.listRepositories();

  for (const repo of repos) {
    let manifests = await storage.listManifests(repo);
    if (options.deleteUntagged) {
      const keep = await reachable(storage, repo, manifests);
      for (const d of manifests.filter((m) => !keep.has(m))) {
        report.manifestsRemoved.push({ repository: repo, digest: d });
        if (!dryRun) await storage.deleteManifest(repo, d);
      }
      manifests = manifests.filter((m) => keep.has(m));
    }
    for (const d of manifests) {
      marked.add(d);
      for (const r of (await referencesOf(storage, repo, d)).refs) marked.add(r);
    }
  }

  for (const digest of (await storage.listBlobs()).sort()) {
    if (marked.has(digest)) continue;
    const size = (await storage.blobSize(digest)) ?? 0;
    report.blobsRemoved.push({ digest, size });
    report.bytesReclaimed += size;
    if (!dryRun) await storage.removeBlob(digest);
  }
  if (!dryRun) {
    for (const repo of repos) {
      for (const d of await storage.listBlobLinks(repo)) {
        if (!marked.has(d)) await storage.unlinkBlob(repo, d);
      }
    }
  }

  const cutoff = Date.now() - (options.uploadMaxAgeMs ?? DEFAULT_UPLOAD_MAX_AGE_MS);
  const uploads = new UploadManager(storage);
  for (const u of await uploads.list()) {
    if (u.startedAt.getTime() > cutoff) continue;
    report.uploadsRemoved.push({ uuid: u.uuid, size: u.size });
    report.bytesReclaimed += u.size;
    if (!dryRun) await uploads.remove(u.uuid);
  }
  const tmpDir = path.join(root, 'tmp');
  for (const f of await fs.readdir(tmpDir).catch(() => [] as string[])) {
    const st = await fs.stat(path.join(tmpDir, f)).catch(() => undefined);
    if (!st || st.mtimeMs > cutoff) continue;
    report.bytesReclaimed += st.size;
    if (!dryRun) await fs.rm(path.join(tmpDir, f), { force: true, recursive: true });
  }
  return report;
}
