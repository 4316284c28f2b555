import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitCpArg } from './cp.js';

test('splitCpArg: Docker rules for container vs local paths', () => {
  assert.deepEqual(splitCpArg('web:/etc/passwd'), { container: 'web', path: '/etc/passwd' });
  assert.deepEqual(splitCpArg('web:rel'), { container: 'web', path: 'rel' });
  assert.deepEqual(splitCpArg('/abs:with:colons'), { container: null, path: '/abs:with:colons' });
  assert.deepEqual(splitCpArg('./a:b'), { container: null, path: './a:b' });
  assert.deepEqual(splitCpArg('dir/a:b'), { container: null, path: 'dir/a:b' });
  assert.deepEqual(splitCpArg('file'), { container: null, path: 'file' });
});
