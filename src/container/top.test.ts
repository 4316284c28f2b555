import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { InvalidArgumentError } from '../core/errors.js';
import { parsePsOutput, top } from './top.js';

const sample = [
  'UID          PID    PPID  C STIME TTY          TIME CMD',
  'root           1       0  0 01:00 ?        00:00:01 /sbin/init',
  'root         42       1  0 01:00 ?        00:00:00 /bin/sh -c sleep 1000; true arg  with  spaces',
  'nobody      420      42  0 01:00 pts/0    00:00:00 sleep 1000',
  '',
].join('\n');

test('parsePsOutput keeps the selected rows and the command unsplit', () => {
  const r = parsePsOutput(sample, [42, 420, 7]);
  assert.deepEqual(r.Titles, ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD']);
  assert.deepEqual(r.Processes, [
    ['root', '42', '1', '0', '01:00', '?', '00:00:00', '/bin/sh -c sleep 1000; true arg  with  spaces'],
    ['nobody', '420', '42', '0', '01:00', 'pts/0', '00:00:00', 'sleep 1000'],
  ]);
  assert.deepEqual(parsePsOutput(sample, []).Processes, []);
  // A pid that only appears in another column (PPID) does not select a row.
  assert.deepEqual(parsePsOutput(sample, [0]).Processes, []);
});

test('parsePsOutput rejects output without a usable PID column', () => {
  assert.throws(() => parsePsOutput('USER COMMAND\nroot init\n', [1]), InvalidArgumentError);
  assert.throws(() => parsePsOutput('', [1]), InvalidArgumentError);
  // lstart has spaces, so with it before PID the PID column holds a date word.
  assert.throws(() => parsePsOutput('STARTED PID CMD\nSun Nov 22 01:00:00 2026 5 x\n', [5]), /Unexpected pid/);
});

function started(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
}

async function withProcesses(fn: (pids: number[]) => Promise<void>): Promise<void> {
  // `; true` keeps sh from exec'ing sleep, so the shell's own command line is what ps shows.
  // Own process group, so the shell's sleep can be killed along with it.
  const a = spawn('/bin/sh', ['-c', 'sleep 1000; true', 'zero  two'], { stdio: 'ignore', detached: true });
  const b = spawn('sleep', ['999'], { stdio: 'ignore' });
  try {
    await Promise.all([started(a), started(b)]);
    await fn([a.pid!, b.pid!]);
  } finally {
    process.kill(-a.pid!, 'SIGKILL');
    b.kill('SIGKILL');
  }
}

test('top lists exactly the given processes with ps -ef', async () => {
  await withProcesses(async ([a, b]) => {
    const r = await top([a!, b!]);
    assert.deepEqual(r.Titles, ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD']);
    assert.equal(r.Processes.length, 2);
    const byPid = new Map(r.Processes.map((p) => [Number(p[1]), p]));
    assert.equal(byPid.get(a!)?.[7], '/bin/sh -c sleep 1000; true zero  two');
    assert.equal(byPid.get(b!)?.[7], 'sleep 999');
    assert.equal(byPid.get(b!)?.[2], String(process.pid), 'PPID');
    for (const p of r.Processes) assert.equal(p.length, r.Titles.length);
    // Only the given pids: not this test process, not the sleep the shell started.
    assert.deepEqual((await top([process.pid])).Processes.map((p) => Number(p[1])), [process.pid]);
    assert.deepEqual((await top([])).Processes, []);
  });
});

test('top passes other ps arguments through, BSD style included', async () => {
  await withProcesses(async ([a, b]) => {
    const aux = await top([a!], 'aux');
    assert.equal(aux.Titles[1], 'PID');
    assert.equal(aux.Titles.at(-1), 'COMMAND');
    assert.equal(aux.Processes.length, 1);
    assert.equal(aux.Processes[0]!.at(-1), '/bin/sh -c sleep 1000; true zero  two');

    const custom = await top([a!, b!], '-eo  pid,ppid,comm');
    assert.deepEqual(custom.Titles, ['PID', 'PPID', 'COMMAND']);
    assert.deepEqual(
      custom.Processes.sort((x, y) => Number(x[0]) - Number(y[0])),
      [
        [String(a), String(process.pid), 'sh'],
        [String(b), String(process.pid), 'sleep'],
      ].sort((x, y) => Number(x[0]) - Number(y[0])),
    );
    // ps exits 1 when its own selection is empty; that is an empty list, not an error.
    assert.deepEqual((await top([a!], '-p 999999999')).Processes, []);
  });
});

test('top refuses bad ps arguments', async () => {
  await assert.rejects(top([1], '--no-such-option'), (e: unknown) => {
    assert.ok(e instanceof InvalidArgumentError);
    assert.match(e.message, /Error running ps --no-such-option: error: unknown gnu long option/);
    return true;
  });
  await assert.rejects(top([1], '-eo ppid,comm'), /Couldn't find PID field/);
  await assert.rejects(top([1], '-eo user=PID,comm'), /Specifying "user=PID" is not allowed/);
  // Renaming the pid column itself is harmless.
  assert.deepEqual((await top([1], '-eo pid=PID,comm')).Titles, ['PID', 'COMMAND']);
});
