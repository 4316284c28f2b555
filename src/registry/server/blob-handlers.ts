/**
 * Blob endpoints: GET/HEAD/DELETE `/v2/<name>/blobs/<digest>` and the upload
 * protocol under `/v2/<name>/blobs/uploads/` (POST to start, monolithic or
 * mount; PATCH chunks or streams; PUT to finish; GET status; DELETE cancel).
 */
import { repoPath, type RequestContext } from './context.js';
import { RegistryError } from './errors.js';
import { hasBody, send } from './http.js';
import { checkDigest, isName } from './names.js';
import { parseContentRange, rangeHeader, writeVerifiedBlob, type UploadSession } from './uploads.js';

function blobUnknown(digest: string): RegistryError {
  return new RegistryError('BLOB_UNKNOWN', `Blob unknown to registry: ${digest}`, { detail: { digest } });
}

/** Parses `Range: bytes=a-b` against `size`; undefined for "whole blob". */
function parseRange(header: string | undefined, size: number): { start: number; end: number } | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start > end || start >= size) {
    throw new RegistryError('RANGE_INVALID', `Range not satisfiable: ${header}`, { status: 416, headers: { 'Content-Range': `bytes */${size}` } });
  }
  return { start, end };
}

export async function getBlob(ctx: RequestContext, name: string, rawDigest: string): Promise<void> {
  const digest = checkDigest(rawDigest);
  const size = await ctx.storage.repoBlobSize(name, digest);
  if (size === undefined) throw blobUnknown(digest);
  const base = { 'Docker-Content-Digest': digest, 'Content-Type': 'application/octet-stream', 'Accept-Ranges': 'bytes', ETag: `"${digest}"` };
  const range = parseRange(ctx.req.headers.range, size);
  const { res } = ctx;
  if (ctx.req.method === 'HEAD') {
    send(res, 200, { ...base, 'Content-Length': size });
    return;
  }
  if (range) {
    res.writeHead(206, { ...base, 'Content-Length': range.end - range.start + 1, 'Content-Range': `bytes ${range.start}-${range.end}/${size}` });
  } else {
    res.writeHead(200, { ...base, 'Content-Length': size });
  }
  const stream = ctx.storage.openBlob(digest, range);
  await new Promise<void>((resolve) => {
    stream.on('error', () => {
      res.destroy();
      resolve();
    });
    res.on('close', () => {
      stream.destroy();
      resolve();
    });
    stream.pipe(res);
  });
}

export async function deleteBlob(ctx: RequestContext, name: string, rawDigest: string): Promise<void> {
  const digest = checkDigest(rawDigest);
  if (!(await ctx.storage.unlinkBlob(name, digest))) throw blobUnknown(digest);
  send(ctx.res, 202, { 'Docker-Content-Digest': digest });
}

function uploadHeaders(name: string, session: UploadSession | { uuid: string; size: number }): Record<string, string> {
  return {
    Location: repoPath(name, `blobs/uploads/${session.uuid}`),
    Range: rangeHeader(session.size),
    'Docker-Upload-UUID': session.uuid,
  };
}

function created(ctx: RequestContext, name: string, digest: string): void {
  send(ctx.res, 201, { Location: repoPath(name, `blobs/${digest}`), 'Docker-Content-Digest': digest });
}

/** POST `/v2/<name>/blobs/uploads/`: start, mount (`?mount=&from=`) or monolithic (`?digest=`). */
export async function startUpload(ctx: RequestContext, name: string): Promise<void> {
  const q = ctx.url.searchParams;
  const mount = q.get('mount');
  const from = q.get('from');
  if (mount !== null) {
    const digest = checkDigest(mount);
    if (from !== null && isName(from) && (await ctx.storage.repoBlobSize(from, digest)) !== undefined) {
      await ctx.storage.linkBlob(name, digest);
      created(ctx, name, digest);
      return;
    }
    // Not mountable: fall through to an ordinary upload session (202).
  } else if (q.get('digest') !== null) {
    const digest = checkDigest(q.get('digest') as string);
    if (hasBody(ctx.req)) {
      await writeVerifiedBlob(ctx.storage, ctx.req, digest);
      await ctx.storage.linkBlob(name, digest);
      created(ctx, name, digest);
      return;
    }
    // No body: the client will continue with PATCH/PUT on the session.
  }
  const session = await ctx.uploads.create(name);
  send(ctx.res, 202, uploadHeaders(name, session));
}

export async function uploadStatus(ctx: RequestContext, name: string, uuid: string): Promise<void> {
  const session = await ctx.uploads.get(name, uuid);
  send(ctx.res, 204, uploadHeaders(name, session));
}

/** PATCH: a chunk with Content-Range, or (without it) a streamed append. */
export async function patchUpload(ctx: RequestContext, name: string, uuid: string): Promise<void> {
  const header = ctx.req.headers['content-range'];
  const range = header ? parseContentRange(header) : undefined;
  const size = await ctx.uploads.append(name, uuid, ctx.req, range);
  send(ctx.res, 202, uploadHeaders(name, { uuid, size }));
}

/** PUT `?digest=`: optional last chunk, then verify and commit. */
export async function finishUpload(ctx: RequestContext, name: string, uuid: string): Promise<void> {
  const raw = ctx.url.searchParams.get('digest');
  if (raw === null) throw new RegistryError('DIGEST_INVALID', 'Missing digest query parameter');
  const digest = checkDigest(raw);
  const header = ctx.req.headers['content-range'];
  const range = header ? parseContentRange(header) : undefined;
  await ctx.uploads.complete(name, uuid, digest, hasBody(ctx.req) ? ctx.req : undefined, range);
  created(ctx, name, digest);
}

export async function cancelUpload(ctx: RequestContext, name: string, uuid: string): Promise<void> {
  await ctx.uploads.cancel(name, uuid);
  send(ctx.res, 204);
}
