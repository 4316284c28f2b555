/**
 * `vessel image save` (GET /images/get) and `vessel image load`
 * (POST /images/load), as in Docker.
 *
 * save writes the tar to -o FILE (via a temporary file renamed into place, so
 * a failed save never leaves a truncated archive under FILE) or to stdout,
 * which must not be a terminal. load reads -i FILE or stdin.
 */
import { createReadStream, createWriteStream, promises as fs, statSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { Readable, Writable } from 'node:stream';
import { jsonLines } from '../../client/client.js';
import { UnavailableError, VesselError, errorMessage } from '../../core/errors.js';
import { connect, type Command, type CommandTable } from '../command.js';
import { UsageError } from '../errors.js';
import { ProgressRenderer, type JsonMessage } from '../jsonmessage.js';

/** `/images/get?names=a&names=b` (the client's query helper takes one value per key). */
export function savePath(names: string[]): string {
  const qs = new URLSearchParams();
  for (const n of names) qs.append('names', n);
  return `/images/get?${qs.toString()}`;
}

const save: Command = {
  usage: '[OPTIONS] IMAGE [IMAGE...]',
  summary: 'Save one or more images to a tar archive (streamed to STDOUT by default)',
  flags: [{ long: 'output', short: 'o', type: 'string', value: 'string', help: 'Write to a file, instead of STDOUT' }],
  minArgs: 1,
  notes: 'The archive is an OCI image layout that also carries a docker-archive manifest.json.',
  async run(ctx, args) {
    const output = args.str('output');
    if ((output === undefined || output === '-') && process.stdout.isTTY) {
      throw new UsageError('Cowardly refusing to save to a terminal: use the -o flag or redirect');
    }
    const client = connect(ctx);
    try {
      const res = await client.stream('GET', savePath(args.positionals));
      if (output === undefined || output === '-') {
        await copy(res, process.stdout);
        return 0;
      }
      const dir = path.dirname(path.resolve(output));
      const tmp = path.join(dir, `.${path.basename(output)}.${randomBytes(4).toString('hex')}.tmp`);
      try {
        await copy(res, createWriteStream(tmp, { mode: 0o644 }));
        await fs.rename(tmp, output);
      } catch (e) {
        await fs.rm(tmp, { force: true });
        throw e;
      }
      return 0;
    } finally {
      client.close();
    }
  },
};

/** Copies the daemon's archive; a connection cut mid-way (the daemon failed) is an error, not a short file. */
async function copy(res: Readable, out: Writable): Promise<void> {
  try {
    await pipeline(res, out, { end: out !== process.stdout });
  } catch (e) {
    if (e instanceof VesselError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EPIPE') throw e;
    if (code && /^E(?!RR_)/.test(code) && code !== 'ECONNRESET') throw new UnavailableError(`Cannot write the archive: ${errorMessage(e)}`, { cause: e });
    throw new UnavailableError('The daemon ended the image archive early; see the daemon log', { cause: e });
  }
}

function openInput(file: string | undefined): Readable {
  if (file === undefined || file === '-') {
    if (process.stdin.isTTY) throw new UsageError('Requested load from stdin, but stdin is a terminal: use -i FILE or redirect');
    return process.stdin;
  }
  try {
    if (!statSync(file).isFile()) throw new UsageError(`${file} is not a regular file`);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`open ${file}: no such file or directory`);
  }
  return createReadStream(file);
}

const load: Command = {
  usage: '[OPTIONS]',
  summary: 'Load images from a tar archive (OCI layout or docker-archive, plain or gzip) or STDIN',
  flags: [
    { long: 'input', short: 'i', type: 'string', value: 'string', help: 'Read from tar archive file, instead of STDIN' },
    { long: 'quiet', short: 'q', type: 'bool', help: 'Suppress the load output' },
  ],
  maxArgs: 0,
  async run(ctx, args) {
    const body = openInput(args.str('input'));
    const quiet = args.bool('quiet');
    const client = connect(ctx);
    try {
      const res = await client.stream('POST', '/images/load', {
        query: { quiet: quiet ? '1' : undefined },
        headers: { 'Content-Type': 'application/x-tar' },
        body,
      });
      // -q drops the progress (the daemon sends none), not the "Loaded image" lines.
      const renderer = new ProgressRenderer(process.stdout.isTTY ? 'tty' : 'plain', (s) => process.stdout.write(s));
      let loaded = 0;
      for await (const { value, raw } of jsonLines<JsonMessage>(res)) {
        renderer.handle(value, raw);
        if (value.stream?.startsWith('Loaded image')) loaded++;
      }
      renderer.finish();
      if (loaded === 0) throw new UnavailableError('The daemon ended the load without loading an image; see the daemon log');
      return 0;
    } finally {
      client.close();
    }
  },
};

export const commands: CommandTable = { 'image save': save, 'image load': load };
