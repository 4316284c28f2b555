import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  ConflictError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  NotModifiedError,
  UnavailableError,
} from '../core/errors.js';
import { jsonLines, parseHost, VesselClient } from './client.js';
import { tempDir } from '../core/test-temp-dirs.js';


async function serve(
  handler: http.RequestListener,
  onUpgrade?: (req: http.IncomingMessage, socket: net.Socket) => void,
): Promise<{ client: VesselClient; close: () => Promise<void> }> {
  const sock = join(tempDir('vessel-client-'), 's.sock');
  const server = http.createServer(handler);
  const hijacked: net.Socket[] = [];
  if (onUpgrade) {
    server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
      hijacked.push(socket);
      onUpgrade(req, socket);
    });
  }
  await new Promise<void>((r) => server.listen(sock, r));
  const client = new VesselClient(`unix://${sock}`);
  return {
    client,
    close: () => {
      client.close();
      server.closeAllConnections();
      for (const s of hijacked) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

test('parseHost', () => {
  assert.deepEqual(parseHost('unix:///run/vessel/vessel.sock'), { kind: 'unix', socketPath: '/run/vessel/vessel.sock' });
  assert.deepEqual(parseHost('/tmp/x.sock'), { kind: 'unix', socketPath: '/tmp/x.sock' });
  assert.deepEqual(parseHost('tcp://127.0.0.1:2375'), { kind: 'tcp', hostname: '127.0.0.1', port: 2375 });
  assert.deepEqual(parseHost('tcp://[::1]:9'), { kind: 'tcp', hostname: '::1', port: 9 });
  assert.throws(() => parseHost('ssh://x'), InvalidArgumentError);
  assert.throws(() => parseHost('unix://relative'), InvalidArgumentError);
});

test('url: version prefix, booleans as 1/0, empty values dropped', () => {
  const c = new VesselClient('unix:///x');
  assert.equal(c.url('/containers/json', { all: true, size: false, filters: undefined, limit: 3 }), '/v1.41/containers/json?all=1&size=0&limit=3');
  assert.equal(c.url('/_ping'), '/v1.41/_ping');
});

test('json: sends JSON bodies and decodes responses', async () => {
  let seen: { method?: string; url?: string; type?: string; body: string } = { body: '' };
  const s = await serve((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      seen = { method: req.method, url: req.url, type: req.headers['content-type'], body };
      res.writeHead(201, { 'Content-Type': 'application/json' }).end('{"Id":"abc","Warnings":[]}');
    });
  });
  try {
    const r = await s.client.json<{ Id: string }>('POST', '/containers/create', { query: { name: 'web' }, body: { Image: 'busybox' } });
    assert.equal(r.Id, 'abc');
    assert.deepEqual(seen, { method: 'POST', url: '/v1.41/containers/create?name=web', type: 'application/json', body: '{"Image":"busybox"}' });
  } finally {
    await s.close();
  }
});

test('status codes map to error classes carrying the daemon message', async () => {
  const s = await serve((req, res) => {
    const status = Number(req.url?.split('/').pop());
    if (status === 304) return void res.writeHead(304).end();
    res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify({ message: `msg ${status}` }));
  });
  try {
    const cases: Array<[number, new (...a: never[]) => Error]> = [
      [404, NotFoundError],
      [409, ConflictError],
      [400, InvalidArgumentError],
      [304, NotModifiedError],
      [500, InternalError],
      [503, InternalError],
    ];
    for (const [status, cls] of cases) {
      await assert.rejects(s.client.call('POST', `/x/${status}`), (e: Error) => {
        assert.ok(e instanceof cls, `${status} -> ${e.name}`);
        if (status !== 304) assert.equal(e.message, `msg ${status}`);
        return true;
      });
    }
  } finally {
    await s.close();
  }
});

test('a non-JSON error body is used as the message', async () => {
  const s = await serve((_req, res) => res.writeHead(500).end('plain failure\nsecond line'));
  try {
    await assert.rejects(s.client.json('GET', '/info'), { name: 'InternalError', message: 'plain failure' });
  } finally {
    await s.close();
  }
});

test('connection failures become one UnavailableError', async () => {
  const sock = join(tempDir('vessel-client-'), 'none.sock');
  const c = new VesselClient(`unix://${sock}`);
  await assert.rejects(c.json('GET', '/version'), (e: Error) => {
    assert.ok(e instanceof UnavailableError);
    assert.equal(e.message, `Cannot connect to the Vessel daemon at unix://${sock}: is vesseld running?`);
    return true;
  });
  await assert.rejects(c.upgrade('POST', '/containers/x/attach'), UnavailableError);
});

test('upgrade: sends Connection/Upgrade headers and hands over the raw socket, including early bytes', async () => {
  let headers: http.IncomingHttpHeaders = {};
  const s = await serve(
    () => undefined,
    (req, socket) => {
      headers = req.headers;
      // The first payload arrives in the same packet as the 101.
      socket.write('HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nearly;');
      socket.on('data', (d: Buffer) => socket.end(`echo:${d.toString()}`));
    },
  );
  try {
    const sock = await s.client.upgrade('POST', '/containers/x/attach', { query: { stream: true } });
    assert.equal(headers.connection, 'Upgrade');
    assert.equal(headers.upgrade, 'tcp');
    let got = '';
    sock.on('data', (d: Buffer) => (got += d.toString()));
    sock.write('ping');
    await new Promise((r) => sock.on('close', r));
    assert.equal(got, 'early;echo:ping');
  } finally {
    await s.close();
  }
});

test('upgrade: a normal error response rejects with the daemon message', async () => {
  const s = await serve((_req, res) => {
    res.writeHead(409, { 'Content-Type': 'application/json' }).end('{"message":"container is not running"}');
  });
  try {
    await assert.rejects(s.client.upgrade('POST', '/exec/x/start'), { name: 'ConflictError', message: 'container is not running' });
  } finally {
    await s.close();
  }
});

test('stream + jsonLines: objects split across chunks and multi-byte characters survive', async () => {
  const s = await serve((_req, res) => {
    res.writeHead(200);
    const text = Buffer.from('{"status":"héllo"}\n{"status":"two"}\n{"stat');
    res.write(text.subarray(0, 13)); // splits the é
    setTimeout(() => res.end(Buffer.concat([text.subarray(13), Buffer.from('us":"three"}')])), 10);
  });
  try {
    const res = await s.client.stream('POST', '/images/create');
    const got: unknown[] = [];
    for await (const { value } of jsonLines(res)) got.push(value);
    assert.deepEqual(got, [{ status: 'héllo' }, { status: 'two' }, { status: 'three' }]);
  } finally {
    await s.close();
  }
});

test('a Readable body is streamed', async () => {
  let received = 0;
  const s = await serve((req, res) => {
    req.on('data', (c: Buffer) => (received += c.length));
    req.on('end', () => res.writeHead(200).end('{}'));
  });
  try {
    await s.client.json('POST', '/images/create', { body: Readable.from([Buffer.alloc(1000), Buffer.alloc(24)]) });
    assert.equal(received, 1024);
  } finally {
    await s.close();
  }
});
