import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../core/errors.js';
import { guestKernelCmdline, hostTscKhz, isIPv4Cidr, parseCpuinfoTscKhz, parseDmesgTscKhz, type GuestIdentity } from './cmdline.js';

const id: GuestIdentity = {
  hostname: 'web-1',
  machineId: '0123456789abcdef0123456789abcdef',
  nics: [
    { mac: '52:54:00:AA:bb:01', address: '10.89.0.5/24', gateway: '10.89.0.1' },
    { mac: '52:54:00:aa:bb:02' },
  ],
  dns: ['10.89.0.1', '9.9.9.9'],
};

test('guestKernelCmdline carries the identity as vessel.* parameters', () => {
  assert.equal(
    guestKernelCmdline(id),
    'console=ttyS0 panic=-1 quiet loglevel=4 rw i8042.noaux i8042.nokbd ' +
      'vessel.hostname=web-1 vessel.machine_id=0123456789abcdef0123456789abcdef ' +
      'vessel.net0=52:54:00:aa:bb:01,10.89.0.5/24,10.89.0.1 vessel.net1=52:54:00:aa:bb:02 vessel.dns=10.89.0.1,9.9.9.9',
  );
});

test('guestKernelCmdline adds the console, tsc_early_khz and extra parameters', () => {
  const line = guestKernelCmdline({ ...id, nics: [], dns: [] }, { console: 'hvc0', tscKhz: 2000000, extra: ['vessel.grow=0', 'debug'] });
  assert.match(line, /^console=hvc0 /);
  assert.match(line, / tsc_early_khz=2000000 /);
  assert.match(line, / vessel\.grow=0 debug$/);
  assert.doesNotMatch(line, /vessel\.net|vessel\.dns/);
});

test('guestKernelCmdline rejects anything that would break the command line', () => {
  const bad: Array<[Partial<GuestIdentity>, RegExp]> = [
    [{ hostname: 'a b' }, /^Invalid guest hostname: "a b"$/],
    [{ hostname: '-x' }, /Invalid guest hostname/],
    [{ hostname: 'x'.repeat(64) }, /Invalid guest hostname/],
    [{ machineId: 'ABCDEF0123456789abcdef0123456789' }, /^Invalid machine id/],
    [{ machineId: '0123' }, /^Invalid machine id/],
    [{ nics: [{ mac: '52:54:00:aa:bb' }] }, /^Invalid MAC address of NIC 0/],
    [{ nics: [{ mac: '52:54:00:aa:bb:01' }, { mac: '52:54:00:AA:BB:01' }] }, /^Duplicate MAC address: 52:54:00:aa:bb:01$/],
    [{ nics: [{ mac: '52:54:00:aa:bb:01', address: '10.89.0.5' }] }, /^Invalid address of NIC 0/],
    [{ nics: [{ mac: '52:54:00:aa:bb:01', address: '10.89.0.256/24' }] }, /^Invalid address of NIC 0/],
    [{ nics: [{ mac: '52:54:00:aa:bb:01', gateway: '10.89.0.1' }] }, /^NIC 0 has a gateway but no address$/],
    [{ dns: ['8.8.8.8 x'] }, /^Invalid DNS server/],
  ];
  for (const [patch, re] of bad) {
    assert.throws(() => guestKernelCmdline({ ...id, ...patch }), (e: unknown) => e instanceof InvalidArgumentError && re.test(e.message), JSON.stringify(patch));
  }
  assert.throws(() => guestKernelCmdline(id, { extra: ['a b'] }), /^InvalidArgumentError: Invalid kernel parameter/);
  assert.throws(() => guestKernelCmdline(id, { tscKhz: 1.5 }), /Invalid TSC frequency/);
  assert.throws(() => guestKernelCmdline(id, { console: 'ttyS0 init=/bin/sh' }), /Invalid console/);
});

test('isIPv4Cidr accepts prefixes 0..32 only', () => {
  assert.ok(isIPv4Cidr('10.0.0.1/0'));
  assert.ok(isIPv4Cidr('10.0.0.1/32'));
  assert.ok(!isIPv4Cidr('10.0.0.1/33'));
  assert.ok(!isIPv4Cidr('10.0.0.1/24/1'));
  assert.ok(!isIPv4Cidr('10.0.01.1/24'));
});

test('TSC frequency parsing from cpuinfo and dmesg', () => {
  assert.equal(parseCpuinfoTscKhz('model name\t: Intel(R) Xeon(R) CPU @ 2.00GHz\ncpu MHz\t\t: 1999.999\nflags\t\t: fpu tsc msr\n'), 2000000);
  assert.equal(parseCpuinfoTscKhz('model name\t: AMD EPYC\ncpu MHz\t\t: 2596.136\nflags\t\t: fpu tsc msr\n'), 2596136);
  assert.equal(parseCpuinfoTscKhz('model name\t: X\ncpu MHz\t\t: 2596.136\nflags\t\t: fpu msr\n'), null);
  assert.equal(
    parseDmesgTscKhz('[0.0] tsc: Detected 2000.000 MHz processor\n[1.2] tsc: Refined TSC clocksource calibration: 1999.968 MHz\n'),
    1999968,
  );
  assert.equal(parseDmesgTscKhz('nothing'), null);
  const host = hostTscKhz();
  assert.ok(host === null || (Number.isInteger(host) && host > 0));
});
