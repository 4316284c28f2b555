/**
 * `vessel vm ...`: virtual machines over the daemon's /vessel/vms API.
 * The interactive console lives in vm-console.ts.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { jsonLines } from '../../client/client.js';
import { InternalError, InvalidArgumentError } from '../../core/errors.js';
import { parseSize as parseSizeStrict } from '../../vm/spec-file.js';
import { connect, forEachName, out, type Command, type CommandTable } from '../command.js';
import { renderTable, shortId } from '../format.js';
import { humanSize, timeAgo } from '../units.js';
import { consoleCommand } from './vm-console.js';

interface VmSummary {
  Id: string;
  Name: string;
  Image: string;
  Status: string;
  Vcpus: number;
  Memory: number;
  IPs: string[];
  Created: string;
  Reason: string | null;
}

const enc = encodeURIComponent;

/** `-f vm.yaml`: the file's fields are the create request's. */
async function readYaml(file: string): Promise<Record<string, unknown>> {
  const { parseVmYaml } = await import('../../vm/spec-file.js');
  return parseVmYaml(readFileSync(file === '-' ? 0 : file, 'utf8')) as unknown as Record<string, unknown>;
}

/**
 * `--from-libvirt domain.xml`: name, memory, vCPUs and topology map directly;
 * `<interface type='bridge'>` joins the Vessel network on that bridge; each
 * `<disk type='file'>` qcow2 is attached as a data disk (used in place, as
 * libvirt would). The root filesystem comes from `--image`.
 */
async function readLibvirt(ctx: Parameters<Command['run']>[0], file: string): Promise<{ body: Record<string, unknown>; disks: Array<{ name: string; file: string }> }> {
  const { parseLibvirtDomain } = await import('../../vm/spec-file.js');
  const dom = parseLibvirtDomain(readFileSync(file === '-' ? 0 : file, 'utf8'));
  const nets = await connect(ctx).json<Array<{ Name: string; Options?: Record<string, string> }>>('GET', '/networks');
  const networks = dom.interfaces.map((i) => {
    const n = nets.find((x) => x.Options?.['com.docker.network.bridge.name'] === i.bridge || x.Name === i.bridge);
    if (!n) throw new InvalidArgumentError(`libvirt XML: no Vessel network uses bridge ${i.bridge} (see vessel network ls)`);
    return { network: n.Name, ...(i.mac ? { mac: i.mac } : {}) };
  });
  const disks = dom.disks.map((d) => {
    if (d.format !== 'qcow2') throw new InvalidArgumentError(`libvirt XML: disk ${d.path} is ${d.format}; only qcow2 disks are supported`);
    return { name: d.target, file: resolve(d.path) };
  });
  const body: Record<string, unknown> = { name: dom.name, memory: dom.memory, vcpus: dom.vcpus, ...(dom.topology ? { topology: dom.topology } : {}) };
  if (networks.length) body.networks = networks;
  return { body, disks };
}

const create: Command = {
  usage: '[OPTIONS] NAME | -f vm.yaml | --from-libvirt domain.xml',
  summary: 'Create a virtual machine',
  flags: [
    { long: 'image', type: 'string', help: 'Image whose filesystem becomes the VM disk' },
    { long: 'vcpus', type: 'string', help: 'Number of virtual CPUs (default 1)' },
    { long: 'memory', short: 'm', type: 'string', help: 'Memory size, e.g. 512m, 2g (default 512m)' },
    { long: 'disk', type: 'string', help: 'Root disk size (default: the image size plus headroom)' },
    { long: 'network', type: 'list', help: 'Connect to a network (repeatable; default "bridge")' },
    { long: 'ip', type: 'string', help: 'IPv4 address on the first network' },
    { long: 'cloud-init', type: 'string', help: 'A user-data file run by the guest at first boot' },
    { long: 'cpu-weight', type: 'string', help: 'Relative CPU weight 1..10000 (default 100)' },
    { long: 'cpu-cap', type: 'string', help: 'CPU cap in percent of one CPU (e.g. 50)' },
    { long: 'file', short: 'f', type: 'string', help: 'Read the VM definition from a YAML file' },
    { long: 'from-libvirt', type: 'string', help: 'Read the VM definition from a libvirt domain XML (subset)' },
    { long: 'start', type: 'bool', help: 'Start the VM after creating it' },
    { long: 'quiet', short: 'q', type: 'bool', help: 'Print only the VM ID' },
  ],
  maxArgs: 1,
  async run(ctx, args) {
    let body: Record<string, unknown> = {};
    let disks: Array<{ name: string; file: string }> = [];
    const file = args.str('file');
    const xml = args.str('from-libvirt');
    if (file) body = await readYaml(file);
    if (xml) ({ body, disks } = await readLibvirt(ctx, xml));
    // Without --image the domain's first disk is the root disk (used read-only, under the VM's own overlay).
    if (xml && !args.str('image')) {
      const [root, ...rest] = disks;
      if (!root) throw new InvalidArgumentError('--from-libvirt: the domain has no <disk>; give --image for the root filesystem');
      body.rootDisk = root.file;
      disks = rest;
    }
    const name = args.positionals[0];
    if (name) body.name = name;
    if (!body.name) throw new InvalidArgumentError('A VM name is needed: vessel vm create NAME --image IMAGE');
    const image = args.str('image');
    if (image) body.image = image;
    const num = (flag: string) => {
      const v = args.str(flag);
      if (v === undefined) return undefined;
      const n = Number(v);
      if (!Number.isFinite(n) || v.trim() === '') throw new InvalidArgumentError(`Invalid --${flag}: ${v}`);
      return n;
    };
    if (num('vcpus') !== undefined) body.vcpus = num('vcpus');
    if (args.str('memory')) body.memory = parseSizeStrict(args.str('memory')!);
    if (args.str('disk')) body.disk = parseSizeStrict(args.str('disk')!);
    if (num('cpu-weight') !== undefined) body.cpuWeight = num('cpu-weight');
    if (num('cpu-cap') !== undefined) body.cpuCap = num('cpu-cap');
    const nets = args.list('network');
    if (nets.length) body.networks = nets.map((n, i) => ({ network: n, ...(i === 0 && args.str('ip') ? { ip: args.str('ip') } : {}) }));
    else if (args.str('ip')) body.networks = [{ network: 'bridge', ip: args.str('ip') }];
    const ci = args.str('cloud-init');
    if (ci) body.cloudInit = readFileSync(ci, 'utf8');
    if (args.bool('start')) body.start = true;
    const quiet = args.bool('quiet') || !process.stderr.isTTY;
    const stream = await connect(ctx).stream('POST', '/vessel/vms/create', { body });
    let vm: VmSummary | null = null;
    for await (const { value } of jsonLines<{ status?: string; error?: string; aux?: VmSummary }>(stream)) {
      if (value.error) throw new InternalError(value.error);
      if (value.status && !quiet) process.stderr.write(`${value.status}\n`);
      if (value.aux) vm = value.aux;
    }
    if (!vm) throw new InternalError('The daemon ended the create without a result');
    for (const d of disks) await connect(ctx).call('POST', `/vessel/vms/${enc(vm.Id)}/disks`, { body: { Name: d.name, File: d.file } });
    await out(`${vm.Id}\n`);
    return 0;
  },
};

const ls: Command = {
  usage: '[OPTIONS]',
  summary: 'List virtual machines',
  flags: [
    { long: 'quiet', short: 'q', type: 'bool', help: 'Only display VM IDs' },
    { long: 'format', type: 'string', help: 'json: one JSON document' },
  ],
  maxArgs: 0,
  async run(ctx, args) {
    const list = await connect(ctx).json<VmSummary[]>('GET', '/vessel/vms/json');
    if (args.str('format') === 'json') {
      await out(`${JSON.stringify(list, null, 2)}\n`);
      return 0;
    }
    if (args.bool('quiet')) {
      await out(list.map((v) => `${shortId(v.Id)}\n`).join(''));
      return 0;
    }
    const rows = [['VM ID', 'NAME', 'STATUS', 'VCPUS', 'MEMORY', 'IP', 'IMAGE', 'CREATED']];
    for (const v of list) {
      rows.push([shortId(v.Id), v.Name, v.Status, String(v.Vcpus), humanSize(v.Memory), v.IPs.join(',') || '-', v.Image, timeAgo(v.Created)]);
    }
    await out(renderTable(rows));
    return 0;
  },
};

function simple(summary: string, verb: string, flags: Command['flags'] = [], query?: (a: import('../args.js').ParsedArgs) => Record<string, string | undefined>): Command {
  return {
    usage: '[OPTIONS] VM [VM...]',
    summary,
    flags,
    minArgs: 1,
    async run(ctx, args) {
      const c = connect(ctx);
      return forEachName(args.positionals, async (name) => {
        await c.call('POST', `/vessel/vms/${enc(name)}/${verb}`, { query: query?.(args) ?? {} });
        await out(`${name}\n`);
      });
    },
  };
}

const timeoutFlag: Command['flags'] = [{ long: 'timeout', short: 't', type: 'string', help: 'Seconds to wait for the guest to power off before forcing it (default 60)' }];

const rm: Command = {
  usage: '[OPTIONS] VM [VM...]',
  summary: 'Remove one or more virtual machines',
  flags: [{ long: 'force', short: 'f', type: 'bool', help: 'Kill a running VM first' }],
  minArgs: 1,
  async run(ctx, args) {
    const c = connect(ctx);
    return forEachName(args.positionals, async (name) => {
      await c.call('DELETE', `/vessel/vms/${enc(name)}`, { query: { force: args.bool('force') ? '1' : undefined } });
      await out(`${name}\n`);
    });
  },
};

const inspect: Command = {
  usage: 'VM [VM...]',
  summary: 'Display detailed information on one or more virtual machines (JSON)',
  flags: [],
  minArgs: 1,
  async run(ctx, args) {
    const c = connect(ctx);
    const docs = [];
    for (const name of args.positionals) docs.push(await c.json('GET', `/vessel/vms/${enc(name)}/json`));
    await out(`${JSON.stringify(docs, null, 4)}\n`);
    return 0;
  },
};

const exec: Command = {
  usage: '[OPTIONS] VM COMMAND [ARG...]',
  summary: 'Run a command in a VM through its guest agent',
  interspersed: false,
  flags: [
    { long: 'env', short: 'e', type: 'list', help: 'Set environment variables' },
    { long: 'timeout', type: 'string', help: 'Seconds before the command is abandoned (default 600)' },
  ],
  minArgs: 2,
  async run(ctx, args) {
    const [name, ...rest] = args.positionals;
    const cmd = rest[0] === '--' ? rest.slice(1) : rest;
    if (!cmd.length) throw new InvalidArgumentError('No command given: vessel vm exec VM COMMAND [ARG...]');
    const t = args.str('timeout');
    const r = await connect(ctx).json<{ ExitCode: number; Stdout: string; Stderr: string }>('POST', `/vessel/vms/${enc(name!)}/exec`, {
      body: { Cmd: cmd, Env: args.list('env'), ...(t ? { TimeoutMs: Number(t) * 1000 } : {}) },
    });
    process.stderr.write(r.Stderr);
    await out(r.Stdout);
    return r.ExitCode;
  },
};

const ip: Command = {
  usage: 'VM',
  summary: 'Show the IP addresses of a virtual machine',
  flags: [],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx, args) {
    const list = await connect(ctx).json<Array<{ network: string; ip: string; mac: string }>>('GET', `/vessel/vms/${enc(args.positionals[0]!)}/ip`);
    await out(list.map((l) => `${l.ip}\n`).join(''));
    return 0;
  },
};

const logs: Command = {
  usage: '[OPTIONS] VM',
  summary: "Show a virtual machine's serial console log",
  flags: [{ long: 'follow', short: 'f', type: 'bool', help: 'Follow log output' }],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx, args) {
    const s = await connect(ctx).stream('GET', `/vessel/vms/${enc(args.positionals[0]!)}/logs`, { query: { follow: args.bool('follow') ? '1' : undefined } });
    for await (const chunk of s) if (!process.stdout.write(chunk as Buffer)) await new Promise((r) => process.stdout.once('drain', r));
    return 0;
  },
};

const memorySet: Command = {
  usage: 'VM SIZE',
  summary: "Set a running VM's memory through the balloon (e.g. 512m)",
  flags: [],
  minArgs: 2,
  maxArgs: 2,
  async run(ctx, args) {
    await connect(ctx).call('POST', `/vessel/vms/${enc(args.positionals[0]!)}/memory`, { body: { Bytes: parseSizeStrict(args.positionals[1]!) } });
    return 0;
  },
};

const snapCreate: Command = {
  usage: 'VM SNAPSHOT',
  summary: 'Snapshot a VM (memory and device state too when it runs)',
  flags: [],
  minArgs: 2,
  maxArgs: 2,
  async run(ctx, args) {
    await connect(ctx).json('POST', `/vessel/vms/${enc(args.positionals[0]!)}/snapshots`, { body: { Name: args.positionals[1] } });
    await out(`${args.positionals[1]}\n`);
    return 0;
  },
};

const snapLs: Command = {
  usage: 'VM',
  summary: 'List the snapshots of a VM',
  flags: [],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx, args) {
    const list = await connect(ctx).json<Array<{ name: string; created: string; withMemory: boolean }>>('GET', `/vessel/vms/${enc(args.positionals[0]!)}/snapshots`);
    await out(renderTable([['NAME', 'STATE', 'CREATED'], ...list.map((s) => [s.name, s.withMemory ? 'memory+disk' : 'disk', timeAgo(s.created)])]));
    return 0;
  },
};

const snapRestore: Command = {
  usage: 'VM SNAPSHOT',
  summary: 'Restore a VM to a snapshot',
  flags: [],
  minArgs: 2,
  maxArgs: 2,
  async run(ctx, args) {
    await connect(ctx).call('POST', `/vessel/vms/${enc(args.positionals[0]!)}/snapshots/${enc(args.positionals[1]!)}/restore`);
    return 0;
  },
};

const snapRm: Command = {
  usage: 'VM SNAPSHOT',
  summary: 'Remove a snapshot',
  flags: [],
  minArgs: 2,
  maxArgs: 2,
  async run(ctx, args) {
    await connect(ctx).call('DELETE', `/vessel/vms/${enc(args.positionals[0]!)}/snapshots/${enc(args.positionals[1]!)}`);
    return 0;
  },
};

const clone: Command = {
  usage: '--from-snapshot SNAPSHOT SOURCE NEW',
  summary: 'Create a VM from a snapshot of another, with its own identity',
  flags: [{ long: 'from-snapshot', type: 'string', help: 'Snapshot of SOURCE to start from (required)' }],
  minArgs: 2,
  maxArgs: 2,
  async run(ctx, args) {
    const snap = args.str('from-snapshot');
    if (!snap) throw new InvalidArgumentError('--from-snapshot is required');
    const r = await connect(ctx).json<VmSummary>('POST', `/vessel/vms/${enc(args.positionals[0]!)}/clone`, { body: { Name: args.positionals[1], Snapshot: snap } });
    await out(`${r.Id}\n`);
    return 0;
  },
};

const diskCreate: Command = {
  usage: 'VM NAME SIZE',
  summary: 'Create an empty qcow2 data disk and attach it',
  flags: [],
  minArgs: 3,
  maxArgs: 3,
  async run(ctx, args) {
    const [vm, name, size] = args.positionals as [string, string, string];
    await connect(ctx).call('POST', `/vessel/vms/${enc(vm)}/disks`, { body: { Name: name, Size: parseSizeStrict(size) } });
    return 0;
  },
};

const diskAttach: Command = {
  usage: 'VM FILE [--name NAME]',
  summary: 'Attach an existing qcow2 file as a data disk',
  flags: [{ long: 'name', type: 'string', help: 'Disk name (default: the file name)' }],
  minArgs: 2,
  maxArgs: 2,
  async run(ctx, args) {
    const [vm, file] = args.positionals as [string, string];
    const { basename } = await import('node:path');
    const name = args.str('name') ?? basename(file).replace(/\.qcow2$/, '').toLowerCase().replace(/[^a-z0-9_-]/g, '-');
    await connect(ctx).call('POST', `/vessel/vms/${enc(vm)}/disks`, { body: { Name: name, File: resolve(file) } });
    return 0;
  },
};

const diskDetach: Command = {
  usage: 'VM NAME',
  summary: 'Detach a data disk (the file stays)',
  flags: [],
  minArgs: 2,
  maxArgs: 2,
  async run(ctx, args) {
    await connect(ctx).call('DELETE', `/vessel/vms/${enc(args.positionals[0]!)}/disks/${enc(args.positionals[1]!)}`);
    return 0;
  },
};

const diskResize: Command = {
  usage: 'VM NAME SIZE',
  summary: 'Grow a disk (root or a data disk)',
  flags: [],
  minArgs: 3,
  maxArgs: 3,
  async run(ctx, args) {
    const [vm, name, size] = args.positionals as [string, string, string];
    await connect(ctx).call('POST', `/vessel/vms/${enc(vm)}/disks/${enc(name)}/resize`, { body: { Size: parseSizeStrict(size) } });
    return 0;
  },
};

const diskLs: Command = {
  usage: 'VM',
  summary: 'List the disks of a VM',
  flags: [],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx, args) {
    const list = await connect(ctx).json<Array<{ Name: string; Path: string; VirtualSize: number; ActualSize: number }>>('GET', `/vessel/vms/${enc(args.positionals[0]!)}/disks`);
    await out(renderTable([['NAME', 'SIZE', 'USED', 'FILE'], ...list.map((d) => [d.Name, humanSize(d.VirtualSize), humanSize(d.ActualSize), d.Path])]));
    return 0;
  },
};

export const commands: CommandTable = {
  'vm create': create,
  'vm ls': ls,
  'vm start': simple('Start one or more virtual machines', 'start'),
  'vm stop': simple('Shut down one or more VMs (ACPI, then forced after --timeout)', 'stop', timeoutFlag, (a) => ({ t: a.str('timeout') })),
  'vm restart': simple('Restart one or more virtual machines', 'restart', timeoutFlag, (a) => ({ t: a.str('timeout') })),
  'vm kill': simple('Stop one or more VMs immediately', 'kill'),
  'vm pause': simple('Pause one or more virtual machines', 'pause'),
  'vm resume': simple('Resume one or more paused virtual machines', 'resume'),
  'vm rm': rm,
  'vm inspect': inspect,
  'vm exec': exec,
  'vm ip': ip,
  'vm logs': logs,
  'vm console': consoleCommand,
  'vm memory set': memorySet,
  'vm snapshot create': snapCreate,
  'vm snapshot ls': snapLs,
  'vm snapshot restore': snapRestore,
  'vm snapshot rm': snapRm,
  'vm clone': clone,
  'vm disk create': diskCreate,
  'vm disk attach': diskAttach,
  'vm disk detach': diskDetach,
  'vm disk resize': diskResize,
  'vm disk ls': diskLs,
};
