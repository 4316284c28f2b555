/**
 * Manifest endpoints (GET/HEAD/PUT/DELETE `/v2/<name>/manifests/<ref>`),
 * tag listing, the catalog and the referrers API.
 *
 * DELETE by digest removes the manifest from the repository together with
 * every tag pointing at it; DELETE by tag only removes the tag (the
 * manifest stays reachable by digest until garbage collection with
 * `--delete-untagged`).
 */
import { repoPath, type RequestContext } from './context.js';
import { RegistryError } from './errors.js';
import { paginate, readBody, send, sendJson } from './http.js';
import { MANIFEST_TYPES, MAX_MANIFEST_BYTES, parseManifest, type DescriptorRef } from './manifest.js';
import { checkDigest, checkReference, isDigest } from './names.js';
import { sha256Of } from './storage.js';

function manifestUnknown(ref: string, status?: number): RegistryError {
  return new RegistryError('MANIFEST_UNKNOWN', `Manifest unknown: ${ref}`, { detail: { reference: ref }, ...(status ? { status } : {}) });
}

async function resolve(ctx: RequestContext, name: string, reference: string): Promise<string> {
  const ref = checkReference(reference);
  if (ref.digest) return ref.digest;
  const digest = await ctx.storage.resolveTag(name, ref.tag as string);
  if (!digest) throw manifestUnknown(reference);
  return digest;
}

export async function getManifest(ctx: RequestContext, name: string, reference: string): Promise<void> {
  const digest = await resolve(ctx, name, reference);
  const record = await ctx.storage.getManifest(name, digest);
  if (!record) throw manifestUnknown(reference);
  send(
    ctx.res,
    200,
    { 'Content-Type': record.mediaType, 'Docker-Content-Digest': digest, ETag: `"${digest}"`, 'Content-Length': record.bytes.length },
    record.bytes,
  );
}

export async function putManifest(ctx: RequestContext, name: string, reference: string): Promise<void> {
  const ref = checkReference(reference);
  const bytes = await readBody(ctx.req, MAX_MANIFEST_BYTES);
  const parsed = parseManifest(bytes, ctx.req.headers['content-type']);
  const digest = sha256Of(bytes);
  if (ref.digest && ref.digest !== digest) {
    throw new RegistryError('DIGEST_INVALID', `Digest mismatch: the manifest's digest is ${digest}, not ${ref.digest}`, {
      detail: { expected: ref.digest, actual: digest },
    });
  }
  for (const blob of parsed.blobs) {
    if ((await ctx.storage.repoBlobSize(name, blob.digest)) === undefined) {
      throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `Manifest references a blob unknown to the repository: ${blob.digest}`, {
        detail: { digest: blob.digest },
      });
    }
  }
  for (const child of parsed.manifests) {
    if (!(await ctx.storage.hasManifest(name, child.digest))) throw manifestUnknown(child.digest, 400);
  }
  await ctx.storage.putManifest(name, bytes, parsed.mediaType);
  if (ref.tag) await ctx.storage.tag(name, ref.tag, digest);
  const headers: Record<string, string> = { Location: repoPath(name, `manifests/${digest}`), 'Docker-Content-Digest': digest };
  if (parsed.subject) headers['OCI-Subject'] = parsed.subject.digest;
  send(ctx.res, 201, headers);
}

export async function deleteManifest(ctx: RequestContext, name: string, reference: string): Promise<void> {
  const ref = checkReference(reference);
  const ok = ref.digest ? await ctx.storage.deleteManifest(name, ref.digest) : await ctx.storage.deleteTag(name, ref.tag as string);
  if (!ok) throw manifestUnknown(reference);
  send(ctx.res, 202);
}

export async function listTags(ctx: RequestContext, name: string): Promise<void> {
  if (!(await ctx.storage.hasRepository(name))) {
    throw new RegistryError('NAME_UNKNOWN', `Repository name not known to registry: ${name}`, { detail: { name } });
  }
  const { items, link } = paginate(await ctx.storage.listTags(name), ctx.url);
  sendJson(ctx.res, 200, { name, tags: items }, link ? { Link: link } : {});
}

export async function catalog(ctx: RequestContext): Promise<void> {
  const { items, link } = paginate(await ctx.storage.listRepositories(), ctx.url);
  sendJson(ctx.res, 200, { repositories: items }, link ? { Link: link } : {});
}

/** GET `/v2/<name>/referrers/<digest>[?artifactType=]`: an index of manifests whose subject is `digest`. */
export async function referrers(ctx: RequestContext, name: string, rawDigest: string): Promise<void> {
  const subject = checkDigest(rawDigest);
  const filter = ctx.url.searchParams.get('artifactType');
  const found: DescriptorRef[] = [];
  for (const digest of (await ctx.storage.listManifests(name)).sort()) {
    if (!isDigest(digest)) continue;
    const record = await ctx.storage.getManifest(name, digest);
    if (!record) continue;
    let parsed;
    try {
      parsed = parseManifest(record.bytes, record.mediaType);
    } catch {
      continue;
    }
    if (parsed.subject?.digest !== subject) continue;
    const artifactType = parsed.artifactType ?? parsed.configMediaType;
    if (filter !== null && artifactType !== filter) continue;
    const d: DescriptorRef = { mediaType: record.mediaType, digest, size: record.bytes.length };
    if (artifactType) d.artifactType = artifactType;
    if (parsed.annotations) d.annotations = parsed.annotations;
    found.push(d);
  }
  const index = { schemaVersion: 2, mediaType: MANIFEST_TYPES.ociIndex, manifests: found };
  const headers: Record<string, string> = { 'Content-Type': MANIFEST_TYPES.ociIndex };
  if (filter !== null) headers['OCI-Filters-Applied'] = 'artifactType';
  send(ctx.res, 200, headers, JSON.stringify(index));
}
