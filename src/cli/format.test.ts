import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ellipsis, pathName, renderListing, renderTable, shortId, splitRepoTag } from './format.js';
import { containerRow, formatPorts } from './commands/ps.js';
import { imageRows } from './commands/images.js';

test('renderTable pads columns by 3 (min 10) and leaves the last unpadded', () => {
  assert.equal(renderTable([['A', 'BB', 'C'], ['longer-cell-x', 'y', 'z']]), 'A               BB        C\nlonger-cell-x   y         z\n');
});

test('ids, ellipsis, refs, path names', () => {
  assert.equal(shortId(`sha256:${'a'.repeat(64)}`), 'a'.repeat(12));
  assert.equal(ellipsis('abcdefghij', 5), 'abcd…');
  assert.equal(ellipsis('abc', 5), 'abc');
  assert.deepEqual(splitRepoTag('busybox:latest'), { repo: 'busybox', tag: 'latest' });
  assert.deepEqual(splitRepoTag('127.0.0.1:5000/img'), { repo: '127.0.0.1:5000/img', tag: '' });
  assert.deepEqual(splitRepoTag('127.0.0.1:5000/img:2'), { repo: '127.0.0.1:5000/img', tag: '2' });
  assert.equal(pathName('127.0.0.1:5000/img:2'), '127.0.0.1:5000/img:2');
  assert.equal(pathName('a b#c'), 'a%20b%23c');
});

test('renderListing: json lines with sorted keys, templates, table templates', () => {
  const rows = [{ Name: 'web', ID: 'abc' }];
  assert.equal(renderListing(rows, 'json', []), '{"ID":"abc","Name":"web"}\n');
  assert.equal(renderListing(rows, '{{.Name}}:{{.ID}}', []), 'web:abc\n');
  assert.equal(renderListing(rows, 'table {{.ID}}\\t{{.Name}}', []), 'CONTAINER ID   NAME\nabc            web\n');
});

test('ps rows: ports, names, command, created', () => {
  assert.equal(
    formatPorts([
      { PrivatePort: 443, Type: 'tcp' },
      { IP: '0.0.0.0', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' },
      { IP: '::', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' },
    ]),
    '443/tcp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp',
  );
  const now = 1_700_000_000_000;
  const row = containerRow(
    { Id: 'b'.repeat(64), Names: ['/web'], Image: 'busybox', Command: 'sh -c "sleep 1000; echo done"', Created: 1_700_000_000 - 5, Status: 'Up 5 seconds', State: 'running' },
    true,
    now,
  );
  assert.equal(row.ID, 'b'.repeat(12));
  assert.equal(row.Names, 'web');
  assert.equal(row.Command, '"sh -c \\"sleep 1000; …"');
  assert.equal(row.RunningFor, '5 seconds ago');
  assert.equal(row.Status, 'Up 5 seconds');
});

test('image rows: one per tag, <none> for untagged', () => {
  const rows = imageRows(
    [
      { Id: `sha256:${'c'.repeat(64)}`, RepoTags: ['busybox:latest', 'busybox:1'], Created: 1_700_000_000 - 7200, Size: 4_261_000 },
      { Id: `sha256:${'d'.repeat(64)}`, RepoTags: null, Created: 1_700_000_000, Size: 10 },
    ],
    false,
    1_700_000_000_000,
  );
  assert.deepEqual(
    rows.map((r) => [r.Repository, r.Tag, r.ID, r.CreatedSince, r.Size]),
    [
      ['busybox', 'latest', 'c'.repeat(12), '2 hours ago', '4.26MB'],
      ['busybox', '1', 'c'.repeat(12), '2 hours ago', '4.26MB'],
      ['<none>', '<none>', 'd'.repeat(12), 'Less than a second ago', '10B'],
    ],
  );
});
