/**
 * `vessel exec`: inspect the container, create the exec, start it over a
 * hijacked connection, stream, then read the exit code from the exec's
 * inspect, as docker CLI 28 does. The CLI exits with the process's code.
 */
import { connect, type Command, type CommandTable } from '../command.js';
import { checkTty, monitorTtySize, pumpStream, setRawTerminal } from '../attach.js';
import { collectEnv } from '../envfile.js';
import { pathName } from '../format.js';
import type { VesselClient } from '../../client/client.js';

interface ExecInspect {
  Running?: boolean;
  ExitCode?: number | null;
}

/** The exit code, once the daemon has recorded it (it may lag the stream end slightly). */
async function exitCode(client: VesselClient, execId: string): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const info = await client.json<ExecInspect>('GET', `/exec/${execId}/json`);
    if ((!info.Running && info.ExitCode !== null && info.ExitCode !== undefined) || attempt >= 20) {
      return Number(info.ExitCode ?? 0);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

const exec: Command = {
  usage: '[OPTIONS] CONTAINER COMMAND [ARG...]',
  summary: 'Execute a command in a running container',
  flags: [
    { long: 'detach', short: 'd', type: 'bool', help: 'Detached mode: run command in the background' },
    { long: 'env', short: 'e', type: 'list', help: 'Set environment variables' },
    { long: 'env-file', type: 'list', help: 'Read in a file of environment variables' },
    { long: 'interactive', short: 'i', type: 'bool', help: 'Keep STDIN open even if not attached' },
    { long: 'privileged', type: 'bool', help: 'Give extended privileges to the command' },
    { long: 'tty', short: 't', type: 'bool', help: 'Allocate a pseudo-TTY' },
    { long: 'user', short: 'u', type: 'string', help: 'Username or UID (format: "<name|uid>[:<group|gid>]")' },
    { long: 'workdir', short: 'w', type: 'string', help: 'Working directory inside the container' },
  ],
  interspersed: false,
  minArgs: 2,
  notes: 'The exit status is that of the executed command.',
  async run(ctx, args) {
    const [container, ...cmd] = args.positionals as [string, ...string[]];
    const detach = args.bool('detach');
    const tty = args.bool('tty');
    const stdin = args.bool('interactive') && !detach;
    if (!detach) checkTty(stdin, tty);
    const env = collectEnv(args.list('env-file'), args.list('env'));
    const client = connect(ctx);
    const cid = pathName(container);
    await client.json('GET', `/containers/${cid}/json`);
    const created = await client.json<{ Id: string }>('POST', `/containers/${cid}/exec`, {
      body: {
        User: args.str('user') ?? '',
        Privileged: args.bool('privileged'),
        Tty: tty,
        ConsoleSize: tty && process.stdout.isTTY ? [process.stdout.rows, process.stdout.columns] : null,
        AttachStdin: stdin,
        AttachStderr: !detach,
        AttachStdout: !detach,
        Detach: detach,
        DetachKeys: '',
        Env: env.length ? env : null,
        WorkingDir: args.str('workdir') ?? '',
        Cmd: cmd,
      },
    });
    const execId = pathName(created.Id);
    if (detach) {
      await client.call('POST', `/exec/${execId}/start`, { body: { Detach: true, Tty: tty } });
      return 0;
    }
    const socket = await client.upgrade('POST', `/exec/${execId}/start`, { body: { Detach: false, Tty: tty } });
    const restore = tty && stdin ? setRawTerminal() : () => undefined;
    const stopResize = tty
      ? monitorTtySize((h, w) => client.call('POST', `/exec/${execId}/resize`, { query: { h, w } }))
      : () => undefined;
    try {
      await pumpStream(socket, { tty, stdin }).done;
    } finally {
      stopResize();
      restore();
    }
    return exitCode(client, execId);
  },
};

export const commands: CommandTable = { exec };
