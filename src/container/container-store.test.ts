import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDb } from '../store/db.js';
import { ContainerStore } from './container-store.js';
import type { ContainerRecord } from './model.js';

function record(id: string, name: string, created: string): ContainerRecord {
  return {
    id,
    name,
    imageId: 'sha256:img',
    created,
    spec: { Config: { Image: 'busybox', Cmd: ['true'] }, HostConfig: {}, NetworkingConfig: null },
    state: { Status: 'created' } as ContainerRecord['state'],
  } as ContainerRecord;
}

function open(t: { after(fn: () => void): void }): { file: string; store: ContainerStore } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vessel-cstore-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'vessel.db');
  return { file, store: new ContainerStore(openDb(file)) };
}

test('lookups follow Docker: full ID, then exact name, then a unique ID prefix', (t) => {
  const { store } = open(t);
  const a = `abc1${'0'.repeat(60)}`;
  const b = `abc2${'0'.repeat(60)}`;
  store.insert(record(a, 'web', '2026-01-01T00:00:00Z'));
  store.insert(record(b, a.slice(0, 12), '2026-01-02T00:00:00Z')); // a name that looks like the other's ID prefix
  assert.equal(store.resolve(a).id, a);
  assert.equal(store.resolve('/web').id, a);
  assert.equal(store.resolve(a.slice(0, 12)).id, b, 'an exact name wins over an ID prefix');
  assert.equal(store.resolve('abc2').id, b);
  assert.throws(() => store.resolve('abc'), /Multiple IDs found with provided prefix: abc/);
  assert.throws(() => store.resolve('nope'), /No such container: nope/);
  assert.throws(() => store.resolve(''), /A container name or ID is needed/);
  assert.deepEqual(
    store.list().map((c) => c.id),
    [b, a],
    'newest first',
  );
});

test('writes reach the database before memory, and a new store reads them back', (t) => {
  const { file, store } = open(t);
  const id = 'f'.repeat(64);
  store.insert(record(id, 'one', '2026-01-01T00:00:00Z'));
  assert.throws(() => store.insert(record('e'.repeat(64), 'one', '2026-01-01T00:00:00Z')), /name "\/one" is already in use/);
  assert.equal(store.get('e'.repeat(64)), null, 'a refused insert leaves nothing behind');
  store.rename(id, 'two');
  assert.equal(store.nameTaken('one'), false);
  assert.equal(store.resolve('two').id, id);
  const c = store.get(id)!;
  c.state.Status = 'exited';
  assert.equal(store.get(id)!.state.Status, 'created', 'each read is a copy of its own');
  store.saveState(id, c.state);
  assert.deepEqual(store.usersOfImage('sha256:img'), [id]);

  const again = new ContainerStore(openDb(file));
  assert.equal(again.resolve('two').state.Status, 'exited');
  again.delete(id);
  assert.equal(again.get(id), null);
  assert.equal(again.nameTaken('two'), false);
  assert.equal(new ContainerStore(openDb(file)).list().length, 0);
});
