import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { followFile } from './follow-file.js';

test('followFile() reads a growing file up to each announced size and ends at end()', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'vessel-follow-'));
  const file = path.join(dir, 'blob');
  const w = await fsp.open(file, 'w');
  const r = await fsp.open(file, 'r');
  try {
    const f = followFile(r.fd);
    const got: Buffer[] = [];
    const reading = (async () => {
      for await (const c of f.stream) got.push(c as Buffer);
    })();
    await w.write('hello ');
    f.grow(6);
    await w.write('world, and bytes not announced yet');
    f.grow(11);
    await new Promise((res) => setImmediate(res));
    f.end();
    await reading;
    assert.equal(Buffer.concat(got).toString(), 'hello world');
  } finally {
    await w.close();
    await r.close();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('followFile() fails when the file is shorter than announced', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'vessel-follow-'));
  const file = path.join(dir, 'blob');
  await fsp.writeFile(file, 'abc');
  const r = await fsp.open(file, 'r');
  try {
    const f = followFile(r.fd);
    f.grow(10);
    f.end();
    await assert.rejects(
      (async () => {
        for await (const _ of f.stream);
      })(),
      /Blob file ended at 3 bytes, 10 were announced/,
    );
  } finally {
    await r.close();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
