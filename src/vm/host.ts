/** Host-wide settings VMs use: kernel samepage merging and the unprivileged QEMU user. */
import { readFileSync, writeFileSync } from 'node:fs';
import { run } from '../core/exec.js';
import { FailedPreconditionError } from '../core/errors.js';
import { log } from '../core/log.js';

const KSM = '/sys/kernel/mm/ksm';

export async function enableKsm(): Promise<void> {
  try {
    writeFileSync(`${KSM}/run`, '1');
    log.info('KSM enabled');
  } catch (e) {
    throw new FailedPreconditionError(`Cannot enable KSM (${KSM}/run): ${(e as Error).message}`);
  }
}

/** KSM counters for `vessel info`; null when the kernel has no KSM. */
export function ksmStats(): { running: boolean; pagesShared: number; pagesSharing: number; bytesSaved: number } | null {
  try {
    const read = (f: string) => Number(readFileSync(`${KSM}/${f}`, 'utf8').trim());
    const sharing = read('pages_sharing');
    return { running: read('run') === 1, pagesShared: read('pages_shared'), pagesSharing: sharing, bytesSaved: sharing * 4096 };
  } catch {
    return null;
  }
}

/** Creates a system user without a shell or home when it does not exist. */
export async function ensureSystemUser(name: string): Promise<void> {
  const r = await run('id', ['-u', name], { reject: false });
  if (r.exitCode === 0) return;
  // In group kvm (when the host has one) so QEMU can open /dev/kvm after dropping root.
  const kvm = (await run('getent', ['group', 'kvm'], { reject: false })).exitCode === 0 ? ['--groups', 'kvm'] : [];
  await run('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', ...kvm, name]).catch((e: unknown) => {
    throw new FailedPreconditionError(`Cannot create user ${name}: ${(e as Error).message}`);
  });
}
