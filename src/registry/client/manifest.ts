/**
 * Manifests as registries serve them: OCI image manifest and index, Docker
 * schema2 manifest and manifest list. Parsing validates just what pulling
 * relies on, and keeps the exact bytes (their digest is the manifest's
 * identity). Pure; no I/O.
 */
import { createHash } from 'node:crypto';
import { InvalidArgumentError } from '../../core/errors.js';

export const MT = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

/** Every manifest type we can pull, for the `Accept` header. */
export const MANIFEST_ACCEPT = [MT.ociManifest, MT.ociIndex, MT.dockerManifest, MT.dockerList];

export interface RemoteDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
}

export type ParsedManifest =
  | { kind: 'image'; mediaType: string; config: RemoteDescriptor; layers: RemoteDescriptor[] }
  | { kind: 'index'; mediaType: string; manifests: RemoteDescriptor[] };

export function sha256Of(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;

function descriptor(v: unknown, what: string): RemoteDescriptor {
  const d = v as Partial<RemoteDescriptor> | null;
  if (!d || typeof d !== 'object') throw new InvalidArgumentError(`Invalid manifest: ${what} is not a descriptor`);
  if (typeof d.digest !== 'string' || !DIGEST.test(d.digest)) {
    throw new InvalidArgumentError(`Invalid manifest: ${what} has an unsupported digest ${JSON.stringify(d.digest)}`);
  }
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw new InvalidArgumentError(`Invalid manifest: ${what} has an invalid size`);
  }
  const out: RemoteDescriptor = { mediaType: typeof d.mediaType === 'string' ? d.mediaType : '', digest: d.digest, size: d.size };
  const p = d.platform;
  if (p && typeof p === 'object' && typeof p.os === 'string' && typeof p.architecture === 'string') {
    out.platform = { os: p.os, architecture: p.architecture, ...(typeof p.variant === 'string' ? { variant: p.variant } : {}) };
  }
  return out;
}

/**
 * Parses manifest bytes. `contentType` (the response's) decides the kind
 * when the document has no `mediaType` (umoci and skopeo omit it in OCI manifests).
 */
export function parseManifest(bytes: Buffer, contentType?: string): ParsedManifest {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new InvalidArgumentError('Invalid manifest: not JSON');
  }
  if (!doc || typeof doc !== 'object') throw new InvalidArgumentError('Invalid manifest: not an object');
  if (doc.schemaVersion !== 2) {
    throw new InvalidArgumentError(`Unsupported manifest schema version ${JSON.stringify(doc.schemaVersion)} (only schema 2)`);
  }
  const ct = (contentType ?? '').split(';')[0]?.trim() ?? '';
  const mediaType = typeof doc.mediaType === 'string' && doc.mediaType ? doc.mediaType : ct;
  const isIndex = mediaType === MT.ociIndex || mediaType === MT.dockerList || (!mediaType && Array.isArray(doc.manifests));
  if (isIndex) {
    if (!Array.isArray(doc.manifests)) throw new InvalidArgumentError('Invalid manifest: index without manifests');
    return {
      kind: 'index',
      mediaType: mediaType || MT.ociIndex,
      manifests: doc.manifests.map((m, i) => descriptor(m, `manifests[${i}]`)),
    };
  }
  if (mediaType && mediaType !== MT.ociManifest && mediaType !== MT.dockerManifest) {
    throw new InvalidArgumentError(`Unsupported manifest media type: ${mediaType}`);
  }
  if (!Array.isArray(doc.layers)) throw new InvalidArgumentError('Invalid manifest: no layers');
  const config = descriptor(doc.config, 'config');
  const layers = doc.layers.map((l, i) => descriptor(l, `layers[${i}]`));
  for (const l of layers) {
    if (!isLayerType(l.mediaType)) throw new InvalidArgumentError(`Unsupported layer media type: ${l.mediaType || '(none)'}`);
  }
  return { kind: 'image', mediaType: mediaType || MT.ociManifest, config, layers };
}

export function isLayerType(mt: string): boolean {
  return (
    mt === MT.ociLayer ||
    mt === MT.ociLayerGzip ||
    mt === MT.ociLayerZstd ||
    mt === MT.dockerLayerGzip ||
    mt === 'application/vnd.docker.image.rootfs.diff.tar' ||
    mt === 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip'
  );
}

/** The OCI layer media type we record for a pulled layer (Docker's map onto OCI's). */
export function localLayerType(mt: string): string {
  if (mt === MT.ociLayerZstd) return MT.ociLayerZstd;
  if (mt === MT.ociLayer || mt === 'application/vnd.docker.image.rootfs.diff.tar') return MT.ociLayer;
  return MT.ociLayerGzip;
}

/** Checks an image config just enough to trust its diff IDs. */
export function parseConfig(bytes: Buffer, layerCount: number): { os: string; architecture: string; diffIds: string[] } {
  let doc: { os?: unknown; architecture?: unknown; rootfs?: { diff_ids?: unknown } };
  try {
    doc = JSON.parse(bytes.toString('utf8')) as typeof doc;
  } catch {
    throw new InvalidArgumentError('Invalid image config: not JSON');
  }
  const ids = doc?.rootfs?.diff_ids;
  if (!Array.isArray(ids) || !ids.every((d) => typeof d === 'string' && DIGEST.test(d))) {
    throw new InvalidArgumentError('Invalid image config: rootfs.diff_ids missing or not sha256 digests');
  }
  if (ids.length !== layerCount) {
    throw new InvalidArgumentError(`Invalid image: the config lists ${ids.length} layers, the manifest ${layerCount}`);
  }
  return { os: String(doc.os ?? ''), architecture: String(doc.architecture ?? ''), diffIds: ids as string[] };
}
