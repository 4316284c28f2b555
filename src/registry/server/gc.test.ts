import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { collectGarbage } from './gc.js';
import { MANIFEST_TYPES } from './manifest.js';
import { digestOf, pushBlob, pushImage, putManifest, startTestRegistry } from './testing.js';

function blobFile(root: string, digest: string): string {
  return path.join(root, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

test('gc removes the blobs of a deleted manifest and keeps shared ones', async () => {
  const reg = await startTestRegistry();
  try {
    const shared = await pushBlob(reg.url, 'gc/a', 'shared layer');
    await pushBlob(reg.url, 'gc/b', 'shared layer');
    const a = await pushImage(reg.url, 'gc/a', 'latest', 'a');
    const b = await pushImage(reg.url, 'gc/b', 'latest', 'b');
    // Both images also use the shared layer.
    const withShared = async (repo: string, img: { config: string; layer: string }): Promise<string> => {
      const body = JSON.stringify({
        schemaVersion: 2,
        mediaType: MANIFEST_TYPES.ociManifest,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: img.config, size: 1 },
        layers: [
          { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: img.layer, size: 1 },
          { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: shared, size: 12 },
        ],
      });
      assert.equal((await putManifest(reg.url, repo, 'shared', body)).status, 201);
      return digestOf(body);
    };
    const aShared = await withShared('gc/a', a);
    await withShared('gc/b', b);
    const orphan = await pushBlob(reg.url, 'gc/a', 'never referenced');

    // Dry run first: reports, removes nothing.
    const dry = await collectGarbage(reg.root, { dryRun: true });
    assert.deepEqual(dry.blobsRemoved.map((x) => x.digest), [orphan]);
    assert.ok(existsSync(blobFile(reg.root, orphan)));

    // Delete every manifest of gc/a (by digest).
    for (const d of [a.manifest, aShared]) {
      assert.equal((await fetch(`${reg.url}/v2/gc/a/manifests/${d}`, { method: 'DELETE' })).status, 202);
    }
    const report = await collectGarbage(reg.root);
    const removed = report.blobsRemoved.map((x) => x.digest).sort();
    assert.deepEqual(removed, [a.config, a.layer, a.manifest, aShared, orphan].sort());
    assert.equal(report.bytesReclaimed, report.blobsRemoved.reduce((n, x) => n + x.size, 0));
    for (const d of removed) assert.ok(!existsSync(blobFile(reg.root, d)), `${d} should be gone`);
    for (const d of [shared, b.config, b.layer, b.manifest]) assert.ok(existsSync(blobFile(reg.root, d)), `${d} should stay`);
    // gc/b still pulls completely; gc/a no longer serves the swept blobs.
    assert.equal((await fetch(`${reg.url}/v2/gc/b/blobs/${shared}`)).status, 200);
    assert.equal((await fetch(`${reg.url}/v2/gc/b/manifests/shared`)).status, 200);
    assert.equal((await fetch(`${reg.url}/v2/gc/a/blobs/${a.layer}`)).status, 404);
    // A second run finds nothing.
    assert.deepEqual((await collectGarbage(reg.root)).blobsRemoved, []);
  } finally {
    await reg.close();
  }
});

test('gc --delete-untagged removes manifests no tag reaches but keeps index children and referrers', async () => {
  const reg = await startTestRegistry();
  try {
    const old = await pushImage(reg.url, 'ut', 'v1', 'old');
    const child = await pushImage(reg.url, 'ut', 'tmp', 'child');
    const childSize = Number((await fetch(`${reg.url}/v2/ut/manifests/tmp`, { method: 'HEAD' })).headers.get('content-length'));
    const index = JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_TYPES.ociIndex,
      manifests: [{ mediaType: MANIFEST_TYPES.ociManifest, digest: child.manifest, size: childSize }],
    });
    assert.equal((await putManifest(reg.url, 'ut', 'multi', index, MANIFEST_TYPES.ociIndex)).status, 201);
    assert.equal((await fetch(`${reg.url}/v2/ut/manifests/tmp`, { method: 'DELETE' })).status, 202);
    // v1 is re-pointed at a new image: the old manifest becomes untagged.
    const fresh = await pushImage(reg.url, 'ut', 'v1', 'new');
    const empty = await pushBlob(reg.url, 'ut', '{}');
    const sig = JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_TYPES.ociManifest,
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty, size: 2 },
      layers: [],
      subject: { mediaType: MANIFEST_TYPES.ociManifest, digest: fresh.manifest, size: 1 },
    });
    assert.equal((await putManifest(reg.url, 'ut', digestOf(sig), sig)).status, 201);

    const report = await collectGarbage(reg.root, { deleteUntagged: true });
    assert.deepEqual(report.manifestsRemoved, [{ repository: 'ut', digest: old.manifest }]);
    assert.deepEqual(report.blobsRemoved.map((x) => x.digest).sort(), [old.config, old.layer, old.manifest].sort());
    for (const d of [child.manifest, child.layer, fresh.manifest, digestOf(sig), empty]) assert.ok(existsSync(blobFile(reg.root, d)));
    assert.equal((await fetch(`${reg.url}/v2/ut/manifests/${old.manifest}`)).status, 404);
  } finally {
    await reg.close();
  }
});

test('gc removes stale upload sessions and temp files, keeps recent ones', async () => {
  const reg = await startTestRegistry();
  try {
    const res = await fetch(`${reg.url}/v2/up/blobs/uploads/`, { method: 'POST' });
    const fresh = res.headers.get('docker-upload-uuid') as string;
    const staleDir = path.join(reg.root, 'uploads', '00000000-0000-4000-8000-000000000000');
    mkdirSync(staleDir);
    writeFileSync(path.join(staleDir, 'data'), 'partial');
    writeFileSync(path.join(staleDir, 'state.json'), JSON.stringify({ name: 'up', startedAt: '2020-01-01T00:00:00Z' }));
    const tmp = path.join(reg.root, 'tmp', 'leftover');
    writeFileSync(tmp, 'x');
    const old = new Date(Date.now() - 48 * 3600_000);
    for (const f of [path.join(staleDir, 'data'), path.join(staleDir, 'state.json'), tmp]) utimesSync(f, old, old);
    const report = await collectGarbage(reg.root);
    assert.deepEqual(report.uploadsRemoved, [{ uuid: path.basename(staleDir), size: 7 }]);
    assert.deepEqual(readdirSync(path.join(reg.root, 'uploads')), [fresh]);
    assert.deepEqual(readdirSync(path.join(reg.root, 'tmp')), []);
  } finally {
    await reg.close();
  }
});

test('gc on a directory that is not a registry root fails with one clear error', async () => {
  await assert.rejects(collectGarbage('/nonexistent/registry'), /^NotFoundError: Not a registry root: \/nonexistent\/registry/);
});
