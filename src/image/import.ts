/**
 * `vessel image import`: a root filesystem tarball becomes a one-layer image
 * (Docker's `docker import`).
 */
import type { Readable } from 'node:stream';
import type { ImageRecord, ImageStore, ProgressFn } from './image-store.js';
import { checkTagName } from './image-store.js';
import { DEFAULT_PATH, type ImageConfig, type ImageRunConfig } from './oci.js';

export interface ImportOptions {
  tag: string | null;
  config?: ImageRunConfig;
  createdBy?: string;
  comment?: string;
  progress?: ProgressFn;
}

export async function importRootfs(store: ImageStore, input: Readable, options: ImportOptions): Promise<ImageRecord> {
  const tag = options.tag ? checkTagName(options.tag) : null;
  options.progress?.({ status: 'Importing layer' });
  const layer = await store.addLayer(input, null, options.progress);
  const now = new Date().toISOString();
  const config: ImageConfig = {
    created: now,
    architecture: 'amd64',
    os: 'linux',
    config: { Env: [`PATH=${DEFAULT_PATH}`], ...options.config },
    rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    history: [{ created: now, created_by: options.createdBy ?? 'vessel image import', comment: options.comment ?? 'Imported from tarball' }],
  };
  return store.commitImage(config, [layer], tag ? [tag] : []);
}
