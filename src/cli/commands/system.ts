/**
 * `vessel version` (client facts, then GET /version) and `vessel info`
 * (GET /info, every field the daemon sends as `Key: value` lines).
 */
import { API_VERSION, VERSION } from '../../version.js';
import { connect, out, type Command, type CommandTable } from '../command.js';
import { parseTemplate } from '../template.js';

const formatFlag = { long: 'format', short: 'f', type: 'string' as const, help: "Format output using a Go template or 'json'" };

function clientInfo(): Record<string, string> {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  return { Version: VERSION, ApiVersion: API_VERSION, NodeVersion: process.version, Os: process.platform, Arch: arch };
}

function templated(format: string, data: unknown): string {
  return `${parseTemplate(format === 'json' ? '{{json .}}' : format).execute(data)}\n`;
}

/** Aligned `Key: value` lines with the value column at a fixed offset, like docker version. */
function aligned(indent: string, rows: Array<[string, unknown]>): string {
  return rows
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${indent}${`${k}:`.padEnd(19 - indent.length)}${String(v)}\n`)
    .join('');
}

interface VersionComponent {
  Name: string;
  Version: string;
  Details?: Record<string, string>;
}

const version: Command = {
  usage: '[OPTIONS]',
  summary: 'Show the Vessel version information',
  flags: [formatFlag],
  maxArgs: 0,
  async run(ctx, args) {
    const client = clientInfo();
    const format = args.str('format');
    if (!format) {
      await out(
        `Client:\n${aligned(' ', [
          ['Version', client.Version],
          ['API version', client.ApiVersion],
          ['Node version', client.NodeVersion],
          ['OS/Arch', `${client.Os}/${client.Arch}`],
        ])}\n`,
      );
    }
    // An unreachable daemon fails here, after the client half was printed.
    const server = await connect(ctx).json<Record<string, unknown>>('GET', '/version');
    if (format) {
      await out(templated(format, { Client: client, Server: server }));
      return 0;
    }
    const platform = (server.Platform as { Name?: string } | undefined)?.Name ?? '';
    let text = `Server:${platform ? ` ${platform}` : ''}\n`;
    text += ` Engine:\n${aligned('  ', [
      ['Version', server.Version],
      ['API version', `${String(server.ApiVersion ?? '')}${server.MinAPIVersion ? ` (minimum version ${String(server.MinAPIVersion)})` : ''}`],
      ['Git commit', server.GitCommit],
      ['Built', server.BuildTime],
      ['OS/Arch', `${String(server.Os ?? '')}/${String(server.Arch ?? '')}`],
      ['Kernel version', server.KernelVersion],
      ['Experimental', server.Experimental],
    ])}`;
    for (const c of (server.Components as VersionComponent[] | undefined) ?? []) {
      if (c.Name === 'Engine') continue;
      text += ` ${c.Name}:\n${aligned('  ', [['Version', c.Version], ...Object.entries(c.Details ?? {})])}`;
    }
    await out(text);
    return 0;
  },
};

/** Renders any JSON value as indented `Key: value` lines (1 space per level, as docker info). */
export function describe(key: string, value: unknown, indent: string): string {
  if (value === null || value === undefined) return `${indent}${key}:\n`;
  if (typeof value !== 'object') return `${indent}${key}: ${String(value)}\n`;
  if (Array.isArray(value)) {
    if (value.length === 0) return `${indent}${key}:\n`;
    if (value.every((v) => v === null || typeof v !== 'object')) return `${indent}${key}: ${value.join(', ')}\n`;
    // [[k, v], ...] pairs (DriverStatus, SystemStatus) read as nested key/values.
    if (value.every((v) => Array.isArray(v) && v.length === 2)) {
      return `${indent}${key}:\n${value.map(([k, v]) => `${indent} ${String(k)}: ${String(v)}\n`).join('')}`;
    }
    return `${indent}${key}:\n${value.map((v, i) => describe(String(i), v, `${indent} `)).join('')}`;
  }
  const entries = Object.entries(value as Record<string, unknown>);
  return `${indent}${key}:\n${entries.map(([k, v]) => describe(k, v, `${indent} `)).join('')}`;
}

const info: Command = {
  usage: '[OPTIONS]',
  summary: 'Display system-wide information',
  flags: [formatFlag],
  maxArgs: 0,
  async run(ctx, args) {
    const data = await connect(ctx).json<Record<string, unknown>>('GET', '/info');
    const format = args.str('format');
    if (format) {
      await out(templated(format, data));
      return 0;
    }
    const client = clientInfo();
    let text = `Client:\n Version: ${client.Version}\n API version: ${client.ApiVersion}\n\nServer:\n`;
    for (const [k, v] of Object.entries(data)) text += describe(k, v, ' ');
    await out(text);
    return 0;
  },
};

export const commands: CommandTable = { version, info };
