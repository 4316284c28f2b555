/**
 * Parsing of pushed manifests: which media types are accepted, and which
 * blobs and child manifests a manifest references (for the existence checks
 * on PUT, for garbage collection and for the referrers API).
 */
import { RegistryError } from './errors.js';

export const MANIFEST_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

const IMAGE_TYPES: ReadonlySet<string> = new Set([MANIFEST_TYPES.ociManifest, MANIFEST_TYPES.dockerManifest]);
const INDEX_TYPES: ReadonlySet<string> = new Set([MANIFEST_TYPES.ociIndex, MANIFEST_TYPES.dockerList]);

/** Largest manifest accepted on PUT (the spec asks for at least 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface DescriptorRef {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface ParsedManifest {
  mediaType: string;
  kind: 'image' | 'index';
  /** Config and layers (images) — must exist as blobs in the repository. */
  blobs: DescriptorRef[];
  /** Child manifests (indexes) — must exist as manifests in the repository. */
  manifests: DescriptorRef[];
  subject?: DescriptorRef;
  artifactType?: string;
  annotations?: Record<string, string>;
  /** The config's media type (used as the artifact type in referrers). */
  configMediaType?: string;
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;

function invalid(message: string): RegistryError {
  return new RegistryError('MANIFEST_INVALID', `Invalid manifest: ${message}`);
}

function descriptor(v: unknown, where: string): DescriptorRef {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(`${where} is not a descriptor`);
  const d = v as Record<string, unknown>;
  if (typeof d.mediaType !== 'string' || d.mediaType === '') throw invalid(`${where} has no mediaType`);
  if (typeof d.digest !== 'string' || !DIGEST.test(d.digest)) throw invalid(`${where} has an invalid digest`);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw invalid(`${where} has an invalid size`);
  const out: DescriptorRef = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (typeof d.artifactType === 'string') out.artifactType = d.artifactType;
  if (isStringMap(d.annotations)) out.annotations = d.annotations;
  return out;
}

function isStringMap(v: unknown): v is Record<string, string> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
}

/**
 * Parses manifest bytes. `contentType` is the request's Content-Type (may be
 * absent or generic); the body's `mediaType` wins when present, and must
 * agree with a specific Content-Type. OCI manifests may omit `mediaType`
 * (umoci and skopeo do), in which case it is inferred from the shape.
 */
export function parseManifest(bytes: Buffer, contentType?: string): ParsedManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw invalid('not valid JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw invalid('not a JSON object');
  const m = doc as Record<string, unknown>;
  if (m.schemaVersion !== 2) throw invalid(`unsupported schemaVersion ${JSON.stringify(m.schemaVersion)}`);
  const header = normalizeType(contentType);
  const bodyType = typeof m.mediaType === 'string' ? m.mediaType : undefined;
  if (bodyType && header && bodyType !== header) {
    throw invalid(`mediaType ${bodyType} does not match Content-Type ${header}`);
  }
  const mediaType = bodyType ?? header ?? (Array.isArray(m.manifests) ? MANIFEST_TYPES.ociIndex : MANIFEST_TYPES.ociManifest);
  const out: ParsedManifest = { mediaType, kind: 'image', blobs: [], manifests: [] };
  if (IMAGE_TYPES.has(mediaType)) {
    const config = descriptor(m.config, 'config');
    if (!Array.isArray(m.layers)) throw invalid('layers is not an array');
    out.blobs = [config, ...m.layers.map((l, i) => descriptor(l, `layers[${i}]`))];
    out.configMediaType = config.mediaType;
  } else if (INDEX_TYPES.has(mediaType)) {
    out.kind = 'index';
    if (!Array.isArray(m.manifests)) throw invalid('manifests is not an array');
    out.manifests = m.manifests.map((c, i) => descriptor(c, `manifests[${i}]`));
  } else {
    throw invalid(`unsupported media type ${mediaType}`);
  }
  if (m.subject !== undefined) out.subject = descriptor(m.subject, 'subject');
  if (typeof m.artifactType === 'string') out.artifactType = m.artifactType;
  if (isStringMap(m.annotations)) out.annotations = m.annotations;
  return out;
}

/** A Content-Type without parameters, or undefined when it says nothing specific. */
function normalizeType(contentType: string | undefined): string | undefined {
  const t = contentType?.split(';')[0]?.trim().toLowerCase();
  if (!t || t === 'application/octet-stream' || t === 'application/json') return undefined;
  return t;
}
