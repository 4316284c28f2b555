import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isStaticElf, loaderOf, parseLdd, tempOwnerPid } from './host-files.js';

const LDD = `	linux-vdso.so.1 (0x00007ffd5b9f2000)
	libudev.so.1 => /lib/x86_64-linux-gnu/libudev.so.1 (0x00007f8f7e96f000)
	libglib-2.0.so.0 => /lib/x86_64-linux-gnu/libglib-2.0.so.0 (0x00007f8f7e823000)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f8f7e559000)
	/lib64/ld-linux-x86-64.so.2 (0x00007f8f7eaa8000)
	libmissing.so.3 => not found
`;

test('parseLdd lists libraries and the loader, drops the vDSO, keeps missing ones', () => {
  const e = parseLdd(LDD);
  assert.deepEqual(e, [
    { name: 'libudev.so.1', path: '/lib/x86_64-linux-gnu/libudev.so.1' },
    { name: 'libglib-2.0.so.0', path: '/lib/x86_64-linux-gnu/libglib-2.0.so.0' },
    { name: 'libc.so.6', path: '/lib/x86_64-linux-gnu/libc.so.6' },
    { name: '/lib64/ld-linux-x86-64.so.2', path: '/lib64/ld-linux-x86-64.so.2' },
    { name: 'libmissing.so.3', path: null },
  ]);
  assert.equal(loaderOf(e), '/lib64/ld-linux-x86-64.so.2');
  assert.throws(() => parseLdd('\tnot a dynamic executable\n'), /Not a dynamically linked program/);
});

test('isStaticElf tells the static busybox from a dynamic program', async () => {
  assert.equal(await isStaticElf('/bin/busybox'), true);
  assert.equal(await isStaticElf(process.execPath), false);
});

test('tempOwnerPid reads the pid from mkdtemp names made with one', () => {
  assert.equal(tempOwnerPid('kernel-1234-Ab12Cd'), 1234);
  assert.equal(tempOwnerPid('.build-0123456789ab-77-xYz123'), 77);
  assert.equal(tempOwnerPid('kernel-Ab12Cd'), null);
  assert.equal(tempOwnerPid('0123456789abcdef.qcow2'), null);
});
