/**
 * Container state changes: start, stop, restart, kill, rm, pause, unpause,
 * wait, rename. Multi-container commands act on each name in turn, print the
 * name as given on success (as Docker does) and report failures together.
 */
import type { FlagSpec, ParsedArgs } from '../args.js';
import { UsageError } from '../errors.js';
import { allowNotModified, connect, forEachName, out, type Command, type CommandTable } from '../command.js';
import { pathName } from '../format.js';
import { beginWait } from '../wait.js';

const timeFlag: FlagSpec = { long: 'time', short: 't', type: 'string', value: 'int', help: 'Seconds to wait before killing the container' };
const signalFlag = (help: string): FlagSpec => ({ long: 'signal', short: 's', type: 'string', help });

/** A command that POSTs one action per container and echoes the name. */
function simple(
  summary: string,
  action: string,
  flags: FlagSpec[] = [],
  query: (a: ParsedArgs) => Record<string, string | number | undefined> = () => ({}),
): Command {
  return {
    usage: 'CONTAINER [CONTAINER...]',
    summary,
    flags,
    minArgs: 1,
    async run(ctx, args) {
      const client = connect(ctx);
      const q = query(args);
      return forEachName(args.positionals, async (name) => {
        // 304 (already in that state) counts as success, as in Docker.
        await allowNotModified(client.call('POST', `/containers/${pathName(name)}/${action}`, { query: q }));
        await out(`${name}\n`);
      });
    },
  };
}

const start: Command = {
  usage: '[OPTIONS] CONTAINER [CONTAINER...]',
  summary: 'Start one or more stopped containers',
  flags: [
    { long: 'attach', short: 'a', type: 'bool', help: 'Attach STDOUT/STDERR and forward signals' },
    { long: 'interactive', short: 'i', type: 'bool', help: "Attach container's STDIN" },
    { long: 'sig-proxy', type: 'bool', help: 'Proxy received signals to the container (with --attach)', defaultText: 'true' },
  ],
  minArgs: 1,
  async run(ctx, args) {
    const client = connect(ctx);
    const attach = args.bool('attach') || args.bool('interactive');
    if (!attach) {
      return forEachName(args.positionals, async (name) => {
        await allowNotModified(client.call('POST', `/containers/${pathName(name)}/start`));
        await out(`${name}\n`);
      });
    }
    if (args.positionals.length > 1) throw new UsageError('you cannot start and attach multiple containers at once');
    const name = args.positionals[0] as string;
    const info = await client.json<{
      Id: string;
      Config?: { Tty?: boolean; OpenStdin?: boolean };
      HostConfig?: { AutoRemove?: boolean };
    }>('GET', `/containers/${pathName(name)}/json`);
    const { attachAndStart } = await import('./run.js');
    return attachAndStart(client, info.Id, {
      tty: info.Config?.Tty === true,
      stdin: args.bool('interactive') && info.Config?.OpenStdin === true,
      sigProxy: args.has('sig-proxy') ? args.bool('sig-proxy') : true,
      condition: info.HostConfig?.AutoRemove ? 'removed' : 'next-exit',
      start: () => allowNotModified(client.call('POST', `/containers/${pathName(info.Id)}/start`)),
    });
  },
};

const timeQuery = (a: ParsedArgs) => ({ t: a.int('time'), signal: a.str('signal') });

const stop = simple('Stop one or more running containers', 'stop', [timeFlag, signalFlag('Signal to send to the container')], timeQuery);
const restart = simple('Restart one or more containers', 'restart', [timeFlag, signalFlag('Signal to send to the container')], timeQuery);
const kill = simple('Kill one or more running containers', 'kill', [signalFlag('Signal to send to the container (default KILL)')], (a) => ({
  signal: a.str('signal'),
}));
const pause = simple('Pause all processes within one or more containers', 'pause');
const unpause = simple('Unpause all processes within one or more containers', 'unpause');

const rm: Command = {
  usage: '[OPTIONS] CONTAINER [CONTAINER...]',
  summary: 'Remove one or more containers',
  flags: [
    { long: 'force', short: 'f', type: 'bool', help: 'Force the removal of a running container (uses SIGKILL)' },
    { long: 'volumes', short: 'v', type: 'bool', help: 'Remove anonymous volumes associated with the container' },
  ],
  minArgs: 1,
  async run(ctx, args) {
    const client = connect(ctx);
    const query = { force: args.bool('force') || undefined, v: args.bool('volumes') || undefined };
    return forEachName(args.positionals, async (name) => {
      await client.call('DELETE', `/containers/${pathName(name)}`, { query });
      await out(`${name}\n`);
    });
  },
};

const wait: Command = {
  usage: 'CONTAINER [CONTAINER...]',
  summary: 'Block until one or more containers stop, then print their exit codes',
  flags: [],
  minArgs: 1,
  async run(ctx, args) {
    const client = connect(ctx);
    return forEachName(args.positionals, async (name) => {
      const pending = await beginWait(client, name);
      await out(`${await pending.status}\n`);
    });
  },
};

const rename: Command = {
  usage: 'CONTAINER NEW_NAME',
  summary: 'Rename a container',
  flags: [],
  minArgs: 2,
  maxArgs: 2,
  async run(ctx, args) {
    const [old, name] = args.positionals as [string, string];
    if (!name.trim()) throw new UsageError('neither old nor new names may be empty');
    await connect(ctx).call('POST', `/containers/${pathName(old)}/rename`, { query: { name } });
    return 0;
  },
};

export const commands: CommandTable = { start, stop, restart, kill, rm, pause, unpause, wait, rename };
