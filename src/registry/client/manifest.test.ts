import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MT, localLayerType, parseConfig, parseManifest, sha256Of } from './manifest.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;
const buf = (v: unknown) => Buffer.from(JSON.stringify(v));

test('parseManifest reads an OCI image manifest', () => {
  const m = parseManifest(
    buf({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { mediaType: MT.ociConfig, digest: D('a'), size: 10 },
      layers: [{ mediaType: MT.ociLayerGzip, digest: D('b'), size: 20 }],
    }),
  );
  assert.equal(m.kind, 'image');
  if (m.kind !== 'image') return;
  assert.equal(m.config.digest, D('a'));
  assert.deepEqual(m.layers.map((l) => l.size), [20]);
});

test('parseManifest takes the kind from Content-Type when mediaType is missing (umoci, skopeo)', () => {
  const m = parseManifest(
    buf({ schemaVersion: 2, config: { mediaType: MT.ociConfig, digest: D('a'), size: 1 }, layers: [] }),
    `${MT.ociManifest}; charset=utf-8`,
  );
  assert.equal(m.kind, 'image');
  assert.equal(m.mediaType, MT.ociManifest);
});

test('parseManifest reads Docker schema2 manifests and manifest lists', () => {
  const m = parseManifest(
    buf({
      schemaVersion: 2,
      mediaType: MT.dockerManifest,
      config: { mediaType: MT.dockerConfig, digest: D('c'), size: 5 },
      layers: [{ mediaType: MT.dockerLayerGzip, digest: D('d'), size: 6 }],
    }),
  );
  assert.equal(m.mediaType, MT.dockerManifest);
  const l = parseManifest(
    buf({
      schemaVersion: 2,
      mediaType: MT.dockerList,
      manifests: [{ mediaType: MT.dockerManifest, digest: D('e'), size: 7, platform: { os: 'linux', architecture: 'amd64' } }],
    }),
  );
  assert.equal(l.kind, 'index');
  if (l.kind === 'index') assert.deepEqual(l.manifests[0]?.platform, { os: 'linux', architecture: 'amd64' });
  const oci = parseManifest(buf({ schemaVersion: 2, manifests: [] }));
  assert.equal(oci.kind, 'index');
});

test('parseManifest rejects what pulling cannot use', () => {
  assert.throws(() => parseManifest(Buffer.from('{')), /not JSON/);
  assert.throws(() => parseManifest(buf({ schemaVersion: 1, name: 'x' })), /schema version 1/);
  assert.throws(() => parseManifest(buf({ schemaVersion: 2, mediaType: 'application/x-other', layers: [] })), /Unsupported manifest media type/);
  const base = { schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: MT.ociConfig, digest: D('a'), size: 1 } };
  assert.throws(() => parseManifest(buf({ ...base, layers: [{ mediaType: MT.ociLayer, digest: 'md5:00', size: 1 }] })), /unsupported digest/);
  assert.throws(() => parseManifest(buf({ ...base, layers: [{ mediaType: MT.ociLayer, digest: D('b'), size: -1 }] })), /invalid size/);
  assert.throws(
    () => parseManifest(buf({ ...base, layers: [{ mediaType: 'application/vnd.example.artifact', digest: D('b'), size: 1 }] })),
    /Unsupported layer media type/,
  );
});

test('parseConfig checks diff_ids against the manifest', () => {
  const cfg = buf({ os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: [D('1'), D('2')] } });
  assert.deepEqual(parseConfig(cfg, 2).diffIds, [D('1'), D('2')]);
  assert.throws(() => parseConfig(cfg, 1), /config lists 2 layers, the manifest 1/);
  assert.throws(() => parseConfig(buf({ rootfs: {} }), 0), /diff_ids/);
});

test('localLayerType maps Docker layer types to OCI ones', () => {
  assert.equal(localLayerType(MT.dockerLayerGzip), MT.ociLayerGzip);
  assert.equal(localLayerType(MT.ociLayerZstd), MT.ociLayerZstd);
  assert.equal(localLayerType('application/vnd.docker.image.rootfs.diff.tar'), MT.ociLayer);
  assert.equal(sha256Of(Buffer.from('')), 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});
