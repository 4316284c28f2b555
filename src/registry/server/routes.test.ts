import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isName, isTag } from './names.js';
import { matchRoute } from './routes.js';
import { parseListenAddress } from './server.js';

test('matchRoute routes repository names with slashes greedily', () => {
  assert.deepEqual(matchRoute('/v2/'), { kind: 'base' });
  assert.deepEqual(matchRoute('/v2/_catalog'), { kind: 'catalog' });
  assert.deepEqual(matchRoute('/v2/a/b/c/tags/list'), { kind: 'tags', name: 'a/b/c' });
  assert.deepEqual(matchRoute('/v2/a/manifests/blobs/manifests/v1'), { kind: 'manifest', name: 'a/manifests/blobs', reference: 'v1' });
  assert.deepEqual(matchRoute('/v2/x/y/blobs/uploads/'), { kind: 'uploads', name: 'x/y' });
  assert.deepEqual(matchRoute('/v2/x/blobs/uploads/abc'), { kind: 'upload', name: 'x', uuid: 'abc' });
  assert.deepEqual(matchRoute('/v2/x/blobs/sha256:00'), { kind: 'blob', name: 'x', digest: 'sha256:00' });
  assert.deepEqual(matchRoute('/v2/x/referrers/sha256:00'), { kind: 'referrers', name: 'x', digest: 'sha256:00' });
  assert.equal(matchRoute('/v1/x'), undefined);
});

test('names and tags follow the distribution-spec grammar', () => {
  for (const ok of ['a', 'library/busybox', 'a.b_c__d-e--f/g', 'x/y/z']) assert.ok(isName(ok), ok);
  for (const bad of ['', 'A', 'a/', '/a', 'a__-b', 'a/_b', 'a..b', 'x'.repeat(256)]) assert.ok(!isName(bad), bad);
  for (const ok of ['latest', 'v1.0', '_x', 'A-b.c']) assert.ok(isTag(ok), ok);
  for (const bad of ['.x', '-x', '', 'x'.repeat(129), 'a:b']) assert.ok(!isTag(bad), bad);
});

test('parseListenAddress accepts host:port, [v6]:port, :port and port', () => {
  assert.deepEqual(parseListenAddress('127.0.0.1:5000'), { host: '127.0.0.1', port: 5000 });
  assert.deepEqual(parseListenAddress('[::1]:0'), { host: '::1', port: 0 });
  assert.deepEqual(parseListenAddress(':5000'), { host: '0.0.0.0', port: 5000 });
  assert.deepEqual(parseListenAddress('5000'), { host: '0.0.0.0', port: 5000 });
  assert.throws(() => parseListenAddress('localhost'), /^InvalidArgumentError: Invalid listen address: localhost: expected HOST:PORT$/);
  assert.throws(() => parseListenAddress('h:99999'), /Invalid listen address/);
});
