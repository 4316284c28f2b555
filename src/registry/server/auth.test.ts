import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { HtpasswdAuth } from './auth.js';
import { errorCode, startTestRegistry } from './testing.js';

function basic(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

test('with --htpasswd: no credentials and wrong password are 401 with a Basic challenge; right ones pass', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vessel-htpasswd-'));
  const file = path.join(dir, 'htpasswd');
  // htpasswd -B writes $2y$; bcryptjs writes $2b$: both must load.
  writeFileSync(file, `# users\nalice:${bcrypt.hashSync('secret', 4).replace(/^\$2b\$/, '$2y$')}\nbob:${bcrypt.hashSync('builder', 4)}\n`);
  const reg = await startTestRegistry({ htpasswd: file, realm: 'Test Realm' });
  try {
    const none = await fetch(`${reg.url}/v2/`);
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Basic realm="Test Realm"');
    assert.equal(await errorCode(none), 'UNAUTHORIZED');
    const wrong = await fetch(`${reg.url}/v2/`, { headers: { Authorization: basic('alice', 'nope') } });
    assert.equal(wrong.status, 401);
    assert.equal(await errorCode(wrong), 'UNAUTHORIZED');
    const nobody = await fetch(`${reg.url}/v2/`, { headers: { Authorization: basic('mallory', 'secret') } });
    assert.equal(nobody.status, 401);
    const ok = await fetch(`${reg.url}/v2/`, { headers: { Authorization: basic('alice', 'secret') } });
    assert.equal(ok.status, 200);
    // Cached: the second check is answered without bcrypt, and still correct.
    const again = await fetch(`${reg.url}/v2/_catalog`, { headers: { Authorization: basic('alice', 'secret') } });
    assert.equal(again.status, 200);
    const bob = await fetch(`${reg.url}/v2/x/blobs/uploads/`, { method: 'POST', headers: { Authorization: basic('bob', 'builder') } });
    assert.equal(bob.status, 202);
    const anon = await fetch(`${reg.url}/v2/x/blobs/uploads/`, { method: 'POST', body: 'data' });
    assert.equal(anon.status, 401);
  } finally {
    await reg.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('htpasswd files with non-bcrypt entries are refused with one clear error', () => {
  assert.throws(() => new HtpasswdAuth('carol:$apr1$abc$def\n', 'r', 'users.htpasswd'), {
    name: 'InvalidArgumentError',
    message: 'Unsupported htpasswd entry for user carol in users.htpasswd: only bcrypt hashes are supported (create them with htpasswd -B)',
  });
  assert.throws(() => new HtpasswdAuth('dave:plaintext\n'), /only bcrypt hashes are supported/);
  assert.throws(() => HtpasswdAuth.load('/nonexistent/htpasswd'), /^InvalidArgumentError: Cannot read htpasswd file \/nonexistent\/htpasswd: ENOENT$/);
  assert.equal(new HtpasswdAuth('\n# only a comment\n').userCount, 0);
});
