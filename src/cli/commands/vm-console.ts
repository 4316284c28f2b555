/**
 * `vessel vm console VM`: the VM's serial console on this terminal. The
 * detach key (default Ctrl-], as virsh) ends the session and leaves the VM
 * running. Without a terminal, stdin is sent as-is and output is copied until
 * stdin ends (scriptable: `echo uname -a | vessel vm console t1`).
 */
import { InvalidArgumentError } from '../../core/errors.js';
import { setRawTerminal } from '../attach.js';
import { connect, type Command } from '../command.js';

/** `ctrl-]` → 0x1d, `ctrl-p` → 0x10; a single printable character stands for itself. */
export function parseDetachKey(spec: string): number {
  const m = /^ctrl-(.)$/i.exec(spec);
  if (m) {
    const c = m[1]!.toUpperCase().charCodeAt(0);
    if (c >= 0x40 && c <= 0x5f) return c - 0x40;
  }
  if (spec.length === 1) return spec.charCodeAt(0);
  throw new InvalidArgumentError(`Invalid detach key: ${spec} (e.g. ctrl-])`);
}

export const consoleCommand: Command = {
  usage: '[OPTIONS] VM',
  summary: 'Attach to the serial console of a VM',
  flags: [
    { long: 'detach-key', type: 'string', help: 'Key that ends the console session (default ctrl-])' },
    { long: 'timeout', type: 'string', help: 'Without a terminal: seconds to keep reading after stdin ends (default 2)' },
  ],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx, args) {
    const detach = parseDetachKey(args.str('detach-key') ?? 'ctrl-]');
    const socket = await connect(ctx).upgrade('POST', `/vessel/vms/${encodeURIComponent(args.positionals[0]!)}/console`);
    const tty = !!process.stdin.isTTY;
    const restore = setRawTerminal();
    if (tty) process.stderr.write(`Connected to the console of ${args.positionals[0]} (detach with ${args.str('detach-key') ?? 'ctrl-]'})\r\n`);
    return new Promise<number>((resolve) => {
      const finish = () => {
        restore();
        socket.destroy();
        process.stdin.pause();
        resolve(0);
      };
      socket.on('data', (d: Buffer) => process.stdout.write(d));
      socket.on('close', finish);
      socket.on('error', finish);
      process.stdin.on('data', (d: Buffer) => {
        const i = tty ? d.indexOf(detach) : -1;
        if (i >= 0) {
          if (i > 0) socket.write(d.subarray(0, i));
          finish();
          return;
        }
        socket.write(d);
      });
      process.stdin.on('end', () => {
        const wait = Number(args.str('timeout') ?? 2) * 1000;
        setTimeout(finish, wait);
      });
    });
  },
};
