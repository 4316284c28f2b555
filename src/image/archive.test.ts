import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { extract, pack } from 'tar-stream';
import { InvalidArgumentError, NotFoundError } from '../core/errors.js';
import { openDb } from '../store/db.js';
import {
  ANNOTATION_IMAGE_NAME,
  ANNOTATION_REF_NAME,
  familiarName,
  loadImageArchive,
  normalizeEntryName,
  planSave,
  qualifiedName,
  selectImages,
  writeImageArchive,
} from './archive.js';
import { ImageStore, type LayerRecord } from './image-store.js';
import { MEDIA_TYPE, type ImageConfig } from './oci.js';

interface TarEntry {
  name: string;
  type?: 'file' | 'symlink' | 'link' | 'directory' | 'fifo';
  data?: string | Buffer;
  linkname?: string;
}

async function makeTar(entries: TarEntry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const c of p) chunks.push(c as Buffer);
  })();
  for (const { data, ...header } of entries) {
    await new Promise<void>((resolve, reject) => {
      p.entry({ mode: header.type === 'directory' ? 0o755 : 0o644, ...header }, data ?? '', (err) => (err ? reject(err) : resolve()));
    });
  }
  p.finalize();
  await collected;
  return Buffer.concat(chunks);
}

async function readTar(buf: Buffer): Promise<Map<string, Buffer>> {
  const ex = extract();
  const out = new Map<string, Buffer>();
  const done = (async () => {
    for await (const entry of ex) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      out.set(entry.header.name, Buffer.concat(chunks));
    }
  })();
  ex.end(buf);
  await done;
  return out;
}

const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function withStores(fn: (mk: () => ImageStore, base: string) => Promise<void>): Promise<void> {
  const base = await fsp.mkdtemp(path.join(os.tmpdir(), 'vessel-archive-'));
  const dbs: Array<{ close(): void }> = [];
  try {
    let n = 0;
    await fn(() => {
      const dir = path.join(base, `s${++n}`);
      const db = openDb(path.join(base, `s${n}.db`));
      dbs.push(db);
      return new ImageStore(dir, db);
    }, base);
  } finally {
    for (const db of dbs) db.close();
    await fsp.rm(base, { recursive: true, force: true });
  }
}

async function init(store: ImageStore): Promise<ImageStore> {
  await store.init();
  return store;
}

/** An image with two layers (the second gzipped), tagged `tags`. */
async function makeImage(store: ImageStore, tags: string[], marker = 'one'): Promise<{ id: string; layers: LayerRecord[] }> {
  const l1 = await makeTar([{ name: 'bin/', type: 'directory' }, { name: 'bin/hello', data: `#!/bin/sh\necho ${marker}\n` }]);
  const l2 = gzipSync(await makeTar([{ name: 'etc/', type: 'directory' }, { name: 'etc/release', data: `${marker}\n` }]));
  const a = await store.addLayer(Readable.from([l1]), null);
  const b = await store.addLayer(Readable.from([l2]), a.chainId);
  const config: ImageConfig = {
    created: '2024-01-02T03:04:05Z',
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/bin'], Cmd: ['/bin/hello'], Labels: { marker } },
    rootfs: { type: 'layers', diff_ids: [a.diffId, b.diffId] },
    history: [{ created_by: 'layer one' }, { created_by: 'layer two' }],
  };
  const image = await store.commitImage(config, [a, b], tags);
  return { id: image.id, layers: [a, b] };
}

async function save(store: ImageStore, refs: string[]): Promise<Buffer> {
  const plan = await planSave(store, selectImages(store, refs));
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  await writeImageArchive(store, plan, out);
  return Buffer.concat(chunks);
}

async function load(store: ImageStore, data: Buffer) {
  const lines: string[] = [];
  const loaded = await loadImageArchive(store, Readable.from([data]), {
    onLoaded: (i) => lines.push(...(i.names.length ? i.names.map((n) => `Loaded image: ${n}`) : [`Loaded image ID: ${i.id}`])),
  });
  return { loaded, lines };
}

async function counts(store: ImageStore) {
  return { images: store.list().length, layers: store.allLayers().length, blobs: (await store.content.list()).length };
}

test('save writes an OCI layout plus a docker-archive manifest.json, blobs straight from the store', async () => {
  await withStores(async (mk) => {
    const s = await init(mk());
    const { id, layers } = await makeImage(s, ['busybox:latest', 'app/web:v1']);
    const tar = await save(s, ['busybox', 'app/web:v1']);
    const files = await readTar(tar);
    assert.deepEqual(JSON.parse(files.get('oci-layout')!.toString()), { imageLayoutVersion: '1.0.0' });
    for (const [name, body] of files) {
      const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(name);
      if (m) assert.equal(sha(body), `sha256:${m[1]}`, `${name} content matches its name`);
    }
    const index = JSON.parse(files.get('index.json')!.toString());
    assert.equal(index.schemaVersion, 2);
    assert.equal(index.mediaType, MEDIA_TYPE.index);
    const refs = index.manifests.map((m: any) => m.annotations[ANNOTATION_REF_NAME]).sort();
    assert.deepEqual(refs, ['app/web:v1', 'busybox:latest']);
    const full = index.manifests.map((m: any) => m.annotations[ANNOTATION_IMAGE_NAME]).sort();
    assert.deepEqual(full, ['docker.io/app/web:v1', 'docker.io/library/busybox:latest']);
    const image = s.resolve('busybox');
    for (const m of index.manifests) {
      assert.equal(m.digest, image.manifestDigest);
      assert.equal(m.mediaType, MEDIA_TYPE.manifest);
      assert.deepEqual(m.platform, { architecture: 'amd64', os: 'linux' });
      assert.equal(m.size, files.get(`blobs/sha256/${m.digest.slice(7)}`)!.length);
    }
    const manifest = JSON.parse(files.get('manifest.json')!.toString());
    assert.equal(manifest.length, 1, 'one image, written once');
    assert.equal(manifest[0].Config, `blobs/sha256/${id.slice(7)}`);
    assert.deepEqual([...manifest[0].RepoTags].sort(), ['app/web:v1', 'busybox:latest']);
    assert.deepEqual(manifest[0].Layers, layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`));
    // Layer blobs are the stored blobs, byte for byte.
    for (const l of layers) assert.deepEqual(files.get(`blobs/sha256/${l.digest.slice(7)}`), await s.content.readBytes(l.digest));
    // Deterministic: the same images give the same bytes.
    assert.deepEqual(await save(s, ['busybox', 'app/web:v1']), tar);
  });
});

test('selectImages: a repository saves all its tags, an ID saves no names, unknown names fail', async () => {
  await withStores(async (mk) => {
    const s = await init(mk());
    const { id } = await makeImage(s, ['repo:a', 'repo:b', 'other:x']);
    assert.deepEqual(selectImages(s, ['repo'])[0]!.names.sort(), ['repo:a', 'repo:b']);
    assert.deepEqual(selectImages(s, ['repo:a'])[0]!.names, ['repo:a']);
    assert.deepEqual(selectImages(s, [id.slice(7, 19)])[0]!.names, []);
    assert.deepEqual(selectImages(s, [id])[0]!.names, []);
    assert.throws(() => selectImages(s, ['nope:latest']), NotFoundError);
    assert.throws(() => selectImages(s, []), InvalidArgumentError);
  });
});

test('load round trip: same image ID, manifest, tags and layers in another store', async () => {
  await withStores(async (mk) => {
    const a = await init(mk());
    const { id } = await makeImage(a, ['busybox:latest', 'busybox:two']);
    const orig = a.resolve(id);
    const tar = await save(a, ['busybox:latest', 'busybox:two']);
    const b = await init(mk());
    const { loaded, lines } = await load(b, tar);
    assert.deepEqual(lines.sort(), ['Loaded image: busybox:latest', 'Loaded image: busybox:two']);
    assert.equal(loaded.length, 1);
    assert.equal(loaded[0]!.id, id);
    const got = b.resolve('busybox:two');
    assert.equal(got.id, id);
    assert.equal(got.manifestDigest, orig.manifestDigest);
    assert.deepEqual(got.tags, ['busybox:latest', 'busybox:two']);
    assert.deepEqual(got.layers, orig.layers);
    const hello = await fsp.readFile(path.join(b.lowerDirs(got).at(-1)!, 'bin', 'hello'), 'utf8');
    assert.match(hello, /echo one/);
    // Loading again is idempotent; no temp files are left in the ingest dir.
    await load(b, tar);
    assert.equal(b.list().length, 1);
    assert.deepEqual(await fsp.readdir(path.join(b.content.root, 'ingest')), []);
  });
});

test('load: an untagged save, and a gzipped archive', async () => {
  await withStores(async (mk) => {
    const a = await init(mk());
    const { id } = await makeImage(a, ['x:1']);
    const tar = await save(a, [id]);
    const b = await init(mk());
    const { lines } = await load(b, gzipSync(tar));
    assert.deepEqual(lines, [`Loaded image ID: ${id}`]);
    assert.deepEqual(b.resolve(id).tags, []);
  });
});

test('load: a legacy docker-archive (<id>/layer.tar, <hex>.json, a symlinked shared layer)', async () => {
  await withStores(async (mk) => {
    const l1 = await makeTar([{ name: 'hello.txt', data: 'hi\n' }]);
    const l2 = await makeTar([{ name: 'two.txt', data: 'two\n' }]);
    const mkConfig = (diffIds: string[]) =>
      JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: diffIds } });
    const c1 = mkConfig([sha(l1)]);
    const c2 = mkConfig([sha(l1), sha(l2)]);
    const tar = await makeTar([
      { name: 'aaaa/', type: 'directory' },
      { name: 'aaaa/layer.tar', data: l1 },
      { name: 'bbbb/', type: 'directory' },
      { name: 'bbbb/layer.tar', type: 'symlink', linkname: '../aaaa/layer.tar' },
      { name: 'cccc/layer.tar', data: l2 },
      { name: `${sha(c1).slice(7)}.json`, data: c1 },
      { name: `${sha(c2).slice(7)}.json`, data: c2 },
      {
        name: 'manifest.json',
        data: JSON.stringify([
          { Config: `${sha(c1).slice(7)}.json`, RepoTags: ['docker.io/library/one:latest'], Layers: ['aaaa/layer.tar'] },
          { Config: `${sha(c2).slice(7)}.json`, RepoTags: ['two:v2'], Layers: ['bbbb/layer.tar', './cccc/layer.tar'] },
        ]),
      },
      { name: 'repositories', data: '{}' },
    ]);
    const s = await init(mk());
    const { lines } = await load(s, tar);
    assert.deepEqual(lines, ['Loaded image: one:latest', 'Loaded image: two:v2']);
    assert.equal(s.resolve('one').id, sha(c1));
    assert.equal(s.resolve('two:v2').id, sha(c2));
    assert.equal(s.allLayers().length, 2, 'the shared layer is stored once');
  });
});

test('load: an OCI index nested one level picks the host platform', async () => {
  await withStores(async (mk) => {
    const a = await init(mk());
    const { id } = await makeImage(a, ['multi:latest']);
    const files = await readTar(await save(a, ['multi']));
    const inner = JSON.parse(files.get('index.json')!.toString()).manifests[0];
    const nested = JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPE.index,
      manifests: [
        { mediaType: MEDIA_TYPE.manifest, digest: `sha256:${'0'.repeat(64)}`, size: 10, platform: { os: 'linux', architecture: 's390x' } },
        { mediaType: MEDIA_TYPE.manifest, digest: inner.digest, size: inner.size, platform: { os: 'linux', architecture: 'amd64' } },
      ],
    });
    const entries: TarEntry[] = [...files].filter(([n]) => n.startsWith('blobs/sha256/')).map(([name, data]) => ({ name, data }));
    entries.push({ name: `blobs/sha256/${sha(nested).slice(7)}`, data: nested });
    entries.push({
      name: 'index.json',
      data: JSON.stringify({
        schemaVersion: 2,
        manifests: [
          { mediaType: MEDIA_TYPE.index, digest: sha(nested), size: nested.length, annotations: { [ANNOTATION_REF_NAME]: 'multi:v9' } },
        ],
      }),
    });
    const b = await init(mk());
    const { lines } = await load(b, await makeTar(entries));
    assert.deepEqual(lines, ['Loaded image: multi:v9']);
    assert.equal(b.resolve('multi:v9').id, id);
  });
});

test('load refuses a flipped byte in a layer blob, and leaves the store as it was', async () => {
  await withStores(async (mk) => {
    const a = await init(mk());
    const { layers } = await makeImage(a, ['busybox:latest']);
    const files = await readTar(await save(a, ['busybox']));
    const name = `blobs/sha256/${layers[1]!.digest.slice(7)}`;
    const blob = Buffer.from(files.get(name)!);
    blob[Math.floor(blob.length / 2)] ^= 0x01;
    const entries: TarEntry[] = [...files].map(([n, data]) => ({ name: n, ...(n.endsWith('/') ? { type: 'directory' as const } : { data: n === name ? blob : data }) }));
    const b = await init(mk());
    await makeImage(b, ['existing:1'], 'other');
    const before = await counts(b);
    await assert.rejects(load(b, await makeTar(entries)), (e: Error) => {
      assert.ok(e instanceof InvalidArgumentError, String(e));
      assert.match(e.message, new RegExp(`^Digest mismatch for layer ${name}: expected ${layers[1]!.digest}, got sha256:[a-f0-9]{64}$`));
      return true;
    });
    assert.deepEqual(await counts(b), before);
  });
});

test('load: a corrupt legacy layer.tar (no digest in its name) is caught by the diff ID, and its layers are collected', async () => {
  await withStores(async (mk) => {
    const l1 = await makeTar([{ name: 'a.txt', data: 'a\n' }]);
    const l2 = await makeTar([{ name: 'b.txt', data: 'b\n' }]);
    const config = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha(l1), sha(l2)] } });
    const bad = Buffer.from(l2);
    bad[512] ^= 0x20; // in the file data: still a valid tar, different content
    const tar = await makeTar([
      { name: 'l1/layer.tar', data: l1 },
      { name: 'l2/layer.tar', data: bad },
      { name: 'config.json', data: config },
      { name: 'manifest.json', data: JSON.stringify([{ Config: 'config.json', RepoTags: ['t:1'], Layers: ['l1/layer.tar', 'l2/layer.tar'] }]) },
    ]);
    const s = await init(mk());
    const before = await counts(s);
    await assert.rejects(load(s, tar), /^InvalidArgumentError: Layer l2\/layer.tar does not match the image config: diff ID sha256:[a-f0-9]{64}, expected sha256:/);
    assert.deepEqual(await counts(s), before, 'no image, and the first layer was garbage-collected');
    assert.deepEqual(await fsp.readdir(s.layerRoot), []);
  });
});

test('load: unsafe or malformed archives fail with one clear line and write nothing outside the spool', async () => {
  await withStores(async (mk, base) => {
    const s = await init(mk());
    const cases: Array<[string, Buffer, RegExp]> = [
      ['dot-dot', await makeTar([{ name: '../escape', data: 'x' }]), /^Invalid image archive: entry name "\.\.\/escape" leaves the archive$/],
      ['absolute', await makeTar([{ name: '/etc/x', data: 'x' }]), /^Invalid image archive: absolute entry name/],
      [
        'symlink out',
        await makeTar([{ name: 'manifest.json', type: 'symlink', linkname: '../../../../etc/passwd' }]),
        /^Invalid image archive: symbolic link "manifest.json" points outside the archive$/,
      ],
      ['fifo', await makeTar([{ name: 'p', type: 'fifo' }]), /^Invalid image archive: unexpected fifo entry "p"$/],
      ['empty', Buffer.alloc(0), /^Invalid image archive: neither index.json \(OCI layout\) nor manifest.json \(docker-archive\) found$/],
      ['garbage', Buffer.from('this is not a tar archive at all'.repeat(40)), /^Invalid image archive: /],
      ['truncated', (await makeTar([{ name: 'index.json', data: 'x'.repeat(5000) }])).subarray(0, 2000), /^Invalid image archive: /],
      ['bad gzip', Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.alloc(100, 7)]), /^Invalid image archive: gzip: /],
      ['bad json', await makeTar([{ name: 'index.json', data: '{' }]), /^Invalid image archive: index.json is not valid JSON/],
      [
        'missing blob',
        await makeTar([{ name: 'index.json', data: JSON.stringify({ manifests: [{ mediaType: MEDIA_TYPE.manifest, digest: `sha256:${'a'.repeat(64)}`, size: 2 }] }) }]),
        /^Invalid image archive: manifest sha256:a{64} is missing from the archive$/,
      ],
    ];
    for (const [what, data, pattern] of cases) {
      await assert.rejects(load(s, data), (e: Error) => {
        assert.ok(e instanceof InvalidArgumentError, `${what}: ${String(e)}`);
        assert.match(e.message, pattern, what);
        assert.ok(!e.message.includes('\n'), `${what}: one line`);
        return true;
      });
    }
    assert.deepEqual(await counts(s), { images: 0, layers: 0, blobs: 0 });
    assert.deepEqual(await fsp.readdir(path.join(s.content.root, 'ingest')), []);
    assert.deepEqual((await fsp.readdir(base)).filter((n) => !/^s\d+(\.db.*)?$/.test(n)), []);
  });
});

test('names: entry names, qualified and familiar image names', () => {
  assert.equal(normalizeEntryName('./blobs//sha256/x/'), 'blobs/sha256/x');
  assert.equal(normalizeEntryName('./'), '');
  assert.throws(() => normalizeEntryName('a/../../b'), /leaves the archive/);
  assert.equal(qualifiedName('busybox:latest'), 'docker.io/library/busybox:latest');
  assert.equal(qualifiedName('team/app:v1'), 'docker.io/team/app:v1');
  assert.equal(qualifiedName('localhost:5000/app:v1'), 'localhost:5000/app:v1');
  assert.equal(familiarName('docker.io/library/busybox:latest'), 'busybox:latest');
  assert.equal(familiarName('docker.io/team/app'), 'team/app:latest');
  assert.equal(familiarName('localhost:5000/app:v1'), 'localhost:5000/app:v1');
  assert.throws(() => familiarName('Not Valid'), /^InvalidArgumentError: Invalid image archive: bad image name/);
});
