/** Names, media types and limits shared by image archive save and load (see archive.ts). */
import { InvalidArgumentError } from '../core/errors.js';
import { MEDIA_TYPE } from './oci.js';
import { normalizeTag, parseReference } from './reference.js';

export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';
export const ANNOTATION_IMAGE_NAME = 'io.containerd.image.name';

export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
export const MANIFEST_TYPES = new Set<string>([MEDIA_TYPE.manifest, DOCKER_MANIFEST]);
export const INDEX_TYPES = new Set<string>([MEDIA_TYPE.index, DOCKER_MANIFEST_LIST]);
export const CONFIG_TYPES = new Set<string>([MEDIA_TYPE.config, DOCKER_CONFIG]);
/** JSON documents (index, manifests, configs) are read into memory; layers never are. */
export const MAX_JSON_BYTES = 32 * 1024 * 1024;
export const SHA256 = /^sha256:[a-f0-9]{64}$/;

/** One-line message for a malformed archive. */
export function invalid(detail: string): InvalidArgumentError {
  return new InvalidArgumentError(`Invalid image archive: ${detail}`);
}

// ---------------------------------------------------------------------------
// Names

/** `busybox:latest` → `docker.io/library/busybox:latest`, as containerd names images. */
export function qualifiedName(name: string): string {
  const { repo } = parseReference(name);
  const first = repo.split('/')[0] ?? '';
  const hasHost = repo.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (hasHost) return name;
  return repo.includes('/') ? `docker.io/${name}` : `docker.io/library/${name}`;
}

/** The Vessel (familiar) form of a name found in an archive: `docker.io/library/x:t` → `x:t`. */
export function familiarName(name: string): string {
  let n = name;
  if (n.startsWith('docker.io/library/')) n = n.slice('docker.io/library/'.length);
  else if (n.startsWith('docker.io/')) n = n.slice('docker.io/'.length);
  else if (n.startsWith('index.docker.io/library/')) n = n.slice('index.docker.io/library/'.length);
  try {
    return normalizeTag(n);
  } catch {
    throw invalid(`bad image name ${JSON.stringify(name)}`);
  }
}

/** The platform Vessel runs images for (OCI architecture names). */
export function hostPlatform(): { os: string; architecture: string } {
  const arch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return { os: 'linux', architecture: arch[process.arch] ?? process.arch };
}
