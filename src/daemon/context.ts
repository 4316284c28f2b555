/** What the API handlers work with: the engines of one daemon. */
import type { ContainerManager } from '../container/manager.js';
import type { ExecManager } from '../container/exec-manager.js';
import type { DaemonPaths } from '../container/paths.js';
import type { ImageStore } from '../image/image-store.js';
import type { NetworkManager } from '../network/network-manager.js';
import type { ContainerArchiver } from '../volume/container-archive.js';
import type { VolumeService } from '../volume/volume-service.js';
import type { DaemonConfig } from './config.js';
import type { VmService } from '../vm/vms.js';

export interface DaemonContext {
  config: DaemonConfig;
  paths: DaemonPaths;
  images: ImageStore;
  manager: ContainerManager;
  execs: ExecManager;
  cgroupVersion: 1 | 2;
  networks: NetworkManager;
  volumes: VolumeService;
  archiver: ContainerArchiver;
  vms: VmService;
}

export function sendJson(res: import('node:http').ServerResponse, status: number, body: unknown): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendEmpty(res: import('node:http').ServerResponse, status: number): void {
  res.writeHead(status);
  res.end();
}
