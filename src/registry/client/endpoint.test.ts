import { test } from 'node:test';
import assert from 'node:assert/strict';
import { authKeyOf, checkInsecureEntry, hostOfServer, hostname, isInsecureRegistry, resolveRemote } from './endpoint.js';

test('resolveRemote maps a host-qualified reference to host and repository', () => {
  assert.deepEqual(resolveRemote('127.0.0.1:5000/team/app:v1'), {
    host: '127.0.0.1:5000',
    repo: 'team/app',
    localRepo: '127.0.0.1:5000/team/app',
    tag: 'v1',
    digest: null,
    authKey: '127.0.0.1:5000',
  });
  const d = `sha256:${'a'.repeat(64)}`;
  const r = resolveRemote(`localhost/app@${d}`);
  assert.equal(r.host, 'localhost');
  assert.equal(r.repo, 'app');
  assert.equal(r.digest, d);
  assert.equal(r.tag, null);
  assert.equal(resolveRemote('registry.example.com/a/b/c').repo, 'a/b/c');
});

test('resolveRemote sends names without a host to Docker Hub, single components under library/', () => {
  const b = resolveRemote('busybox');
  assert.equal(b.host, 'registry-1.docker.io');
  assert.equal(b.repo, 'library/busybox');
  assert.equal(b.localRepo, 'busybox');
  assert.equal(b.authKey, 'https://index.docker.io/v1/');
  assert.equal(resolveRemote('team/app:1').repo, 'team/app');
  assert.equal(resolveRemote('docker.io/library/debian:bookworm').repo, 'library/debian');
  assert.equal(resolveRemote('docker.io/alpine').repo, 'library/alpine');
  assert.equal(resolveRemote('docker.io/library/debian:bookworm').localRepo, 'debian');
  assert.equal(resolveRemote('docker.io/team/app').localRepo, 'team/app');
});

test('resolveRemote rejects malformed references', () => {
  assert.throws(() => resolveRemote('UPPER/case'), /Invalid reference format/);
  assert.throws(() => resolveRemote('a@sha256:123'), /Invalid reference format/);
});

test('isInsecureRegistry: loopback always, listed hosts and CIDRs, nothing else', () => {
  for (const h of ['127.0.0.1:5000', '127.1.2.3', 'localhost:5000', 'localhost', '[::1]:5000']) assert.ok(isInsecureRegistry(h), h);
  for (const h of ['registry-1.docker.io', '10.0.0.1:5000', 'example.com', '128.0.0.1']) assert.ok(!isInsecureRegistry(h), h);
  assert.ok(isInsecureRegistry('10.0.0.1:5000', ['10.0.0.1:5000']));
  assert.ok(isInsecureRegistry('10.0.0.1:5000', ['10.0.0.1']));
  assert.ok(!isInsecureRegistry('10.0.0.1:5001', ['10.0.0.1:5000']));
  assert.ok(isInsecureRegistry('10.1.2.3:443', ['10.0.0.0/8']));
  assert.ok(!isInsecureRegistry('11.1.2.3', ['10.0.0.0/8']));
  assert.ok(isInsecureRegistry('reg.lan', ['http://reg.lan']));
});

test('hostname strips ports and IPv6 brackets', () => {
  assert.equal(hostname('127.0.0.1:5000'), '127.0.0.1');
  assert.equal(hostname('[::1]:5000'), '::1');
  assert.equal(hostname('example.com'), 'example.com');
});

test('login server names map to credential keys and wire hosts', () => {
  assert.equal(authKeyOf('127.0.0.1:5000'), '127.0.0.1:5000');
  assert.equal(authKeyOf('https://reg.example.com/v2/'), 'reg.example.com');
  assert.equal(authKeyOf('docker.io'), 'https://index.docker.io/v1/');
  assert.equal(hostOfServer('https://index.docker.io/v1/'), 'registry-1.docker.io');
  assert.equal(hostOfServer('localhost:5000'), 'localhost:5000');
});

test('checkInsecureEntry accepts host[:port] and CIDRs only', () => {
  assert.equal(checkInsecureEntry('reg.lan:5000'), 'reg.lan:5000');
  assert.equal(checkInsecureEntry('10.0.0.0/8'), '10.0.0.0/8');
  assert.throws(() => checkInsecureEntry('bad host'), /Invalid insecure registry/);
  assert.throws(() => checkInsecureEntry('999.1.1.1/8'), /Invalid insecure registry/);
});
