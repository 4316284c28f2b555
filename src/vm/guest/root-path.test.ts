import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveGuestPath } from './root-path.js';

/** A fake tree: guest path → symlink target (absent = plain file or dir). */
function io(links: Record<string, string>) {
  return {
    lstat: async (p: string) => ({ isSymbolicLink: () => p.slice('/r'.length) in links }),
    readlink: async (p: string) => links[p.slice('/r'.length)]!,
  };
}

test('resolveGuestPath follows relative and absolute links inside the root', async () => {
  const t = io({ '/sbin': 'usr/sbin', '/bin': '/usr/bin', '/usr/sbin/halt': '../../bin/busybox' });
  assert.equal(await resolveGuestPath('/r', '/sbin/shutdown', t), '/usr/sbin/shutdown');
  assert.equal(await resolveGuestPath('/r', '/bin/sh', t), '/usr/bin/sh');
  assert.equal(await resolveGuestPath('/r', '/sbin/halt', t), '/usr/bin/busybox');
  assert.equal(await resolveGuestPath('/r', '/etc/../etc/hosts', t), '/etc/hosts');
});

test('resolveGuestPath never leaves the root and stops on loops', async () => {
  assert.equal(await resolveGuestPath('/r', '/x', io({ '/x': '../../../etc' })), '/etc');
  await assert.rejects(resolveGuestPath('/r', '/a', io({ '/a': '/b', '/b': '/a' })), /Too many symbolic links/);
});
