/**
 * `run -it` on a real pseudo-terminal (util-linux `script` provides one):
 * raw mode, the initial resize, stdin bytes passed through unframed, no
 * signal proxying, and the terminal settings restored afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { BIN, ID, json, runHandler, withDaemon, type UpgradeHandler } from './testing.js';

const hasScript = spawnSync('script', ['--version']).status === 0;

test('run -it: raw terminal, resize, raw stdin, settings restored', { timeout: 20000 }, async () => {
  assert.ok(hasScript, 'script(1) from util-linux/bsdutils is needed to give the CLI a terminal');
  let typed = '';
  const upgrade: UpgradeHandler = (_req, socket, d) => {
    d.attach = socket;
    socket.on('data', (c: Buffer) => {
      typed += c.toString('latin1');
      // In raw mode the Enter key arrives as a bare \r, and ^C as \x03 (not a signal).
      if (typed.includes('\r')) {
        socket.end('got it\r\n');
        setTimeout(() => d.waitRes?.end('{"StatusCode":0,"Error":null}'), 20);
      }
    });
  };
  const extra = runHandler(() => undefined, (req, res) => {
    if (req.url.includes('/resize')) return void res.writeHead(200).end();
    json(res, 404, { message: 'unexpected' });
  });
  await withDaemon(extra, upgrade, async (d, host) => {
    const inner = `stty rows 30 cols 100; before=$(stty -g); "${process.execPath}" "${BIN}" --host ${host} run -it busybox sh; rc=$?; [ "$before" = "$(stty -g)" ] && echo TERMINAL-RESTORED; exit $rc`;
    const child = spawn('script', ['-qec', inner, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const started = setInterval(() => {
      if (d.calls.some((c) => c.includes('/resize'))) {
        clearInterval(started);
        child.stdin.write('\x03hi\r');
      }
    }, 20);
    const code = await new Promise<number | null>((r) => child.on('close', r));
    clearInterval(started);
    assert.equal(code, 0, out);
    assert.ok(out.includes('got it'), out);
    assert.ok(out.includes('TERMINAL-RESTORED'), out);
    assert.equal(typed, '\x03hi\r');
    assert.ok(d.calls.includes(`POST /containers/${ID}/resize?h=30&w=100`), d.calls.join('\n'));
    assert.ok(!d.calls.some((c) => c.includes('/kill')), 'no signal proxying with a TTY');
    const body = JSON.parse(d.requests[0]!.body);
    assert.deepEqual([body.Tty, body.OpenStdin, body.AttachStdin], [true, true, true]);
  });
});
