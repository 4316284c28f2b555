/**
 * `vessel logs`: like the Docker CLI, inspect first to learn whether the
 * container has a TTY (then the log stream is raw bytes), otherwise demux the
 * 8-byte-header frames onto stdout and stderr.
 */
import type { Readable } from 'node:stream';
import { FrameDecoder, STDERR, SYSTEMERR } from '../../api/stdcopy.js';
import { InternalError } from '../../core/errors.js';
import { connect, type Command, type CommandTable } from '../command.js';
import { pathName } from '../format.js';
import { parseTimestamp } from '../units.js';
import { UsageError } from '../errors.js';

/** Copies a (possibly multiplexed) body to stdout/stderr, honouring backpressure. */
export function copyStream(body: Readable, tty: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const decoder = new FrameDecoder();
    const write = (dest: NodeJS.WriteStream, data: Buffer) => {
      if (!dest.write(data)) {
        body.pause();
        dest.once('drain', () => body.resume());
      }
    };
    body.on('data', (chunk: Buffer) => {
      if (tty) return write(process.stdout, chunk);
      for (const f of decoder.push(chunk)) {
        if (f.stream === SYSTEMERR) {
          body.destroy();
          reject(new InternalError(f.payload.toString('utf8').trim()));
          return;
        }
        write(f.stream === STDERR ? process.stderr : process.stdout, f.payload);
      }
    });
    body.on('end', resolve);
    body.on('error', (e) => reject(new InternalError(`error reading logs: ${e.message}`)));
    // A follow stream cut by the daemon shutting down ends the command quietly.
    body.on('close', resolve);
  });
}

const logs: Command = {
  usage: '[OPTIONS] CONTAINER',
  summary: 'Fetch the logs of a container',
  flags: [
    { long: 'follow', short: 'f', type: 'bool', help: 'Follow log output' },
    { long: 'since', type: 'string', help: 'Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m")' },
    { long: 'tail', short: 'n', type: 'string', help: 'Number of lines to show from the end of the logs', defaultText: '"all"' },
    { long: 'timestamps', short: 't', type: 'bool', help: 'Show timestamps' },
    { long: 'until', type: 'string', help: 'Show logs before a timestamp or relative time' },
  ],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx, args) {
    const client = connect(ctx);
    const name = args.positionals[0] as string;
    const tail = args.str('tail') ?? 'all';
    if (tail !== 'all' && !/^-?\d+$/.test(tail)) throw new UsageError(`invalid value for --tail: '${tail}'`);
    const info = await client.json<{ Id: string; Config?: { Tty?: boolean } }>('GET', `/containers/${pathName(name)}/json`);
    const since = args.str('since');
    const until = args.str('until');
    const body = await client.stream('GET', `/containers/${pathName(info.Id)}/logs`, {
      query: {
        stdout: true,
        stderr: true,
        follow: args.bool('follow') || undefined,
        tail,
        timestamps: args.bool('timestamps') || undefined,
        since: since === undefined ? undefined : parseTimestamp(since),
        until: until === undefined ? undefined : parseTimestamp(until),
      },
    });
    await copyStream(body, info.Config?.Tty === true);
    return 0;
  },
};

export const commands: CommandTable = { logs };
