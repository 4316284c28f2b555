import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { userDataScript } from './cloud-init.js';

test('a script passes through unchanged', () => {
  assert.equal(userDataScript('#!/bin/sh\necho hi\n'), '#!/bin/sh\necho hi\n');
});

test('#cloud-config becomes a script that writes files and runs commands (run for real with sh)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vessel-ci-'));
  try {
    const script = userDataScript(`#cloud-config
write_files:
  - path: ${dir}/a/b.txt
    content: "it's here\\n"
    permissions: '0640'
  - path: ${dir}/c.bin
    encoding: b64
    content: aGVsbG8=
runcmd:
  - echo one > ${dir}/one
  - [sh, -c, "echo two > ${dir}/two"]
`);
    const r = spawnSync('sh', ['-c', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(`${dir}/a/b.txt`, 'utf8'), "it's here\n");
    assert.equal(statSync(`${dir}/a/b.txt`).mode & 0o777, 0o640);
    assert.equal(readFileSync(`${dir}/c.bin`, 'utf8'), 'hello');
    assert.equal(readFileSync(`${dir}/one`, 'utf8'), 'one\n');
    assert.equal(readFileSync(`${dir}/two`, 'utf8'), 'two\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('packages become apt-get; unsupported keys and bad input are one line', () => {
  assert.match(userDataScript('#cloud-config\npackages: [curl, jq]\n'), /apt-get install -y -q --no-install-recommends curl jq/);
  assert.throws(() => userDataScript('#cloud-config\nusers: []\n'), /unsupported key users/);
  assert.throws(() => userDataScript('hello'), /must start with/);
  assert.throws(() => userDataScript('#cloud-config\npackages: ["a;rm -rf /"]\n'), /invalid package name/);
  assert.throws(() => userDataScript('#cloud-config\nwrite_files: [{path: rel}]\n'), /absolute path/);
});
