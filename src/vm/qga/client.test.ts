import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { QgaClient, QgaError } from './client.js';

// The host's own qemu-ga on a unix socket: "guest" commands run on this host.
// guest-shutdown is blocked so the shutdown test cannot power the host off.
const dir = mkdtempSync(join(tmpdir(), 'vessel-qga-'));
const sock = join(dir, 'qga.sock');
const procs: ChildProcess[] = [];

function startAgent(): ChildProcess {
  const p = spawn('qemu-ga', ['-m', 'unix-listen', '-p', sock, '-t', dir, '-f', join(dir, 'qga.pid'), '-b', 'guest-shutdown,guest-suspend-disk,guest-suspend-ram,guest-suspend-hybrid'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  procs.push(p);
  return p;
}

after(() => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('QgaClient against the host qemu-ga', () => {
  let qga: QgaClient;

  before(async () => {
    qga = new QgaClient(sock, { commandTimeoutMs: 5000 });
    // Not running yet: waitReady must keep retrying until the agent appears.
    const ready = qga.waitReady(10_000);
    await new Promise((r) => setTimeout(r, 300));
    startAgent();
    await ready;
  });
  after(() => qga.close());

  it('pings', async () => {
    await qga.ping();
  });

  it('exec captures stdout, exit code and stderr', async () => {
    const r = await qga.exec(['echo', 'hi']);
    assert.deepEqual({ code: r.exitCode, out: r.stdout, err: r.stderr }, { code: 0, out: 'hi\n', err: '' });
    const r3 = await qga.exec(['sh', '-c', 'exit 3']);
    assert.equal(r3.exitCode, 3);
    const re = await qga.exec(['sh', '-c', 'echo oops >&2; exit 1']);
    assert.equal(re.stderr, 'oops\n');
    assert.equal(re.exitCode, 1);
  });

  it('exec passes env and stdin', async () => {
    const r = await qga.exec(['sh', '-c', 'printf "%s:" "$GREETING"; cat'], { env: { GREETING: 'hello', PATH: '/usr/bin:/bin' }, input: 'from stdin' });
    assert.equal(r.stdout, 'hello:from stdin');
  });

  it('exec of a missing program is a QgaError', async () => {
    await assert.rejects(qga.exec(['/nonexistent/prog']), QgaError);
  });

  it('exec times out with a clear message', async () => {
    await assert.rejects(qga.exec(['sleep', '5'], { timeoutMs: 300 }), /still running after 300 ms/);
  });

  it('reads OS info and network interfaces', async () => {
    const os = await qga.osInfo();
    assert.ok(os.kernelRelease && os.id);
    const ifs = await qga.networkInterfaces();
    assert.ok(ifs.some((i) => i.name === 'lo' && i.addresses.some((a) => a.address === '127.0.0.1')));
  });

  it('writes a file', async () => {
    const f = join(dir, 'written.txt');
    await qga.fileWrite(f, 'payload\n');
    assert.equal(readFileSync(f, 'utf8'), 'payload\n');
  });

  it('shutdown sends without waiting; a stale error reply is dropped by the next sync', async () => {
    await qga.shutdown('powerdown'); // blocked in this agent: it answers with an error nobody reads
    await qga.ping();
    assert.equal((await qga.exec(['echo', 'still here'])).stdout, 'still here\n');
  });

  it('recovers after the agent restarts', async () => {
    const old = procs.at(-1)!;
    old.kill('SIGTERM');
    await new Promise((r) => old.once('exit', r));
    await assert.rejects(qga.ping());
    startAgent();
    await qga.waitReady(10_000);
    await qga.ping();
  });
});
