/**
 * `vessel run` against a daemon that offers `POST /vessel/run`
 * (api/run-stream.ts): one hijacked request instead of Docker's sequence.
 * The stand-in daemon here is a plain socket server, so every byte the CLI
 * sends and receives is under the test's control.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { STATUS_FRAME } from '../api/run-stream.js';
import { encodeFrame, SYSTEMERR } from '../api/stdcopy.js';
import { ID, runCli } from './testing.js';

interface Seen {
  head: string;
  body: string;
  /** Bytes after the body: the container's stdin. */
  stdin: string;
  /** Other requests (kill for sig-proxy), by request line. */
  others: string[];
}

/**
 * Serves one `POST /vessel/run`: answers 101 with `headers`, then calls
 * `play` with the socket once the request body has arrived.
 */
async function withRunDaemon(
  headers: string,
  play: (socket: net.Socket, seen: Seen) => void,
  fn: (host: string, seen: Seen) => Promise<void>,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vessel-cli-run1-'));
  const seen: Seen = { head: '', body: '', stdin: '', others: [] };
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    let buf = '';
    let bodyDone = false;
    socket.on('data', (d: Buffer) => {
      if (bodyDone) {
        seen.stdin += d.toString();
        return;
      }
      buf += d.toString();
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.slice(0, end);
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
      if (buf.length < end + 4 + length) return;
      bodyDone = true;
      if (!head.includes('/vessel/run')) {
        seen.others.push(head.split('\r\n')[0]!);
        socket.end('HTTP/1.1 204 No Content\r\n\r\n');
        return;
      }
      seen.head = head;
      seen.body = buf.slice(end + 4, end + 4 + length);
      seen.stdin = buf.slice(end + 4 + length);
      socket.write(`HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nx-vessel-container-id: ${ID}\r\n${headers}\r\n`);
      play(socket, seen);
    });
    socket.on('error', () => undefined);
  });
  const path = join(dir, 'd.sock');
  await new Promise<void>((r) => server.listen(path, r));
  try {
    await fn(`unix://${path}`, seen);
  } finally {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  }
}

const status = (code: number) => encodeFrame(STATUS_FRAME, Buffer.from(JSON.stringify({ StatusCode: code, Error: null })));

test('run: one request, output demuxed, exit status from the status frame, create warnings printed', { timeout: 20000 }, async () => {
  const warnings = encodeURIComponent(JSON.stringify(['memory limit ignored']));
  await withRunDaemon(
    `x-vessel-warnings: ${warnings}\r\n`,
    (socket) => {
      socket.write(Buffer.concat([encodeFrame(1, Buffer.from('out\n')), encodeFrame(2, Buffer.from('err\n'))]));
      setTimeout(() => socket.end(Buffer.concat([encodeFrame(1, Buffer.from('more\n')), status(3)])), 20);
    },
    async (host, seen) => {
      const r = await runCli(host, ['run', '--rm', '--name', 'web', 'busybox', 'sh', '-c', 'exit 3']);
      assert.equal(r.stdout, 'out\nmore\n');
      assert.equal(r.stderr, 'WARNING: memory limit ignored\nerr\n');
      assert.equal(r.code, 3);
      assert.match(seen.head, /^POST \/v1\.41\/vessel\/run\?name=web HTTP\/1\.1\r\n/);
      assert.match(seen.head, /\r\nUpgrade: tcp\r\n/i);
      const body = JSON.parse(seen.body);
      assert.equal(body.Image, 'busybox');
      assert.deepEqual(body.Cmd, ['sh', '-c', 'exit 3']);
      assert.equal(body.HostConfig.AutoRemove, true);
    },
  );
});

test('run -i: stdin follows the request body on the same connection', { timeout: 20000 }, async () => {
  await withRunDaemon(
    '',
    (socket, seen) => {
      socket.on('end', () => socket.end(Buffer.concat([encodeFrame(1, Buffer.from(seen.stdin.toUpperCase())), status(0)])));
    },
    async (host) => {
      const r = await runCli(host, ['run', '-i', 'busybox', 'cat'], { stdin: 'hello\n' });
      assert.equal(r.stdout, 'HELLO\n');
      assert.equal(r.code, 0);
    },
  );
});

test('run: a failed start (system error frame) exits 127 for a missing command', { timeout: 20000 }, async () => {
  const msg = 'Failed to create container: exec: "nope": executable file not found in $PATH';
  await withRunDaemon(
    '',
    (socket) => socket.end(encodeFrame(SYSTEMERR, Buffer.from(msg))),
    async (host) => {
      const r = await runCli(host, ['run', 'busybox', 'nope']);
      assert.equal(r.stderr, `vessel: ${msg}\n`);
      assert.equal(r.code, 127);
    },
  );
});

test('run: a stream that ends without a status is an error, not exit 0', { timeout: 20000 }, async () => {
  await withRunDaemon(
    '',
    (socket) => socket.end(encodeFrame(1, Buffer.from('partial\n'))),
    async (host) => {
      const r = await runCli(host, ['run', 'busybox', 'true']);
      assert.equal(r.stdout, 'partial\n');
      assert.equal(r.stderr, 'vessel: Error waiting for container: unexpected EOF\n');
      assert.equal(r.code, 125);
    },
  );
});
