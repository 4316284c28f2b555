import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { digestOf, errorCode, pushBlob, startTestRegistry, type TestRegistry } from './testing.js';

let reg: TestRegistry;
before(async () => {
  reg = await startTestRegistry();
});
after(async () => {
  await reg.close();
});

async function startUpload(name: string): Promise<URL> {
  const res = await fetch(`${reg.url}/v2/${name}/blobs/uploads/`, { method: 'POST' });
  assert.equal(res.status, 202);
  assert.equal(res.headers.get('range'), '0-0');
  assert.match(res.headers.get('docker-upload-uuid') ?? '', /^[0-9a-f-]{36}$/);
  return new URL(res.headers.get('location') as string, reg.url);
}

test('GET /v2/ answers 200 with the API version header', async () => {
  const res = await fetch(`${reg.url}/v2/`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
});

test('chunked upload: PATCH with Content-Range, out-of-order chunk is 416, PUT completes', async () => {
  const data = Buffer.from('hello chunked world');
  const loc = await startUpload('chunks/app');
  const a = await fetch(loc, { method: 'PATCH', body: data.subarray(0, 5), headers: { 'Content-Range': '0-4', 'Content-Type': 'application/octet-stream' } });
  assert.equal(a.status, 202);
  assert.equal(a.headers.get('range'), '0-4');
  const bad = await fetch(loc, { method: 'PATCH', body: data.subarray(10), headers: { 'Content-Range': `10-${data.length - 1}` } });
  assert.equal(bad.status, 416);
  assert.equal(bad.headers.get('range'), '0-4');
  const status = await fetch(loc);
  assert.equal(status.status, 204);
  assert.equal(status.headers.get('range'), '0-4');
  const b = await fetch(loc, { method: 'PATCH', body: data.subarray(5, 10), headers: { 'Content-Range': '5-9' } });
  assert.equal(b.status, 202);
  assert.equal(b.headers.get('range'), '0-9');
  const done = new URL(loc);
  done.searchParams.set('digest', digestOf(data));
  const put = await fetch(done, { method: 'PUT', body: data.subarray(10), headers: { 'Content-Range': `10-${data.length - 1}` } });
  assert.equal(put.status, 201);
  assert.equal(put.headers.get('docker-content-digest'), digestOf(data));
  assert.equal(put.headers.get('location'), `/v2/chunks/app/blobs/${digestOf(data)}`);
  const get = await fetch(`${reg.url}/v2/chunks/app/blobs/${digestOf(data)}`);
  assert.equal(get.status, 200);
  assert.deepEqual(Buffer.from(await get.arrayBuffer()), data);
  assert.equal((await fetch(loc)).status, 404, 'the session is gone after completion');
});

test('streamed PATCH without Content-Range appends, then an empty PUT completes', async () => {
  const data = Buffer.alloc(300_000, 7);
  const loc = await startUpload('stream');
  const p = await fetch(loc, { method: 'PATCH', body: data });
  assert.equal(p.status, 202);
  assert.equal(p.headers.get('range'), `0-${data.length - 1}`);
  const done = new URL(p.headers.get('location') as string, reg.url);
  done.searchParams.set('digest', digestOf(data));
  assert.equal((await fetch(done, { method: 'PUT' })).status, 201);
  const head = await fetch(`${reg.url}/v2/stream/blobs/${digestOf(data)}`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), String(data.length));
  assert.equal(head.headers.get('docker-content-digest'), digestOf(data));
});

test('PUT with the wrong digest is DIGEST_INVALID and leaves no blob or temp file', async () => {
  const loc = await startUpload('bad/digest');
  const done = new URL(loc);
  const wrong = digestOf('something else');
  done.searchParams.set('digest', wrong);
  const res = await fetch(done, { method: 'PUT', body: 'actual content' });
  assert.equal(res.status, 400);
  assert.equal(await errorCode(res), 'DIGEST_INVALID');
  assert.equal((await fetch(`${reg.url}/v2/bad/digest/blobs/${wrong}`, { method: 'HEAD' })).status, 404);
  assert.equal((await fetch(loc)).status, 404, 'a failed upload is discarded');
  assert.ok(!readdirSync(path.join(reg.root, 'blobs', 'sha256')).includes(digestOf('actual content').slice(7)));
  assert.deepEqual(readdirSync(path.join(reg.root, 'tmp')), []);
  const malformed = new URL(await startUpload('bad/digest'));
  malformed.searchParams.set('digest', 'sha256:xyz');
  const m = await fetch(malformed, { method: 'PUT', body: 'x' });
  assert.equal(m.status, 400);
  assert.equal(await errorCode(m), 'DIGEST_INVALID');
});

test('monolithic POST ?digest= with a body answers 201', async () => {
  const data = 'monolithic blob';
  const res = await fetch(`${reg.url}/v2/mono/blobs/uploads/?digest=${digestOf(data)}`, {
    method: 'POST',
    body: data,
    headers: { 'Content-Type': 'application/octet-stream' },
  });
  assert.equal(res.status, 201);
  assert.equal(res.headers.get('docker-content-digest'), digestOf(data));
  assert.equal((await fetch(`${reg.url}/v2/mono/blobs/${digestOf(data)}`)).status, 200);
  const bad = await fetch(`${reg.url}/v2/mono/blobs/uploads/?digest=${digestOf('other')}`, { method: 'POST', body: data });
  assert.equal(bad.status, 400);
  assert.equal(await errorCode(bad), 'DIGEST_INVALID');
});

test('blobs are only visible in repositories that received or mounted them', async () => {
  const digest = await pushBlob(reg.url, 'src/repo', 'shared layer');
  const other = await fetch(`${reg.url}/v2/dst/repo/blobs/${digest}`);
  assert.equal(other.status, 404);
  assert.equal(await errorCode(other), 'BLOB_UNKNOWN');
  const mount = await fetch(`${reg.url}/v2/dst/repo/blobs/uploads/?mount=${digest}&from=src/repo`, { method: 'POST' });
  assert.equal(mount.status, 201);
  assert.equal(mount.headers.get('location'), `/v2/dst/repo/blobs/${digest}`);
  assert.equal((await fetch(`${reg.url}/v2/dst/repo/blobs/${digest}`)).status, 200);
  // Mount from a repository without the blob: an ordinary upload session.
  const miss = await fetch(`${reg.url}/v2/third/blobs/uploads/?mount=${digest}&from=nowhere`, { method: 'POST' });
  assert.equal(miss.status, 202);
  assert.ok(miss.headers.get('docker-upload-uuid'));
});

test('GET with Range answers 206 with the slice', async () => {
  const digest = await pushBlob(reg.url, 'ranges', '0123456789');
  const res = await fetch(`${reg.url}/v2/ranges/blobs/${digest}`, { headers: { Range: 'bytes=2-5' } });
  assert.equal(res.status, 206);
  assert.equal(res.headers.get('content-range'), 'bytes 2-5/10');
  assert.equal(await res.text(), '2345');
  const tail = await fetch(`${reg.url}/v2/ranges/blobs/${digest}`, { headers: { Range: 'bytes=-3' } });
  assert.equal(await tail.text(), '789');
  const bad = await fetch(`${reg.url}/v2/ranges/blobs/${digest}`, { headers: { Range: 'bytes=20-30' } });
  assert.equal(bad.status, 416);
});

test('DELETE blob unlinks it from the repository (202), then 404', async () => {
  const digest = await pushBlob(reg.url, 'deleting', 'to be deleted');
  const del = await fetch(`${reg.url}/v2/deleting/blobs/${digest}`, { method: 'DELETE' });
  assert.equal(del.status, 202);
  assert.equal((await fetch(`${reg.url}/v2/deleting/blobs/${digest}`, { method: 'HEAD' })).status, 404);
  const again = await fetch(`${reg.url}/v2/deleting/blobs/${digest}`, { method: 'DELETE' });
  assert.equal(again.status, 404);
  assert.equal(await errorCode(again), 'BLOB_UNKNOWN');
});

test('DELETE upload cancels the session; unknown sessions are BLOB_UPLOAD_UNKNOWN', async () => {
  const loc = await startUpload('cancel');
  assert.equal((await fetch(loc, { method: 'DELETE' })).status, 204);
  const gone = await fetch(loc);
  assert.equal(gone.status, 404);
  assert.equal(await errorCode(gone), 'BLOB_UPLOAD_UNKNOWN');
  const foreign = await startUpload('owner');
  const stolen = await fetch(`${reg.url}/v2/thief/blobs/uploads/${foreign.pathname.split('/').pop()}`);
  assert.equal(stolen.status, 404, 'a session belongs to its repository');
  assert.equal((await fetch(`${reg.url}/v2/x/blobs/uploads/not-a-uuid`, { method: 'PATCH', body: 'x' })).status, 404);
});

test('invalid names are NAME_INVALID; unknown endpoints and methods are refused', async () => {
  for (const name of ['UPPER', 'a//b', '-lead', 'a/_x']) {
    const res = await fetch(`${reg.url}/v2/${name}/blobs/uploads/`, { method: 'POST' });
    assert.equal(res.status, 400, name);
    assert.equal(await errorCode(res), 'NAME_INVALID');
  }
  assert.equal((await fetch(`${reg.url}/v3/`)).status, 404);
  const m = await fetch(`${reg.url}/v2/a/blobs/${digestOf('x')}`, { method: 'POST' });
  assert.equal(m.status, 405);
  assert.equal(await errorCode(m), 'UNSUPPORTED');
});
