import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WaitList, type WaitResult } from './wait-list.js';

test('a waiter is answered only by a notify naming its condition, with the exit code and error', async () => {
  const w = new WaitList();
  const got: Array<[string, WaitResult]> = [];
  void w.add('a', 'removed').then((r) => got.push(['removed', r]));
  void w.add('a', 'next-exit').then((r) => got.push(['next-exit', r]));
  void w.add('b', 'next-exit').then((r) => got.push(['b', r]));
  w.notify('a', { ExitCode: 3, Error: '' }, ['next-exit', 'not-running']);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(got, [['next-exit', { StatusCode: 3, Error: null }]]);
  assert.equal(w.count('a'), 1);
  w.notify('a', { ExitCode: 3, Error: 'gone wrong' }, ['removed', 'next-exit', 'not-running']);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(got[1], ['removed', { StatusCode: 3, Error: { Message: 'gone wrong' } }]);
  assert.equal(w.count('a'), 0);
  assert.equal(w.count('b'), 1, 'another container’s waiter is untouched');
  w.notify('nobody', { ExitCode: 0, Error: '' }, ['removed']);
});
