/**
 * Which accelerator QEMU should use on this host: KVM when it really runs
 * guests, TCG otherwise.
 *
 * The device file is not enough. On hosts with the paravirtual PVM module,
 * /dev/kvm opens and KVM_CREATE_VM succeeds, but guests crawl or never return
 * from KVM_RUN (measured here: the probe guest below needs 3–7 s under KVM
 * against ~0.2 s under TCG, and a Linux kernel hangs). So the probe boots a
 * real firmware path: SeaBIOS on q35 loads a 512-byte boot sector that writes
 * 0x31 to an isa-debug-exit port, which makes QEMU exit with (0x31 << 1) | 1.
 * (A bare reset-vector guest that skips the firmware completes under PVM in
 * ~70 ms, so it would wrongly pass.) The KVM run uses `-cpu host`, the model
 * Vessel launches KVM guests with; under PVM QEMU 7.2 may instead abort in
 * kvm_buf_set_msrs, which is reported as the reason. Nothing is cached on disk.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FailedPreconditionError } from '../core/errors.js';

export type Accelerator = 'kvm' | 'tcg';

export interface AccelProbeOptions {
  /** Default `qemu-system-x86_64` (from PATH). */
  qemuBinary?: string;
  /** How long the KVM test guest may take. Default 3000 ms. TCG gets at least 10 s. */
  timeoutMs?: number;
  /** Default `/dev/kvm`. */
  kvmDevice?: string;
}

export interface AccelProbeResult {
  accel: Accelerator;
  reason: string;
}

const DEBUG_EXIT_PORT = 0xf4;
const EXPECTED_EXIT = (0x31 << 1) | 1;

/** mov al, 0x31; out 0xf4, al; cli; hlt; jmp $-2, then the 0x55AA boot signature. */
export function probeBootSector(): Buffer {
  const b = Buffer.alloc(512);
  Buffer.from([0xb0, 0x31, 0xe6, DEBUG_EXIT_PORT, 0xfa, 0xf4, 0xeb, 0xfd]).copy(b);
  b[510] = 0x55;
  b[511] = 0xaa;
  return b;
}

type RunOutcome = { kind: 'exit'; code: number | null; signal?: string | null; ms: number; stderr: string } | { kind: 'timeout' } | { kind: 'missing' };

function runGuest(binary: string, accel: Accelerator, image: string, timeoutMs: number): Promise<RunOutcome> {
  const args = [
    '-accel', accel,
    '-M', 'q35',
    '-cpu', accel === 'kvm' ? 'host' : 'max',
    '-m', '32',
    '-nodefaults', '-no-user-config', '-display', 'none',
    '-drive', `file=${image},format=raw,if=ide`,
    '-device', `isa-debug-exit,iobase=0x${DEBUG_EXIT_PORT.toString(16)},iosize=0x04`,
  ];
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-2000)));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(e.code === 'ENOENT' ? { kind: 'missing' } : { kind: 'exit', code: null, ms: Date.now() - started, stderr: e.message });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve(timedOut ? { kind: 'timeout' } : { kind: 'exit', code, signal, ms: Date.now() - started, stderr: stderr.trim() });
    });
  });
}

function lastLine(s: string): string {
  return s.split('\n').filter((l) => l.trim() !== '' && !/warning:/.test(l)).at(-1) ?? '';
}

async function kvmOpenable(device: string): Promise<string | null> {
  try {
    const fh = await open(device, 'r+');
    await fh.close();
    return null;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `kvm: ${device} missing`;
    if (code === 'EACCES' || code === 'EPERM') return `kvm: no permission to open ${device} read-write`;
    return `kvm: cannot open ${device}: ${code}`;
  }
}

/**
 * Decide between KVM and TCG. Throws FailedPreconditionError when QEMU is
 * missing or cannot run even a TCG guest.
 */
export async function probeAccelerator(options: AccelProbeOptions = {}): Promise<AccelProbeResult> {
  const binary = options.qemuBinary ?? 'qemu-system-x86_64';
  const timeoutMs = options.timeoutMs ?? 3000;
  const dir = await mkdtemp(join(tmpdir(), 'vessel-accel-'));
  try {
    const image = join(dir, 'boot.img');
    // SeaBIOS's AHCI path will not boot a one-sector disk; 1 MiB (sparse) is plenty.
    await writeFile(image, probeBootSector());
    const fh = await open(image, 'r+');
    await fh.truncate(1 << 20);
    await fh.close();

    const tcg = await runGuest(binary, 'tcg', image, Math.max(timeoutMs, 10_000));
    if (tcg.kind === 'missing') throw new FailedPreconditionError(`QEMU missing: install qemu-system-x86 (${binary} not found)`);
    if (tcg.kind === 'timeout') throw new FailedPreconditionError(`QEMU cannot run a TCG test guest: no exit within ${Math.max(timeoutMs, 10_000)} ms`);
    if (tcg.code !== EXPECTED_EXIT) {
      throw new FailedPreconditionError(`QEMU cannot run a TCG test guest: exit code ${tcg.code}${lastLine(tcg.stderr) ? `: ${lastLine(tcg.stderr)}` : ''}`);
    }

    const noKvm = await kvmOpenable(options.kvmDevice ?? '/dev/kvm');
    if (noKvm) return { accel: 'tcg', reason: `${noKvm}; using TCG` };
    const kvm = await runGuest(binary, 'kvm', image, timeoutMs);
    if (kvm.kind === 'timeout') {
      return {
        accel: 'tcg',
        reason: `kvm: a test guest did not complete within ${timeoutMs} ms (KVM cannot run guests here, e.g. a paravirtual PVM module); using TCG`,
      };
    }
    if (kvm.kind === 'exit' && kvm.code === EXPECTED_EXIT) return { accel: 'kvm', reason: `kvm: a test guest ran in ${kvm.ms} ms` };
    const detail =
      kvm.kind === 'exit'
        ? `${kvm.signal ? `QEMU killed by ${kvm.signal}` : `exit code ${kvm.code}`}${lastLine(kvm.stderr) ? `: ${lastLine(kvm.stderr)}` : ''}`
        : 'QEMU vanished';
    return { accel: 'tcg', reason: `kvm: the test guest failed (${detail}); using TCG` };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
