/** End-to-end tests of `vessel run` (the built CLI) against a recording stand-in daemon. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeFrame } from '../api/stdcopy.js';
import { finish, ID, json, keepAttach, runCli, runHandler, withDaemon, type Handler, type UpgradeHandler } from './testing.js';
import { tempDir } from '../core/test-temp-dirs.js';


test('run -d: create, wait(next-exit) before start, prints the full ID', { timeout: 20000 }, async () => {
  await withDaemon(runHandler(() => undefined), undefined, async (d, host) => {
    const r = await runCli(host, ['run', '-d', '--name', 'web', '-e', 'A=1', '-m', '64m', 'busybox', 'sleep', '60']);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    assert.equal(r.stdout, `${ID}\n`);
    assert.deepEqual(d.calls, [
      'POST /containers/create?name=web',
      `POST /containers/${ID}/wait?condition=next-exit`,
      `POST /containers/${ID}/start`,
    ]);
    const body = JSON.parse(d.requests[0]!.body);
    assert.equal(d.requests[0]!.headers['content-type'], 'application/json');
    assert.equal(body.Image, 'busybox');
    assert.deepEqual(body.Cmd, ['sleep', '60']);
    assert.deepEqual(body.Env, ['A=1']);
    assert.equal(body.HostConfig.Memory, 67108864);
    assert.equal(body.AttachStdout, false);
    assert.equal(body.AttachStderr, false);
  });
});

test('run --rm -d waits for condition=removed', { timeout: 20000 }, async () => {
  await withDaemon(runHandler(() => undefined), undefined, async (d, host) => {
    const r = await runCli(host, ['run', '--rm', '-d', 'busybox']);
    assert.equal(r.code, 0);
    assert.equal(JSON.parse(d.requests[0]!.body).HostConfig.AutoRemove, true);
    assert.equal(d.calls[1], `POST /containers/${ID}/wait?condition=removed`);
  });
});

test('run attached: upgrade, demux frames to stdout/stderr, exit with the wait status', { timeout: 20000 }, async () => {
  const frames = [encodeFrame(1, Buffer.from('out\n')), encodeFrame(2, Buffer.from('err\n')), encodeFrame(1, Buffer.from('more\n'))];
  await withDaemon(runHandler((d) => finish(d, frames, 3)), keepAttach, async (d, host) => {
    const r = await runCli(host, ['run', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    assert.equal(r.stdout, 'out\nmore\n');
    assert.equal(r.stderr, 'err\n');
    assert.equal(r.code, 3);
    // Attach and wait go out together (either order), both before start.
    assert.deepEqual(
      [d.calls[0], [d.calls[1], d.calls[2]].sort(), d.calls[3], d.calls.length],
      [
        'POST /containers/create',
        [`POST /containers/${ID}/attach?stream=1&stdout=1&stderr=1`, `POST /containers/${ID}/wait?condition=next-exit`],
        `POST /containers/${ID}/start`,
        4,
      ],
    );
    const attach = d.requests.find((r) => r.headers.upgrade)!;
    assert.equal(attach.headers.connection, 'Upgrade');
    assert.equal(attach.headers.upgrade, 'tcp');
    const body = JSON.parse(d.requests[0]!.body);
    assert.equal(body.AttachStdout, true);
    assert.equal(body.AttachStderr, true);
    assert.equal(body.AttachStdin, false);
  });
});

test('run -i: stdin goes raw to the socket and is half-closed at EOF', { timeout: 20000 }, async () => {
  let received = '';
  const upgrade: UpgradeHandler = (_req, socket, d) => {
    d.attach = socket;
    socket.on('data', (c: Buffer) => (received += c.toString()));
    // The CLI half-closes; answer with what arrived, then end.
    socket.on('end', () => finish(d, [encodeFrame(1, Buffer.from(received.toUpperCase()))], 0));
  };
  await withDaemon(runHandler(() => undefined), upgrade, async (d, host) => {
    const r = await runCli(host, ['run', '-i', 'busybox', 'cat'], { stdin: 'hello\n' });
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    assert.equal(received, 'hello\n');
    assert.equal(r.stdout, 'HELLO\n');
    assert.ok(d.calls.slice(1, 3).includes(`POST /containers/${ID}/attach?stream=1&stdout=1&stderr=1&stdin=1`));
    const body = JSON.parse(d.requests[0]!.body);
    assert.deepEqual([body.OpenStdin, body.AttachStdin, body.StdinOnce], [true, true, true]);
  });
});

test('run -t: the raw TTY stream is copied as-is', { timeout: 20000 }, async () => {
  await withDaemon(runHandler((d) => finish(d, [Buffer.from('raw\r\nbytes')], 0)), keepAttach, async (_d, host) => {
    const r = await runCli(host, ['run', '-t', 'busybox']);
    assert.equal(r.stdout, 'raw\r\nbytes');
    assert.equal(r.code, 0);
  });
});

test('run forwards SIGTERM to the container as kill?signal=TERM', { timeout: 20000 }, async () => {
  let child: ReturnType<typeof spawn> | undefined;
  const extra: Handler = (req, res, d) => {
    if (req.url.includes('/kill')) {
      res.writeHead(204).end();
      finish(d, [encodeFrame(2, Buffer.from('terminated\n'))], 143);
      return;
    }
    json(res, 404, { message: 'unexpected' });
  };
  await withDaemon(runHandler(() => child?.kill('SIGTERM'), extra), keepAttach, async (d, host) => {
    const r = await runCli(host, ['run', 'busybox', 'sleep', '100'], { onSpawn: (p) => (child = p) });
    assert.equal(r.code, 143);
    assert.equal(r.stderr, 'terminated\n');
    assert.ok(d.calls.includes(`POST /containers/${ID}/kill?signal=TERM`), d.calls.join('\n'));
  });
});

test('run: a missing image is one line and exit 125', { timeout: 20000 }, async () => {
  await withDaemon((_req, res) => json(res, 404, { message: 'No such image: nope:latest' }), undefined, async (_d, host) => {
    const r = await runCli(host, ['run', 'nope']);
    assert.equal(r.stderr, 'vessel: No such image: nope:latest\n');
    assert.equal(r.stdout, '');
    assert.equal(r.code, 125);
  });
});

test('run: a command that cannot be found exits 127', { timeout: 20000 }, async () => {
  const handler: Handler = (req, res, d) => {
    if (req.url.endsWith('/start')) {
      return json(res, 400, { message: 'exec: "nope": executable file not found in $PATH' });
    }
    runHandler(() => undefined)(req, res, d);
  };
  await withDaemon(handler, keepAttach, async (_d, host) => {
    const r = await runCli(host, ['run', 'busybox', 'nope']);
    assert.equal(r.stderr, 'vessel: exec: "nope": executable file not found in $PATH\n');
    assert.equal(r.code, 127);
  });
});

test('usage errors: one line; 125 for run, 1 elsewhere', { timeout: 20000 }, async () => {
  const host = 'unix:///nonexistent/vessel.sock';
  let r = await runCli(host, ['run', '--memory', 'abc', 'busybox']);
  assert.deepEqual([r.stderr, r.code], ['vessel: Invalid size: abc\n', 125]);
  r = await runCli(host, ['run', '--bogus', 'busybox']);
  assert.deepEqual([r.stderr, r.code], ['vessel: unknown flag: --bogus\n', 125]);
  r = await runCli(host, ['stop', '--bogus', 'x']);
  assert.deepEqual([r.stderr, r.code], ['vessel: unknown flag: --bogus\n', 1]);
  r = await runCli(host, ['rename', 'a']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr.split('\n').length, 2);
});

test('with no daemon listening: exactly one "Cannot connect" line, non-zero exit', { timeout: 20000 }, async () => {
  const sock = join(tempDir('vessel-none-'), 'none.sock');
  for (const args of [['ps'], ['run', 'busybox'], ['images']]) {
    const r = await runCli(`unix://${sock}`, args);
    assert.equal(r.stderr, `vessel: Cannot connect to the Vessel daemon at unix://${sock}: is vesseld running?\n`);
    assert.notEqual(r.code, 0);
  }
});

