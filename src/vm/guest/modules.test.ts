import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NotFoundError } from '../../core/errors.js';
import { canonicalModuleName, moduleNameFromPath, parseModinfoDepends, parseModulesBuiltin, resolveModuleOrder, type ModuleInfo } from './modules.js';

test('moduleNameFromPath strips the directory and any compression suffix', () => {
  assert.equal(moduleNameFromPath('kernel/drivers/block/virtio_blk.ko'), 'virtio_blk');
  assert.equal(moduleNameFromPath('kernel/fs/fuse/fuse.ko.xz'), 'fuse');
  assert.equal(moduleNameFromPath('kernel/net/x/nf-nat.ko.zst'), 'nf_nat');
  assert.equal(moduleNameFromPath('modules.order'), null);
  assert.equal(canonicalModuleName('virtio-net'), 'virtio_net');
});

test('parseModinfoDepends reads the depends= string of a module image', () => {
  const ko = Buffer.concat([
    Buffer.from('\x7fELF garbage\0'),
    Buffer.from('license=GPL\0depends=virtio,virtio_ring,net-failover\0retpoline=Y\0name=virtio_net\0'),
  ]);
  assert.deepEqual(parseModinfoDepends(ko), ['virtio', 'virtio_ring', 'net_failover']);
  assert.deepEqual(parseModinfoDepends(Buffer.from('\0depends=\0name=virtio\0')), []);
  assert.deepEqual(parseModinfoDepends(Buffer.from('no modinfo here')), []);
});

test('parseModulesBuiltin collects names from modules.builtin', () => {
  const b = parseModulesBuiltin('kernel/fs/ext4/ext4.ko\nkernel/fs/jbd2/jbd2.ko\n\n');
  assert.deepEqual([...b].sort(), ['ext4', 'jbd2']);
});

function mods(list: Array<[string, string[]]>): Map<string, ModuleInfo> {
  return new Map(list.map(([name, depends]) => [name, { name, path: `kernel/${name}.ko`, depends }]));
}

test('resolveModuleOrder puts dependencies first, once each, and skips built-ins', () => {
  const available = mods([
    ['virtio', []],
    ['virtio_ring', ['virtio']],
    ['virtio_pci', ['virtio', 'virtio_ring', 'virtio_pci_modern_dev']],
    ['virtio_pci_modern_dev', []],
    ['virtio_blk', ['virtio', 'virtio_ring']],
    ['virtio_net', ['virtio', 'virtio_ring', 'net_failover']],
    ['net_failover', ['failover']],
    ['failover', []],
  ]);
  const order = resolveModuleOrder(['virtio_pci', 'virtio-blk', 'virtio_net', 'ext4'], available, new Set(['ext4']));
  const names = order.map((m) => m.name);
  assert.deepEqual(names, ['virtio', 'virtio_ring', 'virtio_pci_modern_dev', 'virtio_pci', 'virtio_blk', 'failover', 'net_failover', 'virtio_net']);
  for (const m of order) for (const d of m.depends) assert.ok(names.indexOf(d) < names.indexOf(m.name), `${d} before ${m.name}`);
});

test('resolveModuleOrder names the module that needs a missing dependency', () => {
  const available = mods([['virtio_blk', ['virtio']]]);
  assert.throws(() => resolveModuleOrder(['virtio_blk'], available, new Set()), (e: unknown) => {
    assert.ok(e instanceof NotFoundError);
    assert.equal(e.message, 'Kernel module not found: virtio (needed by virtio_blk)');
    return true;
  });
  assert.throws(() => resolveModuleOrder(['nope'], available, new Set()), /Kernel module not found: nope$/);
});

test('resolveModuleOrder survives a dependency cycle', () => {
  const available = mods([['a', ['b']], ['b', ['a']]]);
  assert.deepEqual(resolveModuleOrder(['a'], available, new Set()).map((m) => m.name), ['b', 'a']);
});
