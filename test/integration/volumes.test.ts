/**
 * Named and anonymous volumes, `--mount` and `-v` forms: persistence across
 * container removal and daemon restarts, pre-population from the image,
 * in-use protection, ls/inspect/prune, read-only mounts, `rm -v`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, type Stats, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TestDaemon } from '../framework/daemon.js';
import { assertId, assertOneLineError, imageLowerDirs, inspectJson } from '../framework/helpers.js';

let d: TestDaemon;

before(async () => {
  d = new TestDaemon();
  await d.start();
  await d.ensureBusybox();
});

after(async () => {
  await d?.destroy();
});

const dataDir = (name: string): string => path.join(d.stateRoot, 'volumes', name, '_data');

async function volumeNames(): Promise<string[]> {
  return (await d.ok(['volume', 'ls', '-q'])).split('\n').filter(Boolean);
}

test('volume data survives container removal and a daemon restart', async () => {
  assert.equal(await d.ok(['volume', 'create', 'keep']), 'keep\n');
  await d.ok(['run', '--rm', '-v', 'keep:/data', 'busybox', 'sh', '-c', 'echo persisted > /data/f']);
  assert.equal(readFileSync(path.join(dataDir('keep'), 'f'), 'utf8'), 'persisted\n');
  // A named volume that does not exist yet is made at create time.
  const c = assertId(await d.ok(['create', '-v', 'auto:/data', 'busybox', 'true']));
  assert.ok((await volumeNames()).includes('auto'), 'auto-created volume missing from volume ls');
  await d.ok(['rm', c]);

  await d.stop();
  await d.restart();
  assert.equal(await d.ok(['run', '--rm', '-v', 'keep:/data', 'busybox', 'cat', '/data/f']), 'persisted\n');
  const info = JSON.parse(await d.ok(['volume', 'inspect', 'keep']))[0];
  assert.equal(info.Mountpoint, dataDir('keep'));
  assert.ok((await volumeNames()).includes('auto'), 'a volume was lost across the restart');
});

test('a new empty volume is pre-populated from the image once, keeping modes, owners and symlinks', async () => {
  const out = await d.ok(['run', '--rm', '-v', 'etcvol:/etc', 'busybox', 'cat', '/etc/passwd']);
  assert.match(out, /^root:/m);
  // What the image has at /etc is in the volume on the host, with the same metadata.
  const lowers: string[] = await imageLowerDirs(d, 'busybox');
  const imageEtc: string | undefined = lowers.map((l) => path.join(l, 'etc')).find((p) => existsSync(p));
  if (!imageEtc) throw new Error('the busybox image has no /etc');
  for (const name of readdirSync(imageEtc)) {
    const a: Stats = lstatSync(path.join(imageEtc, name));
    const b: Stats = lstatSync(path.join(dataDir('etcvol'), name));
    assert.equal(b.mode, a.mode, `mode of ${name}`);
    assert.equal(`${b.uid}:${b.gid}`, `${a.uid}:${a.gid}`, `owner of ${name}`);
    if (a.isSymbolicLink()) assert.equal(readlinkSync(path.join(dataDir('etcvol'), name)), readlinkSync(path.join(imageEtc, name)));
  }
  // Symlinks of the image (busybox's applet links) are copied as symlinks.
  await d.ok(['run', '--rm', '-v', 'binvol:/bin', 'busybox', '/bin/true']);
  assert.ok(lstatSync(path.join(dataDir('binvol'), 'sh')).isSymbolicLink(), '/bin/sh should stay a symlink');

  // Emptied later, it is never filled again.
  for (const e of readdirSync(dataDir('etcvol'))) rmSync(path.join(dataDir('etcvol'), e), { recursive: true, force: true });
  await d.ok(['run', '--rm', '-v', 'etcvol:/etc', 'busybox', 'true']);
  assert.ok(!existsSync(path.join(dataDir('etcvol'), 'passwd')), 'an emptied volume was pre-populated again');

  // A volume with content is not overwritten; nocopy never copies.
  await d.ok(['run', '--rm', '-v', 'mine:/data', 'busybox', 'sh', '-c', 'echo own > /data/own']);
  assert.equal(await d.ok(['run', '--rm', '-v', 'mine:/etc', 'busybox', 'ls', '/etc/own']), '/etc/own\n');
  assert.ok(!existsSync(path.join(dataDir('mine'), 'passwd')));
  await d.ok(['run', '--rm', '-v', 'nocp:/etc:nocopy', 'busybox', 'true']);
  assert.ok(!existsSync(path.join(dataDir('nocp'), 'passwd')), 'nocopy volume was pre-populated');
});

test('removing a volume that a container uses is refused, in any container state', async () => {
  await d.ok(['volume', 'create', 'busy']);
  const c = assertId(await d.ok(['create', '-v', 'busy:/x', 'busybox', 'true']));
  for (const args of [['volume', 'rm', 'busy'], ['volume', 'rm', '-f', 'busy']]) {
    const r = await d.cli(args);
    assertOneLineError(r, args.join(' '), /^vessel: Volume is in use: busy: \[[0-9a-f]{64}\]$/);
    assert.ok(r.stderr.includes(c), 'the error names the container');
  }
  await d.ok(['start', c]);
  await d.ok(['wait', c]);
  assertOneLineError(await d.cli(['volume', 'rm', 'busy']), 'volume rm of a volume of an exited container');
  assert.ok((await volumeNames()).includes('busy'));
  await d.ok(['rm', c]);
  assert.equal(await d.ok(['volume', 'rm', 'busy']), 'busy\n');
  assert.ok(!existsSync(path.join(d.stateRoot, 'volumes', 'busy')), 'the volume directory is left behind');
  assertOneLineError(await d.cli(['volume', 'rm', 'busy']), 'volume rm of a missing volume', /^vessel: No such volume: busy$/);
  await d.ok(['volume', 'rm', '-f', 'busy']);
  assertOneLineError(await d.cli(['volume', 'create', 'x']), 'a one-letter name', /invalid volume name/i);
});

test('--mount: volume, bind (read-only) and tmpfs', async () => {
  const host = path.join(d.root, 'bindsrc');
  mkdirSync(host, { recursive: true });
  writeFileSync(path.join(host, 'hello'), 'from host\n');
  const c = assertId(
    await d.ok([
      'run', '-d',
      '--mount', 'type=volume,source=mvol,target=/mv',
      '--mount', `type=bind,source=${host},target=/b,readonly`,
      '--mount', 'type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770',
      'busybox', 'sleep', '1000',
    ]),
  );
  await d.ok(['exec', c, 'sh', '-c', 'echo via-mount > /mv/f']);
  assert.equal(readFileSync(path.join(dataDir('mvol'), 'f'), 'utf8'), 'via-mount\n');
  assert.equal(await d.ok(['exec', c, 'cat', '/b/hello']), 'from host\n');
  const w = await d.cli(['exec', c, 'touch', '/b/new']);
  assert.notEqual(w.code, 0, 'a readonly bind mount was writable');
  const mounts = await d.ok(['exec', c, 'cat', '/proc/mounts']);
  const t = mounts.split('\n').find((l) => l.split(' ')[1] === '/t');
  assert.ok(t && t.startsWith('tmpfs /t tmpfs '), `no tmpfs at /t:\n${mounts}`);
  assert.match(t, /size=1024k/);
  assert.match(t, /mode=1770/);
  const info = await inspectJson(d, c);
  const byDest = Object.fromEntries((info.Mounts as Array<Record<string, unknown>>).map((m) => [m.Destination, m]));
  assert.deepEqual(byDest['/mv'], { Type: 'volume', Name: 'mvol', Source: dataDir('mvol'), Destination: '/mv', Driver: 'local', Mode: '', RW: true, Propagation: '' });
  assert.equal(byDest['/b']?.Type, 'bind');
  assert.equal(byDest['/b']?.RW, false);
  assert.equal(byDest['/t']?.Type, 'tmpfs');
  assert.equal(info.HostConfig.Mounts.length, 3, 'HostConfig.Mounts is kept as sent');
  await d.ok(['rm', '-f', c]);
  // A bind source of --mount must exist (unlike -v).
  assertOneLineError(
    await d.cli(['create', '--mount', `type=bind,source=${host}/missing,target=/x`, 'busybox']),
    '--mount bind with a missing source',
    /bind source path does not exist/,
  );
  assertOneLineError(await d.cli(['create', '--mount', 'type=volume,source=a1', 'busybox']), '--mount without target', /target is required/);
  assertOneLineError(await d.cli(['create', '-v', 'dup:/x', '--mount', 'type=tmpfs,target=/x', 'busybox']), 'duplicate mount point', /Duplicate mount point: \/x/);
});

test('read-only volumes cannot be written', async () => {
  await d.ok(['run', '--rm', '-v', 'rovol:/r', 'busybox', 'sh', '-c', 'echo x > /r/existing']);
  for (const flags of [['-v', 'rovol:/r:ro'], ['--mount', 'type=volume,src=rovol,dst=/r,ro']]) {
    const r = await d.cli(['run', '--rm', ...flags, 'busybox', 'sh', '-c', 'cat /r/existing && touch /r/new']);
    assert.notEqual(r.code, 0, `${flags.join(' ')}: writing succeeded`);
    assert.match(r.stdout, /^x$/m);
    assert.match(r.stderr, /Read-only file system/);
  }
  assert.ok(!existsSync(path.join(dataDir('rovol'), 'new')));
  const c = assertId(await d.ok(['create', '-v', 'rovol:/r:ro', 'busybox']));
  const m = (await inspectJson(d, c)).Mounts.find((x: { Destination: string }) => x.Destination === '/r');
  assert.equal(m.RW, false);
  assert.equal(m.Mode, 'ro');
  await d.ok(['rm', c]);
});

test('anonymous volumes: made for -v /path, kept by rm, removed by rm -v and --rm', async () => {
  const anonOf = async (id: string): Promise<string> => {
    const m = (await inspectJson(d, id)).Mounts.find((x: { Destination: string }) => x.Destination === '/anon');
    assert.equal(m?.Type, 'volume');
    assert.match(m.Name, /^[0-9a-f]{64}$/);
    assert.equal(m.Source, dataDir(m.Name));
    return m.Name as string;
  };
  const a = assertId(await d.ok(['create', '-v', '/anon', 'busybox', 'true']));
  const va = await anonOf(a);
  await d.ok(['rm', a]);
  assert.ok((await volumeNames()).includes(va), 'rm without -v removed an anonymous volume');

  const b = assertId(await d.ok(['create', '-v', '/anon', '-v', 'named-kept:/n', 'busybox', 'true']));
  const vb = await anonOf(b);
  await d.ok(['start', b]);
  await d.ok(['wait', b]);
  await d.ok(['rm', '-v', b]);
  const names = await volumeNames();
  assert.ok(!names.includes(vb), 'rm -v left the anonymous volume');
  assert.ok(names.includes('named-kept'), 'rm -v removed a named volume');
  assert.ok(!existsSync(path.join(d.stateRoot, 'volumes', vb)));

  const before = await volumeNames();
  await d.ok(['run', '--rm', '-v', '/anon', 'busybox', 'true']);
  assert.deepEqual((await volumeNames()).sort(), before.sort(), 'run --rm left an anonymous volume');
  await d.ok(['volume', 'rm', va]);
});

test('volume ls filters, inspect, and prune of unused volumes only', async () => {
  await d.ok(['volume', 'create', '--label', 'team=blue', '--label', 'flag', 'lsblue']);
  await d.ok(['volume', 'create', 'lsplain']);
  const anon = (await d.ok(['volume', 'create'])).trim();
  assert.match(anon, /^[0-9a-f]{64}$/);
  const ls = await d.ok(['volume', 'ls']);
  assert.match(ls, /^DRIVER\s+VOLUME NAME$/m);
  assert.match(ls, /^local\s+lsblue$/m);
  assert.deepEqual((await d.ok(['volume', 'ls', '-q', '--filter', 'label=team=blue'])).split('\n').filter(Boolean), ['lsblue']);
  assert.deepEqual((await d.ok(['volume', 'ls', '-q', '--filter', 'label=flag'])).split('\n').filter(Boolean), ['lsblue']);
  assert.deepEqual((await d.ok(['volume', 'ls', '-q', '--filter', 'name=lsp'])).split('\n').filter(Boolean), ['lsplain']);

  const used = assertId(await d.ok(['create', '-v', 'lsused:/u', 'busybox', 'true']));
  const dangling = (await d.ok(['volume', 'ls', '-q', '--filter', 'dangling=true'])).split('\n').filter(Boolean);
  assert.ok(dangling.includes('lsplain') && !dangling.includes('lsused'));
  assert.deepEqual((await d.ok(['volume', 'ls', '-q', '--filter', 'dangling=false'])).split('\n').filter(Boolean), ['lsused']);

  const [info] = JSON.parse(await d.ok(['volume', 'inspect', 'lsblue']));
  assert.deepEqual(Object.keys(info).sort(), ['CreatedAt', 'Driver', 'Labels', 'Mountpoint', 'Name', 'Options', 'Scope']);
  assert.equal(info.Driver, 'local');
  assert.equal(info.Scope, 'local');
  assert.deepEqual(info.Labels, { team: 'blue', flag: '' });
  assert.equal(info.Mountpoint, dataDir('lsblue'));
  assert.ok(!Number.isNaN(Date.parse(info.CreatedAt)));
  assert.equal(await d.ok(['volume', 'inspect', '-f', '{{.Name}} {{.Driver}}', 'lsblue']), 'lsblue local\n');
  assertOneLineError(await d.cli(['volume', 'inspect', 'nosuchvol']), 'inspect of a missing volume', /No such volume: nosuchvol/);

  writeFileSync(path.join(dataDir('lsplain'), 'blob'), Buffer.alloc(4096));
  const pruned = await d.ok(['volume', 'prune', '-f']);
  assert.match(pruned, /^Deleted Volumes:$/m);
  for (const n of ['lsblue', 'lsplain', anon]) assert.match(pruned, new RegExp(`^${n}$`, 'm'));
  assert.match(pruned, /^Total reclaimed space: [1-9][\d.]*[kMG]?B$/m);
  assert.deepEqual(await volumeNames(), ['lsused'], 'prune removed a volume in use or left an unused one');
  await d.ok(['rm', used]);
  assert.match(await d.ok(['volume', 'prune', '-f']), /lsused/);
  assert.deepEqual(await volumeNames(), []);
});
