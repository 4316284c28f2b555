/** End-to-end tests of the other commands (the built CLI) against a recording stand-in daemon. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeFrame } from '../api/stdcopy.js';
import { finish, ID, json, keepAttach, runCli, runHandler, withDaemon, type Handler, type UpgradeHandler } from './testing.js';
import { tempDir } from '../core/test-temp-dirs.js';


test('exec: create, upgrade start, exit code from exec inspect', { timeout: 20000 }, async () => {
  const handler: Handler = (req, res) => {
    if (req.url === '/v1.41/containers/web/json') return json(res, 200, { Id: ID, Config: { Tty: false } });
    if (req.url === '/v1.41/containers/web/exec') return json(res, 201, { Id: 'e1' });
    if (req.url === '/v1.41/exec/e1/json') return json(res, 200, { Running: false, ExitCode: 7 });
    json(res, 404, { message: 'unexpected' });
  };
  const upgrade: UpgradeHandler = (_req, socket) => {
    socket.end(Buffer.concat([encodeFrame(1, Buffer.from('hi\n')), encodeFrame(2, Buffer.from('oops\n'))]));
  };
  await withDaemon(handler, upgrade, async (d, host) => {
    const r = await runCli(host, ['exec', '-e', 'X=1', 'web', 'sh', '-c', 'exit 7']);
    assert.deepEqual([r.stdout, r.stderr, r.code], ['hi\n', 'oops\n', 7]);
    assert.deepEqual(d.calls, ['GET /containers/web/json', 'POST /containers/web/exec', 'POST /exec/e1/start', 'GET /exec/e1/json']);
    const body = JSON.parse(d.requests[1]!.body);
    assert.deepEqual(body.Cmd, ['sh', '-c', 'exit 7']);
    assert.deepEqual(body.Env, ['X=1']);
    assert.equal(body.AttachStdout, true);
    assert.equal(body.Tty, false);
  });
});

test('logs: inspect for Tty, then demuxed logs with the query Docker sends', { timeout: 20000 }, async () => {
  const handler: Handler = (req, res) => {
    if (req.url === '/v1.41/containers/web/json') return json(res, 200, { Id: ID, Config: { Tty: false } });
    if (req.url.startsWith(`/v1.41/containers/${ID}/logs`)) {
      res.writeHead(200);
      res.end(Buffer.concat([encodeFrame(1, Buffer.from('a\n')), encodeFrame(2, Buffer.from('b\n'))]));
      return;
    }
    json(res, 404, { message: 'No such container: x' });
  };
  await withDaemon(handler, undefined, async (d, host) => {
    const r = await runCli(host, ['logs', '--tail', '5', '-t', 'web']);
    assert.deepEqual([r.stdout, r.stderr, r.code], ['a\n', 'b\n', 0]);
    assert.equal(d.calls[1], `GET /containers/${ID}/logs?stdout=1&stderr=1&tail=5&timestamps=1`);
  });
});

test('stop: names echoed, 304 is success, failures reported on one line', { timeout: 20000 }, async () => {
  const handler: Handler = (req, res) => {
    if (req.url.includes('/a/stop')) return void res.writeHead(204).end();
    if (req.url.includes('/b/stop')) return void res.writeHead(304).end();
    json(res, 404, { message: 'No such container: c' });
  };
  await withDaemon(handler, undefined, async (d, host) => {
    const r = await runCli(host, ['stop', '-t', '2', 'a', 'b', 'c']);
    assert.deepEqual([r.stdout, r.stderr, r.code], ['a\nb\n', 'vessel: No such container: c\n', 1]);
    assert.equal(d.calls[0], 'POST /containers/a/stop?t=2');
  });
});

test('inspect: container then image fallback; --format template', { timeout: 20000 }, async () => {
  const handler: Handler = (req, res) => {
    if (req.url === '/v1.41/containers/web/json') return json(res, 200, { Name: '/web', State: { Status: 'running', ExitCode: 0 } });
    if (req.url === '/v1.41/images/busybox:latest/json') return json(res, 200, { Id: 'sha256:1', RepoTags: ['busybox:latest'] });
    json(res, 404, { message: 'No such thing' });
  };
  await withDaemon(handler, undefined, async (d, host) => {
    let r = await runCli(host, ['inspect', '-f', '{{.State.Status}} {{json .State}}', 'web']);
    assert.equal(r.stdout, 'running {"Status":"running","ExitCode":0}\n');
    r = await runCli(host, ['inspect', 'busybox:latest']);
    assert.deepEqual(JSON.parse(r.stdout), [{ Id: 'sha256:1', RepoTags: ['busybox:latest'] }]);
    assert.ok(d.calls.includes('GET /containers/busybox:latest/json'));
    r = await runCli(host, ['inspect', 'ghost']);
    assert.deepEqual([r.stderr, r.code], ['vessel: No such object: ghost\n', 1]);
  });
});

test('ps: filters in map form, table columns', { timeout: 20000 }, async () => {
  const now = Math.floor(Date.now() / 1000);
  const handler: Handler = (_req, res) =>
    json(res, 200, [
      { Id: ID, Names: ['/web'], Image: 'busybox', Command: 'sleep 60', Created: now - 5, Status: 'Up 5 seconds', State: 'running', Ports: [] },
    ]);
  await withDaemon(handler, undefined, async (d, host) => {
    const r = await runCli(host, ['ps', '-a', '--filter', 'status=running', '--filter', 'label=a=b']);
    assert.equal(r.code, 0);
    const [header, row] = r.stdout.split('\n');
    assert.match(header!, /^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$/);
    assert.match(row!, /^c0ffee000000\s+busybox\s+"sleep 60"\s+\d+ seconds ago\s+Up 5 seconds\s+web$/);
    const url = new URL(d.requests[0]!.url, 'http://x');
    assert.equal(url.searchParams.get('all'), '1');
    assert.deepEqual(JSON.parse(url.searchParams.get('filters')!), { status: { running: true }, label: { 'a=b': true } });
  });
});

test('the CLI bundle bin/vessel runs is pure ASCII, and its non-ASCII text still prints intact', { timeout: 20000 }, async () => {
  const bundle = fileURLToPath(new URL('../../cli/vessel.cjs', import.meta.url));
  assert.equal(readFileSync(bundle).findIndex((b) => b > 0x7f), -1, `${bundle} has a non-ASCII byte`);
  const handler: Handler = (_req, res) =>
    json(res, 200, [{ Id: ID, Names: ['/café'], Image: 'busybox', Command: 'sh -c "sleep 1000; echo done"', Created: 0, Status: 'Up', State: 'running', Ports: [] }]);
  await withDaemon(handler, undefined, async (_d, host) => {
    const r = await runCli(host, ['ps', '--format', '{{.Command}} {{.Names}}']);
    assert.equal(r.stdout, '"sh -c \\"sleep 1000; …" café\n', r.stderr);
  });
});

test('image import streams the file as the body and renders the progress stream', { timeout: 20000 }, async () => {
  const tar = join(tempDir('vessel-tar-'), 'rootfs.tar');
  writeFileSync(tar, Buffer.alloc(4096, 7));
  const imageId = `sha256:${'9'.repeat(64)}`;
  const handler: Handler = (req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(`${JSON.stringify({ status: 'Importing', progressDetail: { current: req.body.length } })}\n${JSON.stringify({ status: imageId })}\n`);
  };
  await withDaemon(handler, undefined, async (d, host) => {
    let r = await runCli(host, ['image', 'import', tar, 'myimg:1']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, `Importing 4.1kB\n${imageId}\n`);
    assert.equal(d.calls[0], 'POST /images/create?fromSrc=-&repo=myimg&tag=1');
    assert.equal(d.requests[0]!.headers['content-type'], 'application/x-tar');
    assert.equal(d.requests[0]!.body.length, 4096);
    r = await runCli(host, ['image', 'import', '-q', tar, 'myimg:1']);
    assert.equal(r.stdout, `${imageId}\n`);
  });
});

test('image bootstrap: an error in the stream is one line and exit 1', { timeout: 20000 }, async () => {
  const handler: Handler = (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(`{"status":"Fetching busybox"}\n{"error":"download failed","errorDetail":{"message":"download failed"}}\n`);
  };
  await withDaemon(handler, undefined, async (d, host) => {
    const r = await runCli(host, ['image', 'bootstrap', 'busybox']);
    assert.deepEqual([r.stdout, r.stderr, r.code], ['Fetching busybox\n', 'vessel: download failed\n', 1]);
    assert.equal(d.calls[0], 'POST /vessel/images/bootstrap?image=busybox');
  });
});

test('start -a: inspect, attach, wait, start; exits with the container status', { timeout: 20000 }, async () => {
  const handler = runHandler(
    (d) => finish(d, [encodeFrame(1, Buffer.from('again\n'))], 5),
    (req, res) => {
      if (req.url === '/v1.41/containers/web/json') {
        return json(res, 200, { Id: ID, Config: { Tty: false, OpenStdin: false }, HostConfig: { AutoRemove: false } });
      }
      json(res, 404, { message: 'unexpected' });
    },
  );
  await withDaemon(handler, keepAttach, async (d, host) => {
    const r = await runCli(host, ['start', '-a', 'web']);
    assert.deepEqual([r.stdout, r.stderr, r.code], ['again\n', '', 5]);
    assert.deepEqual(
      [d.calls[0], [d.calls[1], d.calls[2]].sort(), d.calls[3], d.calls.length],
      [
        'GET /containers/web/json',
        [`POST /containers/${ID}/attach?stream=1&stdout=1&stderr=1`, `POST /containers/${ID}/wait?condition=next-exit`],
        `POST /containers/${ID}/start`,
        4,
      ],
    );
  });
});

test('images table and rmi output', { timeout: 20000 }, async () => {
  const now = Math.floor(Date.now() / 1000);
  const handler: Handler = (req, res) => {
    if (req.url === '/v1.41/images/json') {
      return json(res, 200, [{ Id: `sha256:${'a'.repeat(64)}`, RepoTags: ['busybox:latest'], Created: now - 3600, Size: 4_261_000 }]);
    }
    if (req.method === 'DELETE' && req.url === '/v1.41/images/busybox:latest?force=1') {
      return json(res, 200, [{ Untagged: 'busybox:latest' }, { Deleted: `sha256:${'a'.repeat(64)}` }]);
    }
    json(res, 404, { message: `No such image: ${req.url}` });
  };
  await withDaemon(handler, undefined, async (_d, host) => {
    let r = await runCli(host, ['images']);
    assert.equal(
      r.stdout,
      `REPOSITORY   TAG       IMAGE ID       CREATED             SIZE\nbusybox      latest    ${'a'.repeat(12)}   About an hour ago   4.26MB\n`,
    );
    r = await runCli(host, ['rmi', '-f', 'busybox:latest']);
    assert.equal(r.stdout, `Untagged: busybox:latest\nDeleted: sha256:${'a'.repeat(64)}\n`);
    assert.equal(r.code, 0);
  });
});
