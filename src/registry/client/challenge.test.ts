import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseChallenges, pickChallenge, repositoryScope } from './challenge.js';

test('parseChallenges reads a Bearer challenge with quoted parameters', () => {
  const [c, ...rest] = parseChallenges(
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
  );
  assert.equal(rest.length, 0);
  assert.deepEqual(c, {
    scheme: 'bearer',
    params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' },
  });
});

test('parseChallenges reads Basic, unquoted values, spaces and escapes', () => {
  assert.deepEqual(parseChallenges('Basic realm="basic-realm"'), [{ scheme: 'basic', params: { realm: 'basic-realm' } }]);
  assert.deepEqual(parseChallenges('BASIC  Realm = plain , charset="UTF-8"'), [
    { scheme: 'basic', params: { realm: 'plain', charset: 'UTF-8' } },
  ]);
  assert.deepEqual(parseChallenges('Bearer realm="a \\"quoted\\" realm"')[0]?.params.realm, 'a "quoted" realm');
});

test('parseChallenges splits several challenges in one header and across headers', () => {
  const cs = parseChallenges('Basic realm="x", Bearer realm="https://t/token",service="s"');
  assert.deepEqual(
    cs.map((c) => c.scheme),
    ['basic', 'bearer'],
  );
  assert.equal(cs[1]?.params.service, 's');
  assert.deepEqual(
    parseChallenges(['Basic realm="a"', 'Bearer realm="b"']).map((c) => c.params.realm),
    ['a', 'b'],
  );
});

test('parseChallenges tolerates empty and odd input', () => {
  assert.deepEqual(parseChallenges(undefined), []);
  assert.deepEqual(parseChallenges(''), []);
  assert.deepEqual(parseChallenges('Bearer'), [{ scheme: 'bearer', params: {} }]);
  assert.deepEqual(parseChallenges('Negotiate abc123, Basic realm="r"').map((c) => c.scheme), ['negotiate', 'basic']);
});

test('pickChallenge prefers Bearer over Basic and ignores unknown schemes', () => {
  assert.equal(pickChallenge(parseChallenges('Basic realm="x", Bearer realm="y"'))?.scheme, 'bearer');
  assert.equal(pickChallenge(parseChallenges('Basic realm="x"'))?.scheme, 'basic');
  assert.equal(pickChallenge(parseChallenges('Negotiate abc')), null);
});

test('repositoryScope joins actions', () => {
  assert.equal(repositoryScope('team/app', ['pull', 'push']), 'repository:team/app:pull,push');
});
