import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { probeAccelerator, probeBootSector } from './accel.js';

describe('probeAccelerator', () => {
  it('builds a valid boot sector', () => {
    const b = probeBootSector();
    assert.equal(b.length, 512);
    assert.deepEqual([...b.subarray(0, 4)], [0xb0, 0x31, 0xe6, 0xf4]);
    assert.deepEqual([b[510], b[511]], [0x55, 0xaa]);
  });

  it('chooses TCG on this host (PVM KVM cannot run the test guest in time) and TCG works', async () => {
    const started = Date.now();
    const r = await probeAccelerator({ timeoutMs: 3000 });
    assert.equal(r.accel, 'tcg');
    assert.match(r.reason, /^kvm: .+; using TCG$/);
    // Under PVM the guest either never finishes or QEMU aborts setting MSRs for -cpu host.
    assert.match(r.reason, /did not complete within 3000 ms \(KVM cannot run guests here|the test guest failed \(/);
    assert.ok(Date.now() - started < 20_000);
  });

  it('reports a missing device and a missing QEMU clearly', async () => {
    const r = await probeAccelerator({ kvmDevice: '/nonexistent/kvm' });
    assert.deepEqual(r, { accel: 'tcg', reason: 'kvm: /nonexistent/kvm missing; using TCG' });
    await assert.rejects(probeAccelerator({ qemuBinary: '/nonexistent/qemu-system-x86_64' }), /^FailedPreconditionError: QEMU missing: install qemu-system-x86/);
  });
});
