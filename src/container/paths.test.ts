import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { containerPaths, daemonPaths, execRootFor } from './paths.js';

const id = 'a'.repeat(64);

test('the exec root goes on the first tmpfs offered, named after the root, else under the root', () => {
  const disk = mkdtempSync(path.join('/var/tmp', 'vessel-paths-')); // not a tmpfs on any usual host
  try {
    const onShm = execRootFor('/srv/v1', [disk, '/dev/shm']);
    assert.match(onShm, /^\/dev\/shm\/vessel-[0-9a-f]{8}$/);
    assert.notEqual(execRootFor('/srv/v2', ['/dev/shm']), onShm, 'two roots, two exec roots');
    assert.equal(execRootFor('/srv/v1/', ['/dev/shm']), onShm, 'the same root spelled differently');
    assert.equal(execRootFor('/srv/v1', [disk, '/nonexistent']), '/srv/v1/run');
    assert.equal(daemonPaths('/srv/v1').cgroupParent.replace('/vessel-', ''), onShm.replace('/dev/shm/vessel-', ''), 'one tag per root');
  } finally {
    rmSync(disk, { recursive: true, force: true });
  }
});

test('runtime files of a container live in its bundle on the exec root; its layer and log under the root', () => {
  const p = daemonPaths('/srv/v1', '/dev/shm/x');
  assert.equal(p.run, '/dev/shm/x');
  assert.equal(p.runtimeRoot, '/dev/shm/x/runtime');
  assert.equal(p.exits, '/dev/shm/x/exits');
  const c = containerPaths(p, id);
  for (const f of [c.specFile, c.persist, c.conmonPidFile, c.hostname, c.hosts, c.resolvConf, c.execs]) {
    assert.equal(path.dirname(f), c.bundle, f);
  }
  assert.equal(c.bundle, `/dev/shm/x/containers/${id}`);
  for (const f of [c.upper, c.work, c.rootfs, c.log]) assert.equal(path.dirname(f), `/srv/v1/containers/${id}`, f);
  assert.equal(path.dirname(c.pidFile), p.pids);
});
