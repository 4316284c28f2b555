/**
 * `pull`: registry → content store → image record, atomically; snapshots follow.
 *
 * Order: manifest (an index is resolved to the wanted platform), config
 * blob (digest and size checked), then each layer not already present as a
 * chain: blob streamed into the content store (digest and size checked
 * while writing), with an unpack following it (pull-layer.ts). When every
 * blob is stored, `commitPulled` records the image in one transaction and
 * the pull is done; the unpacks go on in the daemon (the image store's
 * LayerUnpacker owns them, checks diff IDs, and is awaited by whatever needs
 * the files: `ensureUnpacked`). Any failure before the commit aborts the
 * unpacks and removes the blobs this pull added, so the store is as before.
 */
import { InvalidArgumentError, UnavailableError } from '../../core/errors.js';
import { log } from '../../core/log.js';
import { chainIdOf, type FetchedLayer, type ImageRecord, type ImageStore, type PulledImage } from '../../image/image-store.js';
import type { Credentials } from './auth.js';
import { isInsecureRegistry, resolveRemote } from './endpoint.js';
import { parseConfig, parseManifest, sha256Of, type RemoteDescriptor } from './manifest.js';
import { selectManifest, type Platform } from './platform.js';
import { shortDigest, type Progress } from './progress.js';
import { pullLayer } from './pull-layer.js';
import { RegistryClient } from './registry-client.js';
import { readBody } from './transport.js';

export interface PullOptions {
  platform: Platform;
  credentials: Credentials | null;
  /** The CLI's `--insecure`: plain HTTP allowed for this pull. */
  insecure?: boolean;
  /** The daemon's `--insecure-registry` entries. */
  insecureRegistries?: readonly string[];
  progress?: Progress;
  /** Aborts the pull (the API client went away); everything staged is removed. */
  signal?: AbortSignal;
}

export interface PullResult {
  image: ImageRecord;
  /** Digest of what the reference points to (an index or a manifest). */
  digest: string;
  /** The local name: `repo:tag` or `repo@digest`. */
  name: string;
  upToDate: boolean;
}

export async function pullImage(store: ImageStore, reference: string, options: PullOptions): Promise<PullResult> {
  const remote = resolveRemote(reference);
  const ref = remote.digest ?? remote.tag ?? 'latest';
  const name = remote.digest ? `${remote.localRepo}@${remote.digest}` : `${remote.localRepo}:${ref}`;
  const progress = options.progress ?? (() => {});
  const client = new RegistryClient(remote.host, {
    insecure: options.insecure === true || isInsecureRegistry(remote.host, options.insecureRegistries),
    credentials: options.credentials,
  });
  try {
    progress({ status: `Pulling from ${remote.repo}`, id: remote.digest ? shortDigest(remote.digest) : ref });
    const top = await client.getManifest(remote.repo, ref);
    let manifest = top;
    let parsed = parseManifest(top.bytes, top.contentType);
    if (parsed.kind === 'index') {
      const entry = selectManifest(parsed.manifests, options.platform);
      manifest = await client.getManifest(remote.repo, entry.digest);
      if (manifest.bytes.length !== entry.size) {
        throw new InvalidArgumentError(`Manifest ${entry.digest} has ${manifest.bytes.length} bytes, the index says ${entry.size}`);
      }
      parsed = parseManifest(manifest.bytes, manifest.contentType);
      if (parsed.kind !== 'image') throw new InvalidArgumentError(`Manifest ${entry.digest} is a nested index, which is not supported`);
    }
    const repoDigest = `${remote.localRepo}@${top.digest}`;
    // Pulled (or pushed) before as this very manifest: the local config has the exact bytes.
    const seen = store.tryResolve(repoDigest);
    const configBytes =
      seen && seen.manifestDigest === manifest.digest && seen.id === parsed.config.digest
        ? await store.content.readBytes(seen.id)
        : await fetchSmallBlob(client, remote.repo, parsed.config);
    const config = parseConfig(configBytes, parsed.layers.length);
    const imageId = sha256Of(configBytes);
    const tags = remote.digest ? [] : [name];

    const existing = store.tryResolve(imageId);
    if (existing) {
      const upToDate = remote.digest ? existing.repoDigests.includes(repoDigest) : existing.tags.includes(name);
      const image = await store.commitPulled({ configBytes, manifestBytes: manifest.bytes, layers: [], tags, repoDigests: [repoDigest] });
      progress({ status: `Digest: ${top.digest}` });
      return { image, digest: top.digest, name, upToDate };
    }

    const layers = await fetchLayers(store, client, remote.repo, parsed.layers, config.diffIds, progress, options.signal);
    const pulled: PulledImage = { configBytes, manifestBytes: manifest.bytes, layers: layers.entries, tags, repoDigests: [repoDigest] };
    let image: ImageRecord;
    try {
      options.signal?.throwIfAborted();
      const t0 = performance.now();
      image = await store.commitPulled(pulled);
      log.debug('pull: image recorded', { image: imageId, commitMs: Math.round(performance.now() - t0) });
    } catch (e) {
      await layers.discard();
      throw e;
    }
    for (const d of [parsed.config, ...parsed.layers]) store.recordBlobSource(d.digest, remote.host, remote.repo);
    progress({ status: `Digest: ${top.digest}` });
    return { image, digest: top.digest, name, upToDate: false };
  } finally {
    client.close();
  }
}

async function fetchSmallBlob(client: RegistryClient, repo: string, d: RemoteDescriptor): Promise<Buffer> {
  if (d.size > 8 * 1024 * 1024) throw new InvalidArgumentError(`Image config ${d.digest} is too large (${d.size} bytes)`);
  const res = await client.getBlob(repo, d.digest);
  const bytes = await readBody(res, d.size).catch((e: unknown) => {
    const why = e instanceof Error ? e.message : String(e);
    if (e instanceof InvalidArgumentError) throw new InvalidArgumentError(`Blob ${d.digest} from ${client.host}/${repo} failed verification: ${why}`);
    throw new UnavailableError(`Downloading blob ${d.digest} from ${client.host}/${repo}: ${why}`, { cause: e });
  });
  const got = sha256Of(bytes);
  if (got !== d.digest || bytes.length !== d.size) {
    throw new InvalidArgumentError(`Blob ${d.digest} from ${client.host}/${repo} failed verification: got ${got} (${bytes.length} bytes, expected ${d.size})`);
  }
  return bytes;
}

async function fetchLayers(
  store: ImageStore,
  client: RegistryClient,
  repo: string,
  descs: RemoteDescriptor[],
  diffIds: string[],
  progress: Progress,
  signal: AbortSignal | undefined,
): Promise<{ entries: PulledImage['layers']; discard: () => Promise<void> }> {
  const entries: PulledImage['layers'] = [];
  const fetched: FetchedLayer[] = [];
  const newBlobs: string[] = [];
  const discard = async () => {
    for (const f of fetched) f.unpack?.abort();
    for (const f of fetched) await f.unpack?.result.catch(() => {}); // each removes its directory

    for (const d of newBlobs) await store.removeBlobIfUnreferenced(d);
  };
  try {
    // Which layers are needed: chains already present are reused as they are.
    const plan: Array<{ desc: RemoteDescriptor; diffId: string; chainId: string }> = [];
    let parent: string | null = null;
    for (const [i, desc] of descs.entries()) {
      const diffId = diffIds[i] as string;
      const chainId = chainIdOf(parent, diffId);
      plan.push({ desc, diffId, chainId });
      parent = chainId;
    }
    for (const p of plan) {
      const id = shortDigest(p.desc.digest);
      progress({ status: store.getLayer(p.chainId) ? 'Already exists' : 'Pulling fs layer', id, progressDetail: {} });
    }
    for (const p of plan) {
      signal?.throwIfAborted();
      const have = store.getLayer(p.chainId);
      if (have) {
        entries.push({ existing: have });
        continue;
      }
      const f = await pullLayer(store, client, repo, p.desc, p.diffId, { progress, signal, newBlobs });
      fetched.push(f);
      entries.push({ fetched: f });
      // Downloaded and verified; the layer is unpacked in the background (Docker's final per-layer status).
      progress({ status: 'Pull complete', id: shortDigest(p.desc.digest), progressDetail: {} });
    }
    return { entries, discard };
  } catch (e) {
    await discard();
    throw e;
  }
}
