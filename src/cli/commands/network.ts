/**
 * `vessel network create|ls|inspect|rm|prune|connect|disconnect` over
 * Docker's /networks API.
 */
import { confirm, connect, forEachName, inspectCommand, out, type Command, type CommandTable } from '../command.js';
import { encodeFilters } from '../envfile.js';
import { pathName, renderListing, shortId, type Row } from '../format.js';

interface NetworkJson {
  Name: string;
  Id: string;
  Driver: string;
  Scope: string;
  Internal: boolean;
  IPAM?: { Config?: Array<{ Subnet?: string; Gateway?: string }> };
}

function labels(list: string[]): Record<string, string> {
  return Object.fromEntries(list.map((l) => {
    const i = l.indexOf('=');
    return i < 0 ? [l, ''] : [l.slice(0, i), l.slice(i + 1)];
  }));
}

const create: Command = {
  usage: '[OPTIONS] NETWORK',
  summary: 'Create a network',
  flags: [
    { long: 'subnet', type: 'string', help: 'Subnet in CIDR format (picked from 10.89.0.0/16 when absent)' },
    { long: 'gateway', type: 'string', help: 'Gateway for the subnet (default: its first address)' },
    { long: 'internal', type: 'bool', help: 'Restrict external access to the network' },
    { long: 'driver', short: 'd', type: 'string', help: 'Driver to manage the network (only "bridge")' },
    { long: 'label', type: 'list', help: 'Set metadata on a network' },
  ],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx, args) {
    const subnet = args.str('subnet');
    const gateway = args.str('gateway');
    const r = await connect(ctx).json<{ Id: string }>('POST', '/networks/create', {
      body: {
        Name: args.positionals[0],
        CheckDuplicate: true,
        Driver: args.str('driver') ?? 'bridge',
        Internal: args.bool('internal'),
        IPAM: { Driver: 'default', Config: subnet || gateway ? [{ ...(subnet ? { Subnet: subnet } : {}), ...(gateway ? { Gateway: gateway } : {}) }] : [] },
        Labels: labels(args.list('label')),
        Options: {},
      },
    });
    await out(`${r.Id}\n`);
    return 0;
  },
};

const ls: Command = {
  usage: '[OPTIONS]',
  summary: 'List networks',
  flags: [
    { long: 'filter', short: 'f', type: 'list', help: 'Provide filter values (e.g. "name=appnet")' },
    { long: 'format', type: 'string', help: "Format output: 'table', 'json', or a Go template" },
    { long: 'no-trunc', type: 'bool', help: "Do not truncate the output" },
    { long: 'quiet', short: 'q', type: 'bool', help: 'Only display network IDs' },
  ],
  maxArgs: 0,
  async run(ctx, args) {
    const list = await connect(ctx).json<NetworkJson[]>('GET', '/networks', { query: { filters: encodeFilters(args.list('filter')) } });
    const rows: Row[] = list.map((n) => ({
      ID: args.bool('no-trunc') ? n.Id : shortId(n.Id),
      Name: n.Name,
      Driver: n.Driver,
      Scope: n.Scope,
      Subnet: n.IPAM?.Config?.[0]?.Subnet ?? '',
      Internal: String(n.Internal),
    }));
    if (args.bool('quiet')) {
      await out(rows.map((r) => `${r.ID}\n`).join(''));
      return 0;
    }
    await out(renderListing(rows, args.str('format'), [
      ['NETWORK ID', 'ID'],
      ['NAME', 'Name'],
      ['DRIVER', 'Driver'],
      ['SCOPE', 'Scope'],
      ['SUBNET', 'Subnet'],
    ]));
    return 0;
  },
};

const inspect = inspectCommand('network', '/networks');

const rm: Command = {
  usage: 'NETWORK [NETWORK...]',
  summary: 'Remove one or more networks',
  flags: [{ long: 'force', short: 'f', type: 'bool', help: 'Do not error if the network does not exist' }],
  minArgs: 1,
  async run(ctx, args) {
    const client = connect(ctx);
    return forEachName(args.positionals, async (name) => {
      await client.call('DELETE', `/networks/${pathName(name)}`);
      await out(`${name}\n`);
    });
  },
};

const prune: Command = {
  usage: '[OPTIONS]',
  summary: 'Remove all unused networks',
  flags: [{ long: 'force', short: 'f', type: 'bool', help: 'Do not prompt for confirmation' }],
  maxArgs: 0,
  async run(ctx, args) {
    if (!args.bool('force') && !(await confirm('WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?'))) {
      return 0;
    }
    const r = await connect(ctx).json<{ NetworksDeleted: string[] | null }>('POST', '/networks/prune');
    if (r.NetworksDeleted?.length) await out(`Deleted Networks:\n${r.NetworksDeleted.map((n) => `${n}\n`).join('')}`);
    return 0;
  },
};

const connectCmd: Command = {
  usage: '[OPTIONS] NETWORK CONTAINER',
  summary: 'Connect a container to a network',
  flags: [
    { long: 'alias', type: 'list', help: 'Add network-scoped alias for the container' },
    { long: 'ip', type: 'string', help: 'IPv4 address (e.g. "10.89.0.10")' },
  ],
  minArgs: 2,
  maxArgs: 2,
  async run(ctx, args) {
    const [network, container] = args.positionals as [string, string];
    const ip = args.str('ip');
    await connect(ctx).call('POST', `/networks/${pathName(network)}/connect`, {
      body: { Container: container, EndpointConfig: { Aliases: args.list('alias'), ...(ip ? { IPAMConfig: { IPv4Address: ip } } : {}) } },
    });
    return 0;
  },
};

const disconnect: Command = {
  usage: '[OPTIONS] NETWORK CONTAINER',
  summary: 'Disconnect a container from a network',
  flags: [{ long: 'force', short: 'f', type: 'bool', help: 'Force the container to disconnect from a network' }],
  minArgs: 2,
  maxArgs: 2,
  async run(ctx, args) {
    const [network, container] = args.positionals as [string, string];
    await connect(ctx).call('POST', `/networks/${pathName(network)}/disconnect`, { body: { Container: container, Force: args.bool('force') } });
    return 0;
  },
};

export const commands: CommandTable = {
  'network create': create,
  'network ls': ls,
  'network inspect': inspect,
  'network rm': rm,
  'network prune': prune,
  'network connect': connectCmd,
  'network disconnect': disconnect,
};
