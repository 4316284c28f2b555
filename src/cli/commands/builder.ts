/** `vessel builder prune`: empties the build cache (POST /build/prune). */
import { confirm, connect, out, type Command, type CommandTable } from '../command.js';

const prune: Command = {
  usage: '[OPTIONS]',
  summary: 'Remove build cache',
  flags: [
    { long: 'force', short: 'f', type: 'bool', help: 'Do not prompt for confirmation' },
    { long: 'all', short: 'a', type: 'bool', help: 'Remove all build cache (the only mode)' },
  ],
  maxArgs: 0,
  async run(ctx, args) {
    if (!args.bool('force') && !(await confirm('WARNING! This will remove all build cache. Are you sure you want to continue?'))) return 0;
    const r = await connect(ctx).json<{ CachesDeleted: string[] | null }>('POST', '/build/prune');
    await out(`${(r.CachesDeleted ?? []).map((c) => `Deleted: ${c}\n`).join('')}Total reclaimed space: 0B\n`);
    return 0;
  },
};

export const commands: CommandTable = { 'builder prune': prune };
