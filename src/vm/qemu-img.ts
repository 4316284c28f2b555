/** `qemu-img` operations on stopped disks (a running VM's disks are changed through QMP instead). */
import { run } from '../core/exec.js';
import { FailedPreconditionError, InternalError } from '../core/errors.js';

async function qemuImg(args: string[], what: string): Promise<string> {
  const r = await run('qemu-img', args, { reject: false, timeoutMs: 600_000 }).catch((e: unknown) => {
    throw new FailedPreconditionError(`qemu-img is missing (install qemu-utils): ${String(e)}`);
  });
  if (r.exitCode !== 0) {
    const detail = r.stderr.trim().split('\n').pop()?.replace(/^qemu-img: /, '') ?? `exit code ${r.exitCode}`;
    throw new InternalError(`${what}: ${detail}`);
  }
  return r.stdout;
}

export interface ImageInfo {
  virtualSize: number;
  actualSize: number;
  format: string;
  backing: string | null;
  snapshots: Array<{ name: string; vmStateSize: number; clockNs: number }>;
}

export async function qemuImgInfo(file: string): Promise<ImageInfo> {
  const out = await qemuImg(['info', '--force-share', '--output=json', file], `Cannot read disk ${file}`);
  const j = JSON.parse(out) as {
    'virtual-size': number;
    'actual-size'?: number;
    format: string;
    'backing-filename'?: string;
    snapshots?: Array<{ name: string; 'vm-state-size': number; 'vm-clock-sec': number; 'vm-clock-nsec': number }>;
  };
  return {
    virtualSize: j['virtual-size'],
    actualSize: j['actual-size'] ?? 0,
    format: j.format,
    backing: j['backing-filename'] ?? null,
    snapshots: (j.snapshots ?? []).map((s) => ({ name: s.name, vmStateSize: s['vm-state-size'], clockNs: s['vm-clock-sec'] * 1e9 + s['vm-clock-nsec'] })),
  };
}

export async function createDisk(file: string, size: number): Promise<void> {
  await qemuImg(['create', '-q', '-f', 'qcow2', file, String(size)], `Cannot create disk ${file}`);
}

export async function resizeDisk(file: string, size: number): Promise<void> {
  await qemuImg(['resize', '-q', file, String(size)], `Cannot resize disk ${file}`);
}

export async function snapshotOffline(op: 'create' | 'apply' | 'delete', file: string, name: string): Promise<void> {
  const flag = { create: '-c', apply: '-a', delete: '-d' }[op];
  await qemuImg(['snapshot', flag, name, file], `Cannot ${op} snapshot ${name} of ${file}`);
}
