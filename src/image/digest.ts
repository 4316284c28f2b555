/**
 * OCI content digests (`sha256:<64 hex>`), the only algorithm Vessel accepts.
 */
import { createHash, type Hash } from 'node:crypto';
import { InvalidArgumentError } from '../core/errors.js';

const SHA256_DIGEST = /^sha256:[a-f0-9]{64}$/;

/** Throws unless `digest` is a well-formed sha256 digest; returns it unchanged. */
export function checkDigest(digest: string): string {
  if (!SHA256_DIGEST.test(digest)) {
    throw new InvalidArgumentError(`Invalid digest: ${JSON.stringify(digest)}`);
  }
  return digest;
}

/** A sha256 that also counts the bytes it has seen, for hashing while streaming. */
export class DigestCounter {
  private readonly hash: Hash = createHash('sha256');
  bytes = 0;

  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.bytes += chunk.byteLength;
  }

  /** The digest so far; call once, at the end of the stream. */
  digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }
}
