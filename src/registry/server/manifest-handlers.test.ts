import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MANIFEST_TYPES, MAX_MANIFEST_BYTES } from './manifest.js';
import { digestOf, errorCode, imageManifest, pushBlob, pushImage, putManifest, startTestRegistry, type TestRegistry } from './testing.js';

let reg: TestRegistry;
before(async () => {
  reg = await startTestRegistry();
});
after(async () => {
  await reg.close();
});

test('PUT manifest by tag: 201 with Location and digest; GET/HEAD return the exact bytes', async () => {
  const config = await pushBlob(reg.url, 'lib/app', '{"os":"linux"}');
  const layer = await pushBlob(reg.url, 'lib/app', 'layer bytes');
  // Unusual spacing: the registry must keep the bytes, not re-serialise them.
  const body = `{ "schemaVersion": 2,  "mediaType": "${MANIFEST_TYPES.ociManifest}", "config": {"mediaType":"application/vnd.oci.image.config.v1+json","digest":"${config}","size":14},\n "layers": [{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"${layer}","size":11}] }`;
  const put = await putManifest(reg.url, 'lib/app', 'v1', body);
  assert.equal(put.status, 201);
  const digest = digestOf(body);
  assert.equal(put.headers.get('docker-content-digest'), digest);
  assert.equal(put.headers.get('location'), `/v2/lib/app/manifests/${digest}`);
  for (const ref of ['v1', digest]) {
    const get = await fetch(`${reg.url}/v2/lib/app/manifests/${ref}`);
    assert.equal(get.status, 200);
    assert.equal(get.headers.get('content-type'), MANIFEST_TYPES.ociManifest);
    assert.equal(get.headers.get('docker-content-digest'), digest);
    assert.equal(await get.text(), body);
    const head = await fetch(`${reg.url}/v2/lib/app/manifests/${ref}`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(Buffer.byteLength(body)));
  }
});

test('OCI manifests without mediaType and Docker schema2 manifests and lists are accepted', async () => {
  const { config, layer } = await pushImage(reg.url, 'types', 'base', 'types');
  const noType = JSON.stringify({
    schemaVersion: 2,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 1 },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer, size: 1 }],
  });
  const a = await putManifest(reg.url, 'types', 'oci-no-type', noType);
  assert.equal(a.status, 201);
  const docker = JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST_TYPES.dockerManifest,
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: config, size: 1 },
    layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: layer, size: 1 }],
  });
  const b = await putManifest(reg.url, 'types', 'docker', docker, MANIFEST_TYPES.dockerManifest);
  assert.equal(b.status, 201);
  const list = JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST_TYPES.dockerList,
    manifests: [{ mediaType: MANIFEST_TYPES.dockerManifest, digest: digestOf(docker), size: docker.length, platform: { os: 'linux', architecture: 'amd64' } }],
  });
  const c = await putManifest(reg.url, 'types', 'list', list, MANIFEST_TYPES.dockerList);
  assert.equal(c.status, 201);
  const got = await fetch(`${reg.url}/v2/types/manifests/list`);
  assert.equal(got.headers.get('content-type'), MANIFEST_TYPES.dockerList);
  const mismatch = await putManifest(reg.url, 'types', 'mismatch', docker, MANIFEST_TYPES.ociManifest);
  assert.equal(mismatch.status, 400);
  assert.equal(await errorCode(mismatch), 'MANIFEST_INVALID');
});

test('a manifest referencing a missing blob is MANIFEST_BLOB_UNKNOWN; an index with a missing child is MANIFEST_UNKNOWN', async () => {
  const config = await pushBlob(reg.url, 'missing', 'cfg');
  const body = imageManifest(config, 3, [{ digest: digestOf('never pushed'), size: 12 }]);
  const res = await putManifest(reg.url, 'missing', 'x', body);
  assert.equal(res.status, 400);
  assert.equal(await errorCode(res), 'MANIFEST_BLOB_UNKNOWN');
  // A blob pushed to another repository does not count.
  const elsewhere = await pushBlob(reg.url, 'elsewhere', 'foreign');
  const res2 = await putManifest(reg.url, 'missing', 'y', imageManifest(config, 3, [{ digest: elsewhere, size: 7 }]));
  assert.equal(await errorCode(res2), 'MANIFEST_BLOB_UNKNOWN');
  const index = JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST_TYPES.ociIndex,
    manifests: [{ mediaType: MANIFEST_TYPES.ociManifest, digest: digestOf('no such manifest'), size: 10 }],
  });
  const res3 = await putManifest(reg.url, 'missing', 'idx', index, MANIFEST_TYPES.ociIndex);
  assert.equal(res3.status, 400);
  assert.equal(await errorCode(res3), 'MANIFEST_UNKNOWN');
});

test('bad manifests: invalid JSON, wrong digest reference, too large, unknown reference', async () => {
  const bad = await putManifest(reg.url, 'bad', 'x', '{not json');
  assert.equal(bad.status, 400);
  assert.equal(await errorCode(bad), 'MANIFEST_INVALID');
  const { config, layer } = await pushImage(reg.url, 'bad', 'ok', 'bad');
  const body = imageManifest(config, 1, [{ digest: layer, size: 1 }]);
  const wrong = await putManifest(reg.url, 'bad', digestOf('other'), body);
  assert.equal(wrong.status, 400);
  assert.equal(await errorCode(wrong), 'DIGEST_INVALID');
  const byDigest = await putManifest(reg.url, 'bad', digestOf(body), body);
  assert.equal(byDigest.status, 201);
  const huge = imageManifest(config, 1, [{ digest: layer, size: 1 }], { annotations: { pad: 'x'.repeat(MAX_MANIFEST_BYTES) } });
  const tooBig = await putManifest(reg.url, 'bad', 'huge', huge);
  assert.equal(tooBig.status, 413);
  // Just under the limit is fine.
  const big = imageManifest(config, 1, [{ digest: layer, size: 1 }], { annotations: { pad: 'x'.repeat(MAX_MANIFEST_BYTES - 1000) } });
  assert.equal((await putManifest(reg.url, 'bad', 'big', big)).status, 201);
  const unknown = await fetch(`${reg.url}/v2/bad/manifests/nope`);
  assert.equal(unknown.status, 404);
  assert.equal(await errorCode(unknown), 'MANIFEST_UNKNOWN');
  const unknownDigest = await fetch(`${reg.url}/v2/bad/manifests/${digestOf('zzz')}`, { method: 'HEAD' });
  assert.equal(unknownDigest.status, 404);
});

test('tags/list paginates with n and last and a Link header; unknown repository is NAME_UNKNOWN', async () => {
  for (const tag of ['c', 'a', 'b', 'd']) await pushImage(reg.url, 'paged/repo', tag, 'paged');
  const all = await fetch(`${reg.url}/v2/paged/repo/tags/list`);
  assert.deepEqual(await all.json(), { name: 'paged/repo', tags: ['a', 'b', 'c', 'd'] });
  const first = await fetch(`${reg.url}/v2/paged/repo/tags/list?n=2`);
  assert.deepEqual(((await first.json()) as { tags: string[] }).tags, ['a', 'b']);
  assert.equal(first.headers.get('link'), '</v2/paged/repo/tags/list?n=2&last=b>; rel="next"');
  const second = await fetch(`${reg.url}/v2/paged/repo/tags/list?n=2&last=b`);
  assert.deepEqual(((await second.json()) as { tags: string[] }).tags, ['c', 'd']);
  assert.equal(second.headers.get('link'), null);
  const none = await fetch(`${reg.url}/v2/paged/repo/tags/list?n=0`);
  assert.deepEqual(((await none.json()) as { tags: string[] }).tags, []);
  const unknown = await fetch(`${reg.url}/v2/no/such/repo/tags/list`);
  assert.equal(unknown.status, 404);
  assert.equal(await errorCode(unknown), 'NAME_UNKNOWN');
});

test('_catalog lists repositories with pagination', async () => {
  await pushImage(reg.url, 'zz/one', 'latest', 'cat1');
  await pushImage(reg.url, 'zz/two', 'latest', 'cat2');
  const all = (await (await fetch(`${reg.url}/v2/_catalog`)).json()) as { repositories: string[] };
  assert.ok(all.repositories.includes('zz/one') && all.repositories.includes('zz/two'));
  assert.deepEqual(all.repositories, [...all.repositories].sort());
  const page = await fetch(`${reg.url}/v2/_catalog?n=1&last=zz/one`);
  assert.deepEqual(await page.json(), { repositories: ['zz/two'] });
  const link = (await fetch(`${reg.url}/v2/_catalog?n=1`)).headers.get('link');
  assert.match(link ?? '', /^<\/v2\/_catalog\?n=1&last=[^>]+>; rel="next"$/);
});

test('DELETE by tag untags; DELETE by digest removes the manifest and its tags', async () => {
  const { manifest } = await pushImage(reg.url, 'del', 'one', 'del');
  await putManifest(reg.url, 'del', 'two', await (await fetch(`${reg.url}/v2/del/manifests/one`)).text());
  assert.equal((await fetch(`${reg.url}/v2/del/manifests/one`, { method: 'DELETE' })).status, 202);
  assert.equal((await fetch(`${reg.url}/v2/del/manifests/one`)).status, 404);
  assert.equal((await fetch(`${reg.url}/v2/del/manifests/${manifest}`)).status, 200, 'still reachable by digest');
  assert.equal((await fetch(`${reg.url}/v2/del/manifests/${manifest}`, { method: 'DELETE' })).status, 202);
  assert.equal((await fetch(`${reg.url}/v2/del/manifests/${manifest}`)).status, 404);
  assert.equal((await fetch(`${reg.url}/v2/del/manifests/two`)).status, 404, 'tags of a deleted manifest go too');
  const again = await fetch(`${reg.url}/v2/del/manifests/${manifest}`, { method: 'DELETE' });
  assert.equal(again.status, 404);
  assert.equal(await errorCode(again), 'MANIFEST_UNKNOWN');
});

test('referrers lists manifests whose subject matches, filtered by artifactType', async () => {
  const { manifest: subject } = await pushImage(reg.url, 'refs', 'latest', 'refs');
  const subjectSize = Number((await fetch(`${reg.url}/v2/refs/manifests/latest`, { method: 'HEAD' })).headers.get('content-length'));
  const empty = await pushBlob(reg.url, 'refs', '{}');
  const sig = JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST_TYPES.ociManifest,
    artifactType: 'application/vnd.example.signature',
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty, size: 2 },
    layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: empty, size: 2 }],
    subject: { mediaType: MANIFEST_TYPES.ociManifest, digest: subject, size: subjectSize },
    annotations: { who: 'me' },
  });
  const put = await putManifest(reg.url, 'refs', digestOf(sig), sig);
  assert.equal(put.status, 201);
  assert.equal(put.headers.get('oci-subject'), subject);
  const res = await fetch(`${reg.url}/v2/refs/referrers/${subject}`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), MANIFEST_TYPES.ociIndex);
  const index = (await res.json()) as { manifests: Array<{ digest: string; artifactType: string; annotations: object }> };
  assert.equal(index.manifests.length, 1);
  assert.equal(index.manifests[0]?.digest, digestOf(sig));
  assert.equal(index.manifests[0]?.artifactType, 'application/vnd.example.signature');
  assert.deepEqual(index.manifests[0]?.annotations, { who: 'me' });
  const filtered = await fetch(`${reg.url}/v2/refs/referrers/${subject}?artifactType=application/other`);
  assert.equal(filtered.headers.get('oci-filters-applied'), 'artifactType');
  assert.deepEqual(((await filtered.json()) as { manifests: unknown[] }).manifests, []);
  const bad = await fetch(`${reg.url}/v2/refs/referrers/sha256:nothex`);
  assert.equal(bad.status, 400);
});

test('invalid tags and names are refused', async () => {
  const res = await putManifest(reg.url, 'tags', '.hidden', '{}');
  assert.equal(res.status, 400);
  assert.equal(await errorCode(res), 'MANIFEST_INVALID');
  const name = await fetch(`${reg.url}/v2/Bad_Name/manifests/latest`);
  assert.equal(name.status, 400);
  assert.equal(await errorCode(name), 'NAME_INVALID');
});
