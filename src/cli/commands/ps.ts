/**
 * `vessel ps`: GET /containers/json rendered like `docker ps`. The STATUS
 * column is the daemon's own human string; CREATED is computed here.
 */
import { encodeFilters } from '../envfile.js';
import { connect, out, type Command, type CommandTable } from '../command.js';
import { ellipsis, goTime, renderListing, shortId, type Row } from '../format.js';
import { timeAgo } from '../units.js';

interface PortSummary {
  IP?: string;
  PrivatePort: number;
  PublicPort?: number;
  Type: string;
}

export interface ContainerSummary {
  Id: string;
  Names?: string[] | null;
  Image?: string;
  Command?: string;
  Created?: number;
  Ports?: PortSummary[] | null;
  Labels?: Record<string, string> | null;
  State?: string;
  Status?: string;
  Mounts?: Array<{ Name?: string; Source?: string }> | null;
  NetworkSettings?: { Networks?: Record<string, unknown> | null } | null;
}

/** `0.0.0.0:8080->80/tcp, 443/tcp` (IPv6 hosts in brackets). */
export function formatPorts(ports: PortSummary[] | null | undefined): string {
  const seen = new Set<string>();
  const sorted = [...(ports ?? [])].sort(
    (a, b) => (a.PublicPort ?? 0) - (b.PublicPort ?? 0) || a.PrivatePort - b.PrivatePort || a.Type.localeCompare(b.Type),
  );
  for (const p of sorted) {
    if (p.PublicPort) {
      const ip = p.IP ?? '';
      const host = ip.includes(':') ? `[${ip}]` : ip;
      seen.add(`${host}:${p.PublicPort}->${p.PrivatePort}/${p.Type}`);
    } else {
      seen.add(`${p.PrivatePort}/${p.Type}`);
    }
  }
  return [...seen].join(', ');
}

/** The fields Docker exposes to `ps --format` templates and its JSON output. */
export function containerRow(c: ContainerSummary, trunc: boolean, now = Date.now()): Row {
  // Docker hides link aliases (names with a second slash) from the NAMES column.
  const names = (c.Names ?? []).map((n) => n.replace(/^\//, '')).filter((n) => !trunc || !n.includes('/'));
  const image = c.Image ?? '';
  const command = c.Command ?? '';
  return {
    Command: JSON.stringify(trunc ? ellipsis(command, 20) : command),
    CreatedAt: c.Created ? goTime(c.Created) : '',
    ID: trunc ? shortId(c.Id) : c.Id,
    Image: trunc && image.startsWith('sha256:') ? shortId(image) : image,
    Labels: Object.entries(c.Labels ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(','),
    LocalVolumes: String((c.Mounts ?? []).filter((m) => m.Name).length),
    Mounts: (c.Mounts ?? []).map((m) => m.Name || m.Source || '').join(','),
    Names: names.join(','),
    Networks: Object.keys(c.NetworkSettings?.Networks ?? {}).join(','),
    Ports: formatPorts(c.Ports),
    RunningFor: c.Created ? timeAgo(c.Created, now) : '',
    State: c.State ?? '',
    Status: c.Status ?? '',
  };
}

const ps: Command = {
  usage: '[OPTIONS]',
  summary: 'List containers',
  flags: [
    { long: 'all', short: 'a', type: 'bool', help: 'Show all containers (default shows just running)' },
    { long: 'filter', short: 'f', type: 'list', value: 'filter', help: 'Filter output based on conditions provided (name=value)' },
    { long: 'format', type: 'string', help: "Format output: 'table', 'json', 'table TEMPLATE' or a Go template" },
    { long: 'last', short: 'n', type: 'string', value: 'int', help: 'Show n last created containers (includes all states)' },
    { long: 'latest', short: 'l', type: 'bool', help: 'Show the latest created container (includes all states)' },
    { long: 'no-trunc', type: 'bool', help: "Don't truncate output" },
    { long: 'quiet', short: 'q', type: 'bool', help: 'Only display container IDs' },
  ],
  maxArgs: 0,
  async run(ctx, args) {
    const last = args.bool('latest') ? 1 : args.int('last');
    const list = await connect(ctx).json<ContainerSummary[]>('GET', '/containers/json', {
      query: {
        all: args.bool('all') || (last !== undefined && last > 0) || undefined,
        limit: last !== undefined && last > 0 ? last : undefined,
        filters: encodeFilters(args.list('filter')),
      },
    });
    const trunc = !args.bool('no-trunc');
    if (args.bool('quiet')) {
      await out(list.map((c) => `${trunc ? shortId(c.Id) : c.Id}\n`).join(''));
      return 0;
    }
    const rows = list.map((c) => containerRow(c, trunc));
    await out(
      renderListing(rows, args.str('format'), [
        ['CONTAINER ID', 'ID'],
        ['IMAGE', 'Image'],
        ['COMMAND', 'Command'],
        ['CREATED', 'RunningFor'],
        ['STATUS', 'Status'],
        ['PORTS', 'Ports'],
        ['NAMES', 'Names'],
      ]),
    );
    return 0;
  },
};

export const commands: CommandTable = { ps };
