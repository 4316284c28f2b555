/**
 * Validation of repository names, tags and digests with the regular
 * expressions of distribution-spec v1.1 ("Pulling manifests").
 */
import { RegistryError } from './errors.js';

const NAME = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
/** Any algorithm the spec's grammar allows, to tell "malformed" from "unsupported". */
const ANY_DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** Longest repository name accepted (distribution's limit). */
export const MAX_NAME_LENGTH = 255;

export function isName(name: string): boolean {
  return name.length <= MAX_NAME_LENGTH && NAME.test(name);
}

export function isTag(ref: string): boolean {
  return TAG.test(ref);
}

export function isDigest(ref: string): boolean {
  return DIGEST.test(ref);
}

export function checkName(name: string): string {
  if (!isName(name)) throw new RegistryError('NAME_INVALID', `Invalid repository name: ${name}`, { detail: { name } });
  return name;
}

/** A digest the server can use; anything else is DIGEST_INVALID (only sha256 is supported). */
export function checkDigest(digest: string): string {
  if (isDigest(digest)) return digest;
  const why = ANY_DIGEST.test(digest) ? 'unsupported digest algorithm' : 'malformed digest';
  throw new RegistryError('DIGEST_INVALID', `Invalid digest: ${digest}: ${why}`, { detail: { digest } });
}

/** A manifest reference: a tag or a digest. */
export function checkReference(ref: string): { tag?: string; digest?: string } {
  if (isTag(ref)) return { tag: ref };
  if (ref.includes(':')) return { digest: checkDigest(ref) };
  throw new RegistryError('MANIFEST_INVALID', `Invalid tag: ${ref}`, { detail: { tag: ref } });
}
