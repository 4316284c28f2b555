import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMount } from '../cli/container-config.js';
import { parseBind } from '../container/run-config.js';
import type { ContainerSpec } from '../container/model.js';
import { cleanDestination, planApiMount, planBind, planMounts } from './mounts.js';

const spec = (hc: ContainerSpec['HostConfig'], volumes?: Record<string, object>): ContainerSpec => ({
  Config: { Image: 'busybox', ...(volumes ? { Volumes: volumes } : {}) },
  HostConfig: hc,
});

test('parseBind: absolute sources are binds, names are volumes', () => {
  assert.deepEqual(parseBind('/h:/c'), { type: 'bind', source: '/h', destination: '/c', readonly: false, mode: '', nocopy: false });
  assert.deepEqual(parseBind('data:/c:ro'), { type: 'volume', source: 'data', destination: '/c', readonly: true, mode: 'ro', nocopy: false });
  assert.equal(parseBind('data:/c:nocopy').nocopy, true);
  assert.throws(() => parseBind('/h:/c:nocopy'), /invalid mode: nocopy/);
  assert.throws(() => parseBind('./rel:/c'), /relative host paths/);
  assert.throws(() => parseBind('a:/c'), /invalid characters for a local volume name/);
  assert.throws(() => parseBind('bad$name:/c'), /invalid characters/);
  assert.throws(() => parseBind('data:rel'), /destination must be an absolute path/);
  assert.throws(() => parseBind('data:/c:ro,rw'), /invalid mode/);
});

test('cleanDestination normalises and refuses / and relative paths', () => {
  assert.equal(cleanDestination('/a//b/../c/'), '/a/c');
  assert.throws(() => cleanDestination('/'), /cannot be '\/'/);
  assert.throws(() => cleanDestination('/..'), /cannot be '\/'/);
  assert.throws(() => cleanDestination('x'), /absolute/);
});

test('planBind keeps propagation of binds', () => {
  assert.deepEqual(planBind('/h:/c:ro,rshared'), {
    type: 'bind', source: '/h', destination: '/c', readonly: true, propagation: 'rshared', mode: 'ro,rshared', createSource: true,
  });
});

test('planApiMount: Docker mount objects', () => {
  assert.deepEqual(planApiMount({ Type: 'volume', Source: 'vv', Target: '/d', ReadOnly: true, VolumeOptions: { NoCopy: true, Labels: { a: 'b' } } }), {
    type: 'volume', name: 'vv', destination: '/d', readonly: true, nocopy: true, mode: '', labels: { a: 'b' },
  });
  assert.equal((planApiMount({ Type: 'volume', Target: '/d' }) as { name: string }).name, '');
  assert.deepEqual(planApiMount({ Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 1048576, Mode: 0o1777 } }), {
    type: 'tmpfs', destination: '/t', readonly: false, options: 'size=1048576,mode=1777',
  });
  const b = planApiMount({ Type: 'bind', Source: '/src', Target: '/dst', BindOptions: { Propagation: 'rslave' } });
  assert.equal(b.type === 'bind' && b.createSource, false);
  assert.throws(() => planApiMount({ Type: 'bind', Source: 'rel', Target: '/d' }), /must be absolute/);
  assert.throws(() => planApiMount({ Type: 'bind', Target: '/d' }), /field Source must not be empty/);
  assert.throws(() => planApiMount({ Type: 'tmpfs', Source: 'x', Target: '/d' }), /field Source must not be specified/);
  assert.throws(() => planApiMount({ Type: 'volume', Target: '/d', BindOptions: {} }), /BindOptions/);
  assert.throws(() => planApiMount({ Type: 'volume', Source: 'v', Target: '/d' }), /Invalid volume name/);
  assert.throws(() => planApiMount({ Type: 'npipe', Target: '/d' }), /mount type unknown/);
  assert.throws(() => planApiMount({ Type: 'volume', Source: 'vv' }), /Target must not be empty/);
  assert.throws(() => planApiMount({ Type: 'volume', Source: 'vv', Target: '/d', VolumeOptions: { DriverConfig: { Name: 'nfs' } } }), /driver not supported/);
});

test('planMounts: explicit mounts win over anonymous ones, duplicates are refused', () => {
  const plan = planMounts(
    spec({ Binds: ['/h:/a', 'named:/b'], Mounts: [{ Type: 'tmpfs', Target: '/c' }], Tmpfs: { '/d': '' } }, { '/anon': {}, '/a': {} }),
    { '/img': {}, '/b': {}, '/d': {} },
  );
  assert.deepEqual(
    plan.map((m) => [m.type, m.destination, m.type === 'volume' ? m.name : '']),
    [
      ['bind', '/a', ''],
      ['volume', '/b', 'named'],
      ['tmpfs', '/c', ''],
      ['volume', '/img', ''],
      ['volume', '/anon', ''],
    ],
  );
  assert.throws(() => planMounts(spec({ Binds: ['/h:/a', 'vv:/a/'] })), /Duplicate mount point: \/a/);
  assert.throws(() => planMounts(spec({ Binds: ['/h:/a'], Mounts: [{ Type: 'volume', Target: '/a' }] })), /Duplicate mount point/);
  assert.throws(() => planMounts(spec({ Tmpfs: { '/a': '' }, Mounts: [{ Type: 'tmpfs', Target: '/a' }] })), /Duplicate mount point/);
});

test('CLI --mount parsing (Docker CSV syntax)', () => {
  assert.deepEqual(parseMount('type=volume,source=v,target=/d,readonly'), { Type: 'volume', Source: 'v', Target: '/d', ReadOnly: true });
  assert.deepEqual(parseMount('src=v,dst=/d'), { Type: 'volume', Source: 'v', Target: '/d', ReadOnly: false });
  assert.deepEqual(parseMount('type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1777'), {
    Type: 'tmpfs', Source: '', Target: '/t', ReadOnly: false, TmpfsOptions: { SizeBytes: 1048576, Mode: 0o1777 },
  });
  assert.deepEqual(parseMount('type=bind,source=/s,target=/t,ro=false,bind-propagation=rshared'), {
    Type: 'bind', Source: '/s', Target: '/t', ReadOnly: false, BindOptions: { Propagation: 'rshared' },
  });
  assert.deepEqual(parseMount('type=volume,target=/t,volume-nocopy,volume-label=a=b'), {
    Type: 'volume', Source: '', Target: '/t', ReadOnly: false, VolumeOptions: { NoCopy: true, Labels: { a: 'b' } },
  });
  assert.throws(() => parseMount('type=volume,source=v'), /target is required/);
  assert.throws(() => parseMount('type=bind,source=/s,target=/t,tmpfs-size=1m'), /cannot mix 'tmpfs-\*' options with mount type 'bind'/);
  assert.throws(() => parseMount('type=foo,target=/t'), /invalid mount type/);
  assert.throws(() => parseMount('type=volume,target=/t,bogus=1'), /unexpected key/);
  assert.throws(() => parseMount('type=tmpfs,target=/t,tmpfs-mode=999'), /tmpfs-mode/);
});
