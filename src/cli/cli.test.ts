/**
 * End-to-end tests of the built CLI (`node bin/vessel`) against a small
 * in-test HTTP server on a unix socket that stands in for vesseld and records
 * exactly what the CLI sends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import type net from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeFrame } from '../api/stdcopy.js';

const BIN = fileURLToPath(new URL('../../../bin/vessel', import.meta.url));
const ID = 'c0ffee'.padEnd(64, '0');

interface Recorded {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

type Handler = (req: Recorded, res: http.ServerResponse, daemon: FakeDaemon) => void;
type UpgradeHandler = (req: Recorded, socket: net.Socket, daemon: FakeDaemon) => void;

class FakeDaemon {
  readonly requests: Recorded[] = [];
  readonly server: http.Server;
  readonly socketPath: string;
  /** Open hijacked sockets and pending wait responses, by purpose. */
  attach?: net.Socket;
  waitRes?: http.ServerResponse;
  readonly #hijacked = new Set<net.Socket>();

  constructor(handler: Handler, upgrade?: UpgradeHandler) {
    this.socketPath = join(mkdtempSync(join(tmpdir(), 'vessel-cli-')), 'd.sock');
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const rec = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() };
        this.requests.push(rec);
        handler(rec, res, this);
      });
    });
    this.server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
      const rec = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: '' };
      this.requests.push(rec);
      this.#hijacked.add(socket);
      socket.write('HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
      upgrade?.(rec, socket, this);
    });
  }

  listen(): Promise<void> {
    return new Promise((r) => this.server.listen(this.socketPath, r));
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    // Hijacked sockets are no longer tracked by the HTTP server.
    for (const s of this.#hijacked) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }

  /** "POST /containers/create?name=web" style summaries, without the version prefix. */
  get calls(): string[] {
    return this.requests.map((r) => `${r.method} ${r.url.replace(/^\/v1\.41/, '')}`);
  }
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(
  host: string,
  args: string[],
  opts: { stdin?: string; onSpawn?: (p: ReturnType<typeof spawn>) => void } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, '--host', host, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    if (opts.stdin !== undefined) child.stdin.end(opts.stdin);
    opts.onSpawn?.(child);
  });
}

async function withDaemon(handler: Handler, upgrade: UpgradeHandler | undefined, fn: (d: FakeDaemon, host: string) => Promise<void>) {
  const d = new FakeDaemon(handler, upgrade);
  await d.listen();
  try {
    await fn(d, `unix://${d.socketPath}`);
  } finally {
    await d.close();
  }
}

/** A daemon for `run`: create, attach, wait (headers flushed at once), start. */
function runHandler(onStart: (d: FakeDaemon) => void, extra?: Handler): Handler {
  return (req, res, d) => {
    if (req.url.startsWith('/v1.41/containers/create')) return json(res, 201, { Id: ID, Warnings: [] });
    if (req.url.includes('/wait')) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      d.waitRes = res;
      return;
    }
    if (req.url.endsWith('/start')) {
      res.writeHead(204).end();
      setTimeout(() => onStart(d), 20);
      return;
    }
    if (extra) return extra(req, res, d);
    json(res, 404, { message: `unexpected ${req.method} ${req.url}` });
  };
}

const finish = (d: FakeDaemon, frames: Buffer[], status: number) => {
  for (const f of frames) d.attach?.write(f);
  d.attach?.end();
  setTimeout(() => d.waitRes?.end(JSON.stringify({ StatusCode: status, Error: null }) + '\n'), 20);
};

const keepAttach: UpgradeHandler = (_req, socket, d) => {
  d.attach = socket;
};

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
    assert.deepEqual(d.calls, [
      'POST /containers/create',
      `POST /containers/${ID}/attach?stream=1&stdout=1&stderr=1`,
      `POST /containers/${ID}/wait?condition=next-exit`,
      `POST /containers/${ID}/start`,
    ]);
    const attach = d.requests[1]!;
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
    assert.equal(d.calls[1], `POST /containers/${ID}/attach?stream=1&stdout=1&stderr=1&stdin=1`);
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
  assert.deepEqual([r.stderr, r.code], ["vessel: invalid size: 'abc'\n", 125]);
  r = await runCli(host, ['run', '--bogus', 'busybox']);
  assert.deepEqual([r.stderr, r.code], ['vessel: unknown flag: --bogus\n', 125]);
  r = await runCli(host, ['stop', '--bogus', 'x']);
  assert.deepEqual([r.stderr, r.code], ['vessel: unknown flag: --bogus\n', 1]);
  r = await runCli(host, ['rename', 'a']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr.split('\n').length, 2);
});

test('with no daemon listening: exactly one "Cannot connect" line, non-zero exit', { timeout: 20000 }, async () => {
  const sock = join(mkdtempSync(join(tmpdir(), 'vessel-none-')), 'none.sock');
  for (const args of [['ps'], ['run', 'busybox'], ['images']]) {
    const r = await runCli(`unix://${sock}`, args);
    assert.equal(r.stderr, `vessel: Cannot connect to the Vessel daemon at unix://${sock}: is vesseld running?\n`);
    assert.notEqual(r.code, 0);
  }
});

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

test('image import streams the file as the body and renders the progress stream', { timeout: 20000 }, async () => {
  const tar = join(mkdtempSync(join(tmpdir(), 'vessel-tar-')), 'rootfs.tar');
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
