/**
 * `inspect` (containers, then images, as the Docker CLI falls through on
 * 404), `image inspect`, `top` and `port`.
 */
import type { VesselClient } from '../../client/client.js';
import { NotFoundError } from '../../core/errors.js';
import type { ParsedArgs } from '../args.js';
import { AggregateFailure, connect, out, type Command, type CommandTable } from '../command.js';
import { UsageError } from '../errors.js';
import { pathName, renderTable } from '../format.js';
import { parseTemplate } from '../template.js';

type Kind = 'container' | 'image';

async function lookup(client: VesselClient, name: string, kinds: Kind[]): Promise<unknown> {
  for (const kind of kinds) {
    try {
      return await client.json('GET', `/${kind}s/${pathName(name)}/json`);
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
      if (kinds.length === 1) throw e;
    }
  }
  throw new NotFoundError(`No such object: ${name}`);
}

/**
 * Prints the found objects (as one indented JSON array, or one template
 * result per object) and reports the missing ones on a single line.
 */
async function inspectNames(ctx: Parameters<Command['run']>[0], args: ParsedArgs, kinds: Kind[]): Promise<number> {
  const client = connect(ctx);
  const format = args.str('format');
  const template = format ? parseTemplate(format === 'json' ? '{{json .}}' : format) : undefined;
  const found: unknown[] = [];
  const failures: string[] = [];
  for (const name of args.positionals) {
    try {
      found.push(await lookup(client, name, kinds));
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
      failures.push(e.message);
    }
  }
  if (template) {
    await out(found.map((o) => `${template.execute(o)}\n`).join(''));
  } else if (found.length > 0 || failures.length === 0) {
    await out(`${JSON.stringify(found, null, 4)}\n`);
  }
  if (failures.length) throw new AggregateFailure(failures);
  return 0;
}

const formatFlag = {
  long: 'format',
  short: 'f',
  type: 'string' as const,
  help: "Format output using a Go template (e.g. '{{.State.Status}}', '{{json .Config}}') or 'json'",
};

const inspect: Command = {
  usage: '[OPTIONS] NAME|ID [NAME|ID...]',
  summary: 'Return low-level information on containers or images',
  flags: [formatFlag, { long: 'type', type: 'string', help: 'Only inspect objects of the given type (container or image)' }],
  minArgs: 1,
  run(ctx, args) {
    const type = args.str('type');
    if (type !== undefined && type !== 'container' && type !== 'image') {
      throw new UsageError(`"${type}" is not a valid value for --type`);
    }
    return inspectNames(ctx, args, type ? [type] : ['container', 'image']);
  },
};

const imageInspect: Command = {
  usage: '[OPTIONS] IMAGE [IMAGE...]',
  summary: 'Display detailed information on one or more images',
  flags: [formatFlag],
  minArgs: 1,
  run: (ctx, args) => inspectNames(ctx, args, ['image']),
};

const top: Command = {
  usage: 'CONTAINER [ps OPTIONS]',
  summary: 'Display the running processes of a container',
  flags: [],
  interspersed: false,
  minArgs: 1,
  async run(ctx, args) {
    const [name, ...psArgs] = args.positionals as [string, ...string[]];
    const res = await connect(ctx).json<{ Titles?: string[]; Processes?: string[][] }>(
      'GET',
      `/containers/${pathName(name)}/top`,
      { query: { ps_args: psArgs.length ? psArgs.join(' ') : undefined } },
    );
    await out(renderTable([res.Titles ?? [], ...(res.Processes ?? [])]));
    return 0;
  },
};

type PortMap = Record<string, Array<{ HostIp?: string; HostPort?: string }> | null>;

const port: Command = {
  usage: 'CONTAINER [PRIVATE_PORT[/PROTO]]',
  summary: 'List port mappings or a specific mapping for the container',
  flags: [],
  minArgs: 1,
  maxArgs: 2,
  async run(ctx, args) {
    const [name, want] = args.positionals as [string, string | undefined];
    const info = await connect(ctx).json<{ NetworkSettings?: { Ports?: PortMap | null } }>(
      'GET',
      `/containers/${pathName(name)}/json`,
    );
    const ports = info.NetworkSettings?.Ports ?? {};
    const key = want === undefined ? undefined : want.includes('/') ? want : `${want}/tcp`;
    const lines: string[] = [];
    for (const [p, bindings] of Object.entries(ports).sort(([a], [b]) => parseInt(a) - parseInt(b))) {
      if (key !== undefined && p !== key) continue;
      for (const b of bindings ?? []) {
        const ip = b.HostIp || '0.0.0.0';
        const hostPart = `${ip.includes(':') ? `[${ip}]` : ip}:${b.HostPort ?? ''}`;
        lines.push(key === undefined ? `${p} -> ${hostPart}` : hostPart);
      }
    }
    if (key !== undefined && lines.length === 0) throw new NotFoundError(`No public port '${key}' published for ${name}`);
    await out(lines.map((l) => `${l}\n`).join(''));
    return 0;
  },
};

export const commands: CommandTable = { inspect, 'image inspect': imageInspect, top, port };
