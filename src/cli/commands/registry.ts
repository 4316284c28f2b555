/**
 * `vessel registry serve` (run an OCI distribution registry in the
 * foreground) and `vessel registry gc` (garbage-collect its storage root).
 * Neither talks to the daemon.
 */
import type { Command, CommandTable } from '../command.js';
import { out } from '../command.js';
import { UsageError } from '../errors.js';
import { humanSize } from '../units.js';

function requireRoot(root: string | undefined): string {
  if (!root) throw new UsageError('the --root flag is required');
  return root;
}

const serve: Command = {
  usage: '--root DIR [OPTIONS]',
  summary: 'Run an OCI distribution registry in the foreground',
  flags: [
    { long: 'addr', type: 'string', value: 'host:port', help: 'Address to listen on', defaultText: '127.0.0.1:5000' },
    { long: 'root', type: 'string', value: 'dir', help: 'Storage root directory (created when missing)' },
    { long: 'htpasswd', type: 'string', value: 'file', help: 'Require Basic auth against this htpasswd file (bcrypt entries)' },
    { long: 'quiet', short: 'q', type: 'bool', help: 'Do not log requests' },
  ],
  maxArgs: 0,
  notes: 'Logs one line per request to stderr. Stops on SIGINT or SIGTERM.',
  async run(_ctx, args) {
    const root = requireRoot(args.str('root'));
    const { RegistryServer } = await import('../../registry/server/server.js');
    const quiet = args.bool('quiet');
    const server = new RegistryServer({
      root,
      htpasswd: args.str('htpasswd'),
      onRequest: quiet
        ? undefined
        : (e) => {
            const user = e.user ? ` user=${e.user}` : '';
            const err = e.error && e.status >= 500 ? ` error=${JSON.stringify(e.error)}` : '';
            process.stderr.write(`${new Date().toISOString()} ${e.method} ${e.path} ${e.status} ${e.durationMs}ms${user}${err}\n`);
          },
    });
    const { host, port } = await server.listen(args.str('addr') ?? '127.0.0.1:5000');
    await out(`Listening on ${host.includes(':') ? `[${host}]` : host}:${port}\n`);
    const signal = await new Promise<string>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'));
      process.once('SIGTERM', () => resolve('SIGTERM'));
    });
    if (!quiet) process.stderr.write(`${new Date().toISOString()} shutting down (${signal})\n`);
    await server.close();
    return 0;
  },
};

const gc: Command = {
  usage: '--root DIR [OPTIONS]',
  summary: 'Remove unreferenced blobs and stale uploads from a registry root',
  flags: [
    { long: 'root', type: 'string', value: 'dir', help: 'Storage root directory of the registry' },
    { long: 'dry-run', short: 'n', type: 'bool', help: 'Only report what would be removed' },
    { long: 'delete-untagged', short: 'm', type: 'bool', help: 'Also remove manifests that no tag refers to' },
    { long: 'format', type: 'string', value: 'string', help: 'Output format: "json" for a JSON report' },
  ],
  maxArgs: 0,
  notes: 'Run it while no client is pushing to the registry: blobs of a push still in progress look unreferenced.',
  async run(_ctx, args) {
    const root = requireRoot(args.str('root'));
    const format = args.str('format');
    if (format !== undefined && format !== 'json') throw new UsageError(`unsupported --format: ${format} (only json)`);
    const { collectGarbage } = await import('../../registry/server/gc.js');
    const report = await collectGarbage(root, { dryRun: args.bool('dry-run'), deleteUntagged: args.bool('delete-untagged') });
    if (format === 'json') {
      await out(`${JSON.stringify(report, null, 2)}\n`);
      return 0;
    }
    const verb = report.dryRun ? 'Would remove' : 'Removed';
    const lines = [
      ...report.manifestsRemoved.map((m) => `${verb} manifest ${m.repository}@${m.digest}`),
      ...report.blobsRemoved.map((b) => `${verb} blob ${b.digest} (${humanSize(b.size)})`),
      ...report.uploadsRemoved.map((u) => `${verb} upload ${u.uuid} (${humanSize(u.size)})`),
      `${report.dryRun ? 'Reclaimable' : 'Total reclaimed'} space: ${humanSize(report.bytesReclaimed)}`,
    ];
    await out(`${lines.join('\n')}\n`);
    return 0;
  },
};

export const commands: CommandTable = { 'registry serve': serve, 'registry gc': gc };
