import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeRegistryAuth, decodeRegistryConfig } from './distribution.js';

const b64 = (v: unknown, enc: BufferEncoding = 'base64url') => Buffer.from(JSON.stringify(v)).toString(enc);

test('decodeRegistryAuth() reads username/password or auth, and treats empty as anonymous', () => {
  assert.deepEqual(decodeRegistryAuth(b64({ username: 'u', password: 'p', serveraddress: 'h' })), { username: 'u', password: 'p' });
  assert.deepEqual(decodeRegistryAuth(b64({ auth: Buffer.from('u:p:x').toString('base64') })), { username: 'u', password: 'p:x' });
  assert.equal(decodeRegistryAuth(b64({})), null);
  assert.equal(decodeRegistryAuth(undefined), null);
  assert.throws(() => decodeRegistryAuth('not json'), /Invalid X-Registry-Auth header/);
});

test('decodeRegistryConfig() maps every registry to its credentials, keyed like logins', () => {
  const m = decodeRegistryConfig(
    b64(
      {
        '127.0.0.1:5000': { username: 'a', password: 'b' },
        'https://index.docker.io/v1/': { auth: Buffer.from('hub:pw').toString('base64') },
        'empty.example': {},
      },
      'base64',
    ),
  );
  assert.deepEqual(m.get('127.0.0.1:5000'), { username: 'a', password: 'b' });
  assert.deepEqual(m.get('https://index.docker.io/v1/'), { username: 'hub', password: 'pw' });
  assert.equal(m.has('empty.example'), false);
  assert.equal(decodeRegistryConfig(undefined).size, 0);
  assert.equal(decodeRegistryConfig(b64({})).size, 0);
  assert.throws(() => decodeRegistryConfig('%%%'), /Invalid X-Registry-Config header/);
});
