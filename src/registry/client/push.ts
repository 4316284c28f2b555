/**
 * `push`: local image → registry, with exact bytes.
 *
 * The image's stored manifest is sent byte for byte, so the registry's
 * digest equals ours (checked). Each blob (config, then layers) is first
 * HEADed in the target repository and skipped when present; else mounted
 * from another repository of the same registry that we know holds it (the
 * blob_sources table: where blobs were pulled from or pushed to); else
 * uploaded, monolithic when small and in chunks when big.
 */
import { promises as fs } from 'node:fs';
import { InvalidArgumentError, NotFoundError } from '../../core/errors.js';
import type { ImageStore } from '../../image/image-store.js';
import type { Credentials } from './auth.js';
import { isInsecureRegistry, resolveRemote } from './endpoint.js';
import { parseManifest, type RemoteDescriptor } from './manifest.js';
import { shortDigest, throttled, type Progress } from './progress.js';
import { RegistryClient } from './registry-client.js';

export interface PushOptions {
  credentials: Credentials | null;
  insecure?: boolean;
  insecureRegistries?: readonly string[];
  progress?: Progress;
}

export interface PushResult {
  tag: string;
  digest: string;
  size: number;
  /** `repo@sha256:...` */
  repoDigest: string;
}

export async function pushImage(store: ImageStore, reference: string, options: PushOptions): Promise<PushResult> {
  const remote = resolveRemote(reference);
  if (remote.digest) throw new InvalidArgumentError(`Cannot push a digest reference: ${reference}`);
  const tag = remote.tag ?? 'latest';
  const local = `${remote.localRepo}:${tag}`;
  const image = store.tryResolve(local);
  if (!image) throw new NotFoundError(`An image does not exist locally with the tag: ${local}`);
  const progress = options.progress ?? (() => {});
  const manifestBytes = await store.content.readBytes(image.manifestDigest);
  const manifest = parseManifest(manifestBytes);
  if (manifest.kind !== 'image') throw new InvalidArgumentError(`Image ${local} has an index as its manifest, which cannot be pushed`);
  const client = new RegistryClient(remote.host, {
    insecure: options.insecure === true || isInsecureRegistry(remote.host, options.insecureRegistries),
    credentials: options.credentials,
  });
  try {
    progress({ status: `The push refers to repository [${remote.localRepo}]` });
    // Docker lists the top layer first.
    const layers = [...manifest.layers].reverse();
    for (const l of layers) progress({ status: 'Preparing', id: shortDigest(l.digest), progressDetail: {} });
    for (const l of layers) await pushBlob(store, client, remote.repo, l, progress, true);
    await pushBlob(store, client, remote.repo, manifest.config, progress, false);
    const digest = await client.putManifest(remote.repo, tag, manifestBytes, manifest.mediaType);
    if (digest !== image.manifestDigest) {
      throw new InvalidArgumentError(`Manifest of ${local} changed while pushing: ${digest} is not ${image.manifestDigest}`);
    }
    const repoDigest = `${remote.localRepo}@${digest}`;
    store.addRepoDigest(image.id, repoDigest);
    progress({ status: `${tag}: digest: ${digest} size: ${manifestBytes.length}` });
    progress({ progressDetail: {}, aux: { Tag: tag, Digest: digest, Size: manifestBytes.length } });
    return { tag, digest, size: manifestBytes.length, repoDigest };
  } finally {
    client.close();
  }
}

async function pushBlob(
  store: ImageStore,
  client: RegistryClient,
  repo: string,
  d: RemoteDescriptor,
  progress: Progress,
  visible: boolean,
): Promise<void> {
  const id = shortDigest(d.digest);
  const say = (status: string, detail?: { current: number; total: number }) => {
    if (visible) progress({ status, id, progressDetail: detail ?? {} });
  };
  if ((await client.headBlob(repo, d.digest)) !== null) {
    say('Layer already exists');
    store.recordBlobSource(d.digest, client.host, repo);
    return;
  }
  for (const from of store.blobSources(d.digest, client.host)) {
    if (from === repo) continue;
    if (await client.mountBlob(repo, d.digest, from)) {
      say(`Mounted from ${from}`);
      store.recordBlobSource(d.digest, client.host, repo);
      return;
    }
  }
  const file = store.content.blobPath(d.digest);
  const st = await fs.stat(file).catch(() => null);
  if (!st) throw new NotFoundError(`Blob ${d.digest} is not stored locally, so it cannot be pushed`);
  if (st.size !== d.size) throw new InvalidArgumentError(`Local blob ${d.digest} has ${st.size} bytes, the manifest says ${d.size}`);
  const report = throttled(d.size, (current) => say('Pushing', { current, total: d.size }));
  await client.uploadBlob(repo, { digest: d.digest, size: d.size, file }, report);
  say('Pushed');
  store.recordBlobSource(d.digest, client.host, repo);
}
