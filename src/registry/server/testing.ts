/**
 * Helpers for the registry server's tests: an in-process server on
 * 127.0.0.1:0 over a temporary root, and small push helpers over fetch.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MANIFEST_TYPES } from './manifest.js';
import { RegistryServer, type RegistryServerOptions } from './server.js';

export interface TestRegistry {
  url: string;
  root: string;
  server: RegistryServer;
  close(): Promise<void>;
}

export async function startTestRegistry(options: Omit<RegistryServerOptions, 'root'> = {}): Promise<TestRegistry> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vessel-registry-'));
  const root = path.join(dir, 'root');
  const server = new RegistryServer({ root, ...options });
  const { port } = await server.listen('127.0.0.1:0');
  return {
    url: `http://127.0.0.1:${port}`,
    root,
    server,
    async close() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function digestOf(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** The spec's error code of a failed response. */
export async function errorCode(res: Response): Promise<string> {
  const body = (await res.json()) as { errors: Array<{ code: string }> };
  return body.errors[0]?.code ?? '';
}

/** Uploads a blob with POST + PUT (monolithic via a session); returns its digest. */
export async function pushBlob(url: string, name: string, data: Buffer | string): Promise<string> {
  const digest = digestOf(data);
  const start = await fetch(`${url}/v2/${name}/blobs/uploads/`, { method: 'POST' });
  if (start.status !== 202) throw new Error(`POST upload: ${start.status}`);
  const location = new URL(start.headers.get('location') as string, url);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, { method: 'PUT', body: typeof data === 'string' ? data : new Uint8Array(data), headers: { 'Content-Type': 'application/octet-stream' } });
  if (put.status !== 201) throw new Error(`PUT upload: ${put.status} ${await put.text()}`);
  return digest;
}

/** An OCI image manifest over the given config and layers (as pushed blobs). */
export function imageManifest(config: string, configSize: number, layers: Array<{ digest: string; size: number }>, extra: object = {}): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST_TYPES.ociManifest,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: configSize },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...l })),
    ...extra,
  });
}

export async function putManifest(url: string, name: string, ref: string, body: string, mediaType: string = MANIFEST_TYPES.ociManifest): Promise<Response> {
  return fetch(`${url}/v2/${name}/manifests/${ref}`, { method: 'PUT', body, headers: { 'Content-Type': mediaType } });
}

/** Pushes config + one layer + manifest under `tag`; returns the digests. */
export async function pushImage(url: string, name: string, tag: string, seed: string): Promise<{ manifest: string; config: string; layer: string }> {
  const configData = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, seed });
  const layerData = `layer-${seed}`;
  const config = await pushBlob(url, name, configData);
  const layer = await pushBlob(url, name, layerData);
  const body = imageManifest(config, configData.length, [{ digest: layer, size: layerData.length }]);
  const res = await putManifest(url, name, tag, body);
  if (res.status !== 201) throw new Error(`PUT manifest: ${res.status} ${await res.text()}`);
  return { manifest: res.headers.get('docker-content-digest') as string, config, layer };
}
