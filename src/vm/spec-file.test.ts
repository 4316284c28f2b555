import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseLibvirtDomain, parseSize, parseVmYaml } from './spec-file.js';

const G = 1024 ** 3;
const M = 1024 ** 2;

function oneLine(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Error && e.name === 'InvalidArgumentError', String(e));
    assert.match(e.message, re);
    assert.ok(!e.message.includes('\n'), e.message);
    return true;
  });
}

describe('parseSize', () => {
  it('accepts binary suffixes in any case and bare bytes', () => {
    assert.equal(parseSize('512m'), 512 * M);
    assert.equal(parseSize('1G'), G);
    assert.equal(parseSize('1024'), 1024);
    assert.equal(parseSize('2GiB'), 2 * G);
    assert.equal(parseSize('1.5g'), 1.5 * G);
    assert.equal(parseSize('64 MB'), 64 * M);
    assert.equal(parseSize(4096), 4096);
  });
  it('rejects junk with a clear error', () => {
    oneLine(() => parseSize('12q'), /Invalid size: "12q" \(use e\.g\. 512m, 1G, 2GiB or a number of bytes\)/);
    oneLine(() => parseSize('-1G'), /Invalid size/);
    oneLine(() => parseSize(''), /Invalid size/);
    oneLine(() => parseSize('1.3'), /not a whole number of bytes/);
  });
});

describe('parseVmYaml', () => {
  it('parses a full spec', () => {
    const v = parseVmYaml(
      ['name: web', 'image: debian-12', 'vcpus: 2', 'memory: 1G', 'disk: 10G', 'networks: [default, {network: dmz, mac: "52:54:00:AA:00:01"}]',
        'cloudInit:', '  packages: [nginx]', 'cpuWeight: 200', 'cpuCap: 150'].join('\n'),
      { maxVcpus: 2 },
    );
    assert.deepEqual(v, {
      name: 'web', image: 'debian-12', vcpus: 2, memory: G, disk: 10 * G,
      networks: [{ network: 'default' }, { network: 'dmz', mac: '52:54:00:aa:00:01' }],
      cloudInit: '#cloud-config\npackages:\n  - nginx\n', cpuWeight: 200, cpuCap: 150,
    });
    assert.equal(parseVmYaml('name: a\nimage: i\nvcpus: 1\nmemory: 64m\ncloudInit: "#cloud-config\\n"').cloudInit, '#cloud-config\n');
  });
  it('rejects unknown keys and bad values in one line', () => {
    const ok = 'name: a\nimage: i\nvcpus: 1\nmemory: 64m\n';
    oneLine(() => parseVmYaml(`${ok}cpus: 2\n`), /^VM spec: unknown key 'cpus' \(known: name, image, vcpus, memory, disk, networks, cloudInit, cpuWeight, cpuCap\)$/);
    oneLine(() => parseVmYaml('name: a\nimage: i\nvcpus: 1\n'), /'memory' is required/);
    oneLine(() => parseVmYaml(ok.replace('vcpus: 1', 'vcpus: 9'), { maxVcpus: 2 }), /vcpus must be an integer from 1 to 2, got 9/);
    oneLine(() => parseVmYaml(ok.replace('64m', '1024')), /memory 1024 bytes is below the minimum of 16 MiB/);
    oneLine(() => parseVmYaml(ok.replace('64m', 'lots')), /Invalid VM spec memory: "lots"/);
    oneLine(() => parseVmYaml(`${ok}cpuWeight: 0\n`), /cpuWeight must be an integer from 1 to 10000/);
    oneLine(() => parseVmYaml(`${ok}cpuCap: 150\n`), /cpuCap is a percentage of one CPU from 1 to 100/);
    oneLine(() => parseVmYaml(`${ok}networks: [{network: x, ip: 1}]\n`), /networks\[0\]: unknown key 'ip'/);
    oneLine(() => parseVmYaml('name: [a\n'), /^VM spec: invalid YAML/);
    oneLine(() => parseVmYaml('- a\n'), /expected a mapping/);
  });
});

const domain = (devices: string, extra = ''): string => `<?xml version="1.0"?>
<domain type='kvm'>
  <name>db1</name>
  <uuid>0f8fad5b-d9cb-469f-a165-70867728950e</uuid>
  <memory unit='GiB'>2</memory>
  <currentMemory unit='GiB'>1</currentMemory>
  <vcpu placement='static'>4</vcpu>
  <cpu mode='host-passthrough'><topology sockets='1' cores='2' threads='2'/></cpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <features><acpi/></features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  ${extra}
  <devices>${devices}</devices>
</domain>`;

const disk = `<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/var/lib/vm/db1.qcow2'/><target dev='vda' bus='virtio'/></disk>`;
const nic = `<interface type='bridge'><source bridge='br0'/><mac address='52:54:00:12:34:56'/><model type='virtio'/></interface>`;

describe('parseLibvirtDomain', () => {
  it('parses the supported subset and notes what it ignored', () => {
    const d = parseLibvirtDomain(domain(disk + nic), { maxVcpus: 8 });
    assert.deepEqual(d, {
      name: 'db1', uuid: '0f8fad5b-d9cb-469f-a165-70867728950e', memory: 2 * 1024 ** 3, vcpus: 4,
      topology: { sockets: 1, cores: 2, threads: 2 },
      disks: [{ path: '/var/lib/vm/db1.qcow2', format: 'qcow2', target: 'vda' }],
      interfaces: [{ bridge: 'br0', mac: '52:54:00:12:34:56' }],
      notes: ['<currentMemory> ignored', '<os> ignored', '<features> ignored', '<clock> ignored', '<on_poweroff> ignored'],
    });
  });
  it('defaults memory to KiB', () => {
    const d = parseLibvirtDomain(domain('').replace("<memory unit='GiB'>2</memory>", '<memory>524288</memory>'));
    assert.equal(d.memory, 512 * 1024 * 1024);
  });
  it('rejects unsupported devices and elements in one line', () => {
    oneLine(() => parseLibvirtDomain(domain(`<graphics type='vnc' port='-1'/>`)), /^libvirt XML: unsupported device <graphics type='vnc' port='-1'> \(supported: <disk type='file' device='disk'>, <interface type='bridge'>\)$/);
    oneLine(() => parseLibvirtDomain(domain(`<disk type='block' device='disk'/>`)), /unsupported device <disk type='block' device='disk'>/);
    oneLine(() => parseLibvirtDomain(domain(`<interface type='network'><source network='default'/></interface>`)), /unsupported device <interface type='network'>/);
    oneLine(() => parseLibvirtDomain(domain(`<hostdev mode='subsystem'/>`)), /unsupported device <hostdev mode='subsystem'>/);
    oneLine(() => parseLibvirtDomain(domain('', '<iothreads>2</iothreads>')), /unsupported element <iothreads>/);
    oneLine(() => parseLibvirtDomain(domain('').replace('host-passthrough', 'host-model')), /unsupported <cpu mode='host-model'>/);
    oneLine(() => parseLibvirtDomain(domain('').replace("threads='2'", "threads='1'")), /topology 1×2×1 does not equal <vcpu> 4/);
    oneLine(() => parseLibvirtDomain(domain(''), { maxVcpus: 2 }), /vcpus must be an integer from 1 to 2, got 4/);
    oneLine(() => parseLibvirtDomain(domain(disk.replace("bus='virtio'", "bus='sata'"))), /needs <target dev='vdX' bus='virtio'\/>/);
    oneLine(() => parseLibvirtDomain(domain(nic.replace("type='virtio'", "type='e1000'"))), /unsupported interface <model type='e1000'>/);
    oneLine(() => parseLibvirtDomain(domain('').replace("unit='GiB'>2<", "unit='GiB'>0<")), /<memory> must be a positive integer/);
    oneLine(() => parseLibvirtDomain('<domain><name>x</name'), /^libvirt XML: not well-formed/);
    oneLine(() => parseLibvirtDomain('<vm/>'), /expected a <domain> root element, got <vm>/);
  });
});
