import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmdirSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readFile, rename, rm, symlink, truncate, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatTimestamp, parseLogLine, parseTimestamp, readLogs, type LogStream, type ReadLogsOptions } from './logs.js';

const T0 = 1_795_000_000_000_000_000n; // an arbitrary instant, in ns

function rec(i: number, stream: LogStream, tag: 'F' | 'P', text: string): string {
  const t = formatTimestamp(T0 + BigInt(i) * 1_000_000_000n).replace('Z', '+00:00');
  return `${t} ${stream} ${tag} ${text}\n`;
}

async function tmp(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'vessel-logs-'));
}

const base: ReadLogsOptions = { stdout: true, stderr: true, follow: false, timestamps: false };

/** Reads everything and splits it back into `stream:text` lines (test texts contain no newlines). */
async function collect(path: string, options: Partial<ReadLogsOptions> = {}): Promise<string[]> {
  const out: string[] = [];
  const pending: Record<LogStream, string> = { stdout: '', stderr: '' };
  for await (const chunk of readLogs(path, { ...base, ...options })) {
    const parts = (pending[chunk.stream] + chunk.data.toString()).split('\n');
    pending[chunk.stream] = parts.pop()!;
    for (const p of parts) out.push(`${chunk.stream}:${p}`);
  }
  for (const s of ['stdout', 'stderr'] as const) if (pending[s]) out.push(`${s}:${pending[s]}(no newline)`);
  return out;
}

test('parseLogLine reads full, partial and empty records', () => {
  const r = parseLogLine('2026-11-22T01:02:03.123456789+00:00 stdout F hello world\n');
  assert.ok(r);
  assert.equal(r.time, '2026-11-22T01:02:03.123456789+00:00');
  assert.equal(r.timeNs, BigInt(Date.UTC(2026, 10, 22, 1, 2, 3)) * 1_000_000n + 123_456_789n);
  assert.equal(r.stream, 'stdout');
  assert.equal(r.partial, false);
  assert.equal(r.data.toString(), 'hello world');

  const p = parseLogLine(Buffer.from('2026-11-22T01:02:03.5Z stderr P  two  spaces '));
  assert.ok(p);
  assert.equal(p.stream, 'stderr');
  assert.equal(p.partial, true);
  assert.equal(p.data.toString(), ' two  spaces ');
  assert.equal(p.timeNs, BigInt(Date.UTC(2026, 10, 22, 1, 2, 3)) * 1_000_000n + 500_000_000n);

  assert.equal(parseLogLine('2026-11-22T01:02:03Z stdout F ')?.data.length, 0);
  assert.equal(parseLogLine('2026-11-22T01:02:03Z stdout F')?.data.length, 0);
  // Bytes are kept as they are, valid UTF-8 or not.
  const bin = parseLogLine(Buffer.concat([Buffer.from('2026-11-22T01:02:03Z stdout F '), Buffer.from([0xff, 0x00, 0x0d])]));
  assert.deepEqual([...bin!.data], [0xff, 0x00, 0x0d]);
});

test('parseLogLine honours the zone offset and rejects malformed lines', () => {
  const a = parseLogLine('2026-11-22T03:02:03.000000001+02:00 stdout F x');
  const b = parseLogLine('2026-11-22T01:02:03.000000001Z stdout F x');
  assert.equal(a?.timeNs, b?.timeNs);
  assert.equal(parseLogLine(''), null);
  assert.equal(parseLogLine('garbage'), null);
  assert.equal(parseLogLine('2026-11-22T01:02:03Z stdin F x'), null);
  assert.equal(parseLogLine('2026-11-22T01:02:03Z stdout X x'), null);
  assert.equal(parseLogLine('yesterday stdout F x'), null);
  assert.equal(parseTimestamp('2026-13-45T01:02:03Z'), null);
  assert.equal(parseTimestamp('2026-02-30T01:02:03Z'), null);
  assert.equal(parseTimestamp('2026-11-22T24:02:03Z'), null);
  assert.equal(formatTimestamp(parseTimestamp('2026-11-22T03:02:03.5+02:00')!), '2026-11-22T01:02:03.500000000Z');
});

test('readLogs returns all lines, filters streams and adds timestamps', async () => {
  const dir = await tmp();
  try {
    const f = join(dir, 'ctr.log');
    await writeFile(f, rec(0, 'stdout', 'F', 'one') + rec(1, 'stderr', 'F', 'two') + rec(2, 'stdout', 'F', '') + rec(3, 'stdout', 'F', 'four'));
    assert.deepEqual(await collect(f), ['stdout:one', 'stderr:two', 'stdout:', 'stdout:four']);
    assert.deepEqual(await collect(f, { stderr: false }), ['stdout:one', 'stdout:', 'stdout:four']);
    assert.deepEqual(await collect(f, { stdout: false }), ['stderr:two']);
    assert.deepEqual(await collect(f, { stdout: false, stderr: false }), []);
    const ts = await collect(f, { timestamps: true, stdout: false });
    assert.deepEqual(ts, [`stderr:${formatTimestamp(T0 + 1_000_000_000n)} two`]);
    assert.match(ts[0]!, /^stderr:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z two$/);
    // A missing file is an empty log, not an error.
    assert.deepEqual(await collect(join(dir, 'absent.log')), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('readLogs joins partial records per stream, even when streams interleave', async () => {
  const dir = await tmp();
  try {
    const f = join(dir, 'ctr.log');
    await writeFile(
      f,
      rec(0, 'stdout', 'P', 'par') + rec(1, 'stderr', 'F', 'err') + rec(2, 'stdout', 'P', 'ti') + rec(3, 'stdout', 'F', 'al') +
        rec(4, 'stderr', 'P', 'unfinished'),
    );
    assert.deepEqual(await collect(f), ['stderr:err', 'stdout:partial', 'stderr:unfinished(no newline)']);
    // The joined line carries the time of its first fragment.
    assert.deepEqual(await collect(f, { stderr: false, timestamps: true }), [`stdout:${formatTimestamp(T0)} partial`]);
    assert.deepEqual(await collect(f, { sinceNs: T0 + 1_000_000_000n, stderr: false }), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('readLogs applies since and until inclusively', async () => {
  const dir = await tmp();
  try {
    const f = join(dir, 'ctr.log');
    let s = '';
    for (let i = 0; i < 10; i++) s += rec(i, 'stdout', 'F', `l${i}`);
    await writeFile(f, s);
    const sec = 1_000_000_000n;
    assert.deepEqual(await collect(f, { sinceNs: T0 + 7n * sec }), ['stdout:l7', 'stdout:l8', 'stdout:l9']);
    assert.deepEqual(await collect(f, { untilNs: T0 + 1n * sec }), ['stdout:l0', 'stdout:l1']);
    assert.deepEqual(await collect(f, { sinceNs: T0 + 3n * sec, untilNs: T0 + 4n * sec }), ['stdout:l3', 'stdout:l4']);
    // tail first, then since (docker's order).
    assert.deepEqual(await collect(f, { tail: 3, sinceNs: T0 + 8n * sec }), ['stdout:l8', 'stdout:l9']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** A log with random interleaving, fragment splits and some lines longer than a read block. */
function randomLog(seed: number, count: number): { text: string; lines: string[] } {
  let x = seed;
  const rnd = (n: number): number => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return Math.floor(x / 65536) % n;
  };
  const queues: Record<LogStream, Array<{ body: string; frags: string[] }>> = { stdout: [], stderr: [] };
  for (let i = 0; i < count; i++) {
    const stream: LogStream = rnd(3) === 0 ? 'stderr' : 'stdout';
    const len = rnd(50) === 0 ? 70_000 + rnd(1000) : rnd(120);
    const body = `${i}-` + 'abcdefghij'.repeat(Math.ceil(len / 10) + 1).slice(0, len);
    const frags: string[] = [];
    for (let at = 0; at < body.length; ) {
      const n = rnd(3) === 0 ? 1 + rnd(body.length - at) : body.length - at;
      frags.push(body.slice(at, at + n));
      at += n;
    }
    queues[stream].push({ body, frags });
  }
  // Emit fragments, switching streams at random; a line is complete with its last fragment.
  const lines: string[] = [];
  let text = '';
  let t = 0;
  while (queues.stdout.length || queues.stderr.length) {
    const stream: LogStream = !queues.stderr.length ? 'stdout' : !queues.stdout.length ? 'stderr' : rnd(2) ? 'stdout' : 'stderr';
    const line = queues[stream][0]!;
    const frag = line.frags.shift()!;
    text += rec(t++, stream, line.frags.length ? 'P' : 'F', frag);
    if (!line.frags.length) {
      queues[stream].shift();
      lines.push(`${stream}:${line.body}`);
    }
  }
  return { text, lines };
}

test('tail returns the last N full lines of the selected streams, across blocks and fragments', async () => {
  const dir = await tmp();
  try {
    const f = join(dir, 'ctr.log');
    const { text, lines } = randomLog(42, 400);
    await writeFile(f, text);
    assert.ok(text.length > 3 * 64 * 1024, 'several read blocks');
    assert.deepEqual(await collect(f), lines);
    const out = lines.filter((l) => l.startsWith('stdout:'));
    const err = lines.filter((l) => l.startsWith('stderr:'));
    for (const n of [0, 1, 2, 3, 7, 50, 399, 400, 1000]) {
      const last = (a: string[]): string[] => (n === 0 ? [] : a.slice(-n));
      assert.deepEqual(await collect(f, { tail: n }), last(lines), `tail ${n}`);
      assert.deepEqual(await collect(f, { tail: n, stderr: false }), last(out), `stdout tail ${n}`);
      assert.deepEqual(await collect(f, { tail: n, stdout: false }), last(err), `stderr tail ${n}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('tail reads from the end instead of parsing the whole file', async () => {
  const dir = await tmp();
  try {
    const f = join(dir, 'ctr.log');
    // 4 GiB of sparse zeros before the records: reading it all would take far longer than the bound.
    await writeFile(f, '');
    await truncate(f, 4 * 1024 ** 3);
    let s = '\n';
    for (let i = 0; i < 20; i++) s += rec(i, i % 2 ? 'stderr' : 'stdout', 'F', `l${i}`);
    s += rec(20, 'stdout', 'P', 'not yet');
    await appendFile(f, s);
    const started = Date.now();
    const got = await collect(f, { tail: 3 });
    const took = Date.now() - started;
    assert.ok(took < 1000, `tail took ${took} ms`);
    assert.deepEqual(got, ['stderr:l17', 'stdout:l18', 'stderr:l19', 'stdout:not yet(no newline)']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('an oversized garbage record is skipped in both directions', async () => {
  const dir = await tmp();
  try {
    const f = join(dir, 'ctr.log');
    await writeFile(f, rec(0, 'stdout', 'F', 'a') + 'x'.repeat(3 * 1024 * 1024) + '\n' + rec(1, 'stdout', 'F', 'b'));
    assert.deepEqual(await collect(f), ['stdout:a', 'stdout:b']);
    assert.deepEqual(await collect(f, { tail: 5 }), ['stdout:b']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Runs readLogs in the background, recording what arrives per stream. */
function follow(path: string, options: Partial<ReadLogsOptions>) {
  const text: Record<LogStream, string> = { stdout: '', stderr: '' };
  const done = (async () => {
    for await (const c of readLogs(path, { ...base, follow: true, ...options })) text[c.stream] += c.data.toString();
  })();
  return { text, done };
}

test('follow delivers appended lines promptly, across split writes, until the container has exited', async () => {
  const dir = await tmp();
  try {
    const f = join(dir, 'ctr.log');
    await writeFile(f, rec(0, 'stdout', 'F', 'before'));
    let running = true;
    const r = follow(f, { isRunning: () => running, tail: 1 });
    await waitFor(() => r.text.stdout === 'before\n', 2000, 'existing line');
    let expected = 'before\n';
    for (let i = 1; i <= 5; i++) {
      const started = Date.now();
      await appendFile(f, rec(i, 'stdout', 'F', `line ${i}`));
      expected += `line ${i}\n`;
      await waitFor(() => r.text.stdout === expected, 2000, `line ${i}`);
      assert.ok(Date.now() - started < 1000, 'prompt');
    }
    // One record written in two pieces, and a line in two fragments.
    const split = rec(6, 'stderr', 'F', 'split record');
    await appendFile(f, split.slice(0, 20));
    await sleep(300);
    assert.equal(r.text.stderr, '');
    await appendFile(f, split.slice(20) + rec(7, 'stdout', 'P', 'frag'));
    await waitFor(() => r.text.stderr === 'split record\n', 2000, 'split record');
    await sleep(100);
    assert.equal(r.text.stdout, expected, 'a fragment waits for the rest of its line');
    await appendFile(f, rec(8, 'stdout', 'F', 'ment'));
    expected += 'fragment\n';
    await waitFor(() => r.text.stdout === expected, 2000, 'joined fragment');
    // Written just before the exit is noticed: still delivered, then the reader ends.
    await appendFile(f, rec(9, 'stdout', 'F', 'last words'));
    running = false;
    await r.done;
    assert.equal(r.text.stdout, expected + 'last words\n');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('follow with tail 0 starts at a record still being written', async () => {
  const dir = await tmp();
  try {
    const f = join(dir, 'ctr.log');
    const next = rec(1, 'stdout', 'F', 'new');
    await writeFile(f, rec(0, 'stdout', 'F', 'old') + next.slice(0, 10));
    const ac = new AbortController();
    const r = follow(f, { signal: ac.signal, tail: 0 });
    await sleep(100);
    await appendFile(f, next.slice(10));
    await waitFor(() => r.text.stdout === 'new\n', 2000, 'the completed record');
    ac.abort();
    await r.done;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('follow waits for a file (and directory) that does not exist yet, and stops on abort', async () => {
  const dir = await tmp();
  try {
    const sub = join(dir, 'later');
    const f = join(sub, 'ctr.log');
    const ac = new AbortController();
    const r = follow(f, { signal: ac.signal });
    await sleep(100);
    await mkdir(sub);
    await writeFile(f, rec(0, 'stderr', 'F', 'hello'));
    await waitFor(() => r.text.stderr === 'hello\n', 2000, 'line in a new file');
    const started = Date.now();
    ac.abort();
    await r.done;
    assert.ok(Date.now() - started < 500, 'abort ends following promptly');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('follow continues with a replaced (rotated) or truncated file', async () => {
  const dir = await tmp();
  try {
    const f = join(dir, 'ctr.log');
    await writeFile(f, rec(0, 'stdout', 'F', 'old'));
    const ac = new AbortController();
    const r = follow(f, { signal: ac.signal });
    await waitFor(() => r.text.stdout === 'old\n', 2000, 'old');
    await writeFile(join(dir, 'ctr.log.tmp'), rec(1, 'stdout', 'F', 'new'));
    await rename(join(dir, 'ctr.log.tmp'), f);
    await waitFor(() => r.text.stdout === 'old\nnew\n', 2000, 'line in the replacement');
    await writeFile(f, rec(2, 'stdout', 'F', 'x'));
    await waitFor(() => r.text.stdout === 'old\nnew\nx\n', 2000, 'line after truncation');
    ac.abort();
    await r.done;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('reads back stdout and stderr of a real container run by conmon and runc', { timeout: 60_000 }, async (t) => {
  if (process.getuid?.() !== 0 || !existsSync('/usr/bin/conmon') || !existsSync('/usr/sbin/runc') || !existsSync('/bin/busybox')) {
    assert.fail('needs root, conmon, runc and a static busybox (npm run setup installs them)');
  }
  const dir = await tmp();
  const id = `vessel-logtest-${process.pid}-${Date.now()}`;
  const cgParent = `vessel-logtest-${process.pid}`;
  const bundle = join(dir, 'bundle');
  const runcRoot = join(dir, 'runc');
  const exitFile = join(dir, 'exits', id);
  const conmonPidFile = join(dir, 'conmon.pid');
  const logPath = join(bundle, 'ctr.log');
  const runc = (...args: string[]): string => execFileSync('/usr/sbin/runc', ['--root', runcRoot, ...args]).toString();
  try {
    await mkdir(join(bundle, 'rootfs', 'bin'), { recursive: true });
    await mkdir(join(dir, 'exits'));
    await copyFile('/bin/busybox', join(bundle, 'rootfs', 'bin', 'busybox'));
    await symlink('busybox', join(bundle, 'rootfs', 'bin', 'sh'));
    execFileSync('/usr/sbin/runc', ['spec'], { cwd: bundle });
    const config = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8'));
    config.process.terminal = false;
    config.process.args = ['/bin/sh', '-c', 'echo out; echo err >&2; printf "no newline"'];
    config.linux.cgroupsPath = `/${cgParent}/${id}`;
    await writeFile(join(bundle, 'config.json'), JSON.stringify(config));

    const conmon = spawn(
      '/usr/bin/conmon',
      [
        '--api-version', '1', '-c', id, '-u', id, '-r', '/usr/sbin/runc', '-b', bundle, '-p', join(bundle, 'pidfile'),
        '-n', id, '--exit-dir', join(dir, 'exits'), '-l', `k8s-file:${logPath}`, '--runtime-arg', `--root=${runcRoot}`,
        '--full-attach', '--socket-dir-path', join(dir, 'sock'), '--conmon-pidfile', conmonPidFile,
        '--log-level', 'debug', '--syslog',
      ],
      { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], env: { ...process.env, _OCI_SYNCPIPE: '3' } },
    );
    let conmonErr = '';
    conmon.stderr!.on('data', (d: Buffer) => (conmonErr += d.toString()));
    const sync = conmon.stdio[3] as NodeJS.ReadableStream;
    const pid = await new Promise<number>((resolve, reject) => {
      let buf = '';
      sync.on('data', (d: Buffer) => {
        buf += d.toString();
        if (!buf.includes('}')) return;
        const msg = JSON.parse(buf.slice(0, buf.indexOf('}') + 1)) as { data: number; message?: string };
        if (msg.data > 0) resolve(msg.data);
        else reject(new Error(`conmon: ${msg.message ?? msg.data}: ${conmonErr}`));
      });
      conmon.on('error', reject);
      setTimeout(() => reject(new Error(`no pid from conmon: ${conmonErr}`)), 20_000).unref();
    });
    assert.ok(pid > 1);
    runc('start', id);

    const r = follow(logPath, { isRunning: () => !existsSync(exitFile) });
    await r.done;
    for (const s of [conmon.stdout, conmon.stderr, sync]) (s as NodeJS.ReadableStream & { destroy(): void }).destroy();
    assert.equal(r.text.stdout, 'out\nno newline');
    assert.equal(r.text.stderr, 'err\n');
    assert.equal((await readFile(exitFile, 'utf8')).trim(), '0');
    // The file really is in the format the parser expects.
    const records = (await readFile(logPath, 'utf8')).trim().split('\n').map((l) => parseLogLine(l));
    assert.ok(records.every((x) => x !== null));
    assert.deepEqual(
      records.map((x) => `${x!.stream} ${x!.partial ? 'P' : 'F'} ${x!.data}`).sort(),
      ['stderr F err', 'stdout F out', 'stdout P no newline'],
    );
  } finally {
    try {
      runc('delete', '-f', id);
    } catch {
      // never created, or already gone
    }
    try {
      const conmonPid = Number((await readFile(conmonPidFile, 'utf8')).trim());
      // Only if that pid is still conmon: it normally exits with the container, and pids get reused.
      if (conmonPid > 1 && (await readFile(`/proc/${conmonPid}/comm`, 'utf8')).trim() === 'conmon') process.kill(conmonPid, 'SIGKILL');
    } catch {
      // conmon exits by itself once the container is gone
    }
    for (const h of readdirSync('/sys/fs/cgroup')) {
      try {
        rmdirSync(join('/sys/fs/cgroup', h, cgParent));
      } catch {
        // not created in this hierarchy
      }
    }
    await rm(dir, { recursive: true, force: true });
  }
});
