/**
 * Image references: `[host[:port]/]path[:tag][@sha256:hex]`, Docker's grammar.
 *
 * Vessel keeps names as the user wrote them (no `docker.io/library/` prefix):
 * `busybox` and `busybox:latest` are the same tag, `localhost:5000/app:v1` is
 * another. A bare 12..64 hex string or `sha256:...` may name an image by ID;
 * that is resolved by the image store, not here.
 */
import { InvalidArgumentError } from '../core/errors.js';

export interface Reference {
  /** Repository, e.g. `busybox` or `127.0.0.1:5000/team/app`. */
  repo: string;
  tag: string | null;
  digest: string | null;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

export function parseReference(input: string): Reference {
  const bad = () => new InvalidArgumentError(`Invalid reference format: ${JSON.stringify(input)}`);
  if (!input || input.length > 255 || /\s/.test(input)) throw bad();
  let rest = input;
  let digest: string | null = null;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad();
  }
  let tag: string | null = null;
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad();
  }
  const parts = rest.split('/');
  if (parts.length === 0 || rest === '') throw bad();
  const first = parts[0] ?? '';
  const hasHost = parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (hasHost && !HOST.test(first)) throw bad();
  for (const p of hasHost ? parts.slice(1) : parts) if (!COMPONENT.test(p)) throw bad();
  return { repo: rest, tag, digest };
}

/** `repo:tag` with the default tag filled in; digests are not part of tag names. */
export function normalizeTag(input: string): string {
  const ref = parseReference(input);
  if (ref.digest && !ref.tag) throw new InvalidArgumentError(`A tag is needed, not a digest: ${input}`);
  return `${ref.repo}:${ref.tag ?? 'latest'}`;
}

export function splitTag(name: string): { repo: string; tag: string } {
  const i = name.lastIndexOf(':');
  const slash = name.lastIndexOf('/');
  if (i <= slash) return { repo: name, tag: 'latest' };
  return { repo: name.slice(0, i), tag: name.slice(i + 1) };
}
