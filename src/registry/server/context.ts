/** What every request handler of the registry gets. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RegistryStorage } from './storage.js';
import type { UploadManager } from './uploads.js';

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  storage: RegistryStorage;
  uploads: UploadManager;
}

/** Path of a repository's endpoint, e.g. `/v2/library/busybox/blobs/sha256:…`. */
export function repoPath(name: string, rest: string): string {
  return `/v2/${name}/${rest}`;
}
