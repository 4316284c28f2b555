import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../core/test-temp-dirs.js';
import { resolveUser, resolveUserFrom } from './user.js';

test('names and numbers resolve against the passwd and group text', () => {
  const passwd = 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n';
  const group = 'root:x:0:\napp:x:1000:\nextra:x:2000:app\n';
  const app = resolveUserFrom('app', passwd, group);
  assert.equal(app.uid, 1000);
  assert.equal(app.gid, 1000);
  assert.equal(resolveUserFrom('4242', passwd, group).uid, 4242);
  assert.throws(() => resolveUserFrom('nobody-here', passwd, group), /Unable to find user nobody-here/);
});

test("an image's /etc/passwd symlink resolves inside the rootfs, never on the host", async () => {
  const root = tempDir('vessel-user-');
  mkdirSync(join(root, 'etc'));
  writeFileSync(join(root, 'etc', 'real-passwd'), 'app:x:1234:1234::/:/bin/sh\n');
  // Absolute target: the host has no /etc/real-passwd; the image does.
  symlinkSync('/etc/real-passwd', join(root, 'etc', 'passwd'));
  assert.equal((await resolveUser(root, 'app')).uid, 1234);
  // A link climbing out with .. stays in the root too.
  symlinkSync('../../../../etc/hostname', join(root, 'etc', 'group'));
  assert.equal((await resolveUser(root, 'app')).gid, 1234);
});
