/**
 * Image commands answered with a JSON-lines progress stream: `image import`
 * (Docker's POST /images/create?fromSrc=-) and `image bootstrap` (Vessel's
 * POST /vessel/images/bootstrap, which builds busybox/debian base images
 * locally because there is no registry pull yet).
 */
import { createReadStream, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { jsonLines, type RequestOptions } from '../../client/client.js';
import type { FlagSpec, ParsedArgs } from '../args.js';
import { connect, type Command, type CommandContext, type CommandTable } from '../command.js';
import { UsageError } from '../errors.js';
import { splitRepoTag } from '../format.js';
import { ProgressRenderer, type JsonMessage, type RenderMode } from '../jsonmessage.js';

const OUTPUT_FLAGS: FlagSpec[] = [
  { long: 'format', type: 'string', help: "'json' prints the daemon's raw JSON-lines progress" },
  { long: 'quiet', short: 'q', type: 'bool', help: 'Print only the image ID' },
];

function renderMode(args: ParsedArgs): RenderMode {
  const format = args.str('format');
  if (format !== undefined && format !== 'json') throw new UsageError(`unsupported --format '${format}' (only 'json')`);
  if (format === 'json') return 'json';
  if (args.bool('quiet')) return 'quiet';
  return process.stdout.isTTY ? 'tty' : 'plain';
}

/** POSTs and renders the progress stream; throws (exit 1) on an in-stream error. */
async function runProgress(ctx: CommandContext, args: ParsedArgs, path: string, opts: RequestOptions): Promise<number> {
  const mode = renderMode(args);
  const res = await connect(ctx).stream('POST', path, opts);
  const renderer = new ProgressRenderer(mode, (s) => process.stdout.write(s));
  for await (const { value, raw } of jsonLines<JsonMessage>(res)) renderer.handle(value, raw);
  renderer.finish();
  return 0;
}

function openSource(file: string): Readable {
  if (file === '-') return process.stdin;
  try {
    if (!statSync(file).isFile()) throw new UsageError(`${file} is not a regular file`);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`open ${file}: no such file or directory`);
  }
  return createReadStream(file);
}

const importCmd: Command = {
  usage: '[OPTIONS] FILE|- [REPOSITORY[:TAG]]',
  summary: 'Import the contents from a tarball to create a filesystem image',
  flags: [{ long: 'message', short: 'm', type: 'string', help: 'Set commit message for imported image' }, ...OUTPUT_FLAGS],
  minArgs: 1,
  maxArgs: 2,
  async run(ctx, args) {
    const [file, ref] = args.positionals as [string, string | undefined];
    let repo: string | undefined;
    let tag: string | undefined;
    if (ref !== undefined) {
      ({ repo, tag } = splitRepoTag(ref));
      if (!repo || /[A-Z\s]/.test(repo)) throw new UsageError(`invalid reference format: ${ref}`);
      tag ||= 'latest';
    }
    return runProgress(ctx, args, '/images/create', {
      query: { fromSrc: '-', repo, tag, message: args.str('message') },
      headers: { 'Content-Type': 'application/x-tar' },
      body: openSource(file),
    });
  },
};

const bootstrap: Command = {
  usage: '[OPTIONS] IMAGE',
  summary: 'Build a base image locally (busybox, debian:bookworm)',
  flags: OUTPUT_FLAGS,
  minArgs: 1,
  maxArgs: 1,
  notes: 'A Vessel extension (POST /vessel/images/bootstrap), not part of the Docker API.',
  run(ctx, args) {
    return runProgress(ctx, args, '/vessel/images/bootstrap', { query: { image: args.positionals[0] } });
  },
};

export const commands: CommandTable = { 'image import': importCmd, 'image bootstrap': bootstrap };
