/**
 * `vessel build`: Docker's classic-builder client. The context directory is
 * streamed as a tar (filtered by `.dockerignore`, see ../build-context.ts) to
 * POST /build, and the daemon's JSON-lines answer is rendered: step output as
 * it comes, the image ID at the end with `-q`, the raw lines with
 * `--progress json`. An error in the stream is one `vessel:` line, exit 1.
 */
import { writeFile } from 'node:fs/promises';
import { PassThrough, pipeline, type Readable } from 'node:stream';
import { jsonLines } from '../../client/client.js';
import { InternalError } from '../../core/errors.js';
import { parseReference } from '../../image/reference.js';
import type { FlagSpec, ParsedArgs } from '../args.js';
import { packContext, resolveContext, type BuildContext } from '../build-context.js';
import { connect, type Command, type CommandTable } from '../command.js';
import { registryConfigHeader } from '../credentials.js';
import { UsageError } from '../errors.js';
import { ProgressRenderer, type JsonMessage, type RenderMode } from '../jsonmessage.js';
import { humanSize } from '../units.js';

const FLAGS: FlagSpec[] = [
  { long: 'tag', short: 't', type: 'list', help: "Name and optionally a tag in the 'name:tag' format" },
  { long: 'file', short: 'f', type: 'string', help: "Name of the Dockerfile (default 'PATH/Dockerfile'; '-' reads it from stdin)" },
  { long: 'build-arg', type: 'list', help: 'Set build-time variables (KEY=VALUE, or KEY to take it from the environment)' },
  { long: 'target', type: 'string', help: 'Set the target build stage to build' },
  { long: 'no-cache', type: 'bool', help: 'Do not use cache when building the image' },
  { long: 'pull', type: 'bool', help: 'Always attempt to pull a newer version of the base images' },
  { long: 'label', type: 'list', help: 'Set metadata for an image (KEY=VALUE)' },
  { long: 'progress', type: 'string', help: "Type of progress output (auto, plain, tty, quiet, json)", defaultText: '"auto"' },
  { long: 'quiet', short: 'q', type: 'bool', help: 'Suppress the build output and print the image ID on success' },
  { long: 'iidfile', type: 'string', help: 'Write the image ID to the file' },
  { long: 'rm', type: 'bool', help: 'Remove intermediate containers after a successful build', defaultText: 'true' },
  { long: 'force-rm', type: 'bool', help: 'Always remove intermediate containers' },
];

function renderMode(args: ParsedArgs): RenderMode {
  if (args.bool('quiet')) return 'quiet';
  const progress = args.str('progress') ?? 'auto';
  switch (progress) {
    case 'auto':
      return process.stdout.isTTY ? 'tty' : 'plain';
    case 'plain':
    case 'tty':
    case 'quiet':
    case 'json':
      return progress;
    case 'rawjson':
      return 'json';
    default:
      throw new UsageError(`invalid argument "${progress}" for "--progress" flag: expected auto, plain, tty, quiet or json`);
  }
}

/** `--build-arg`: `K=V`, or `K` alone (the CLI's environment value, dropped when unset). */
export function parseBuildArgs(list: string[], env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    const key = eq === -1 ? item : item.slice(0, eq);
    if (key === '' || /\s/.test(key)) {
      throw new UsageError(`invalid argument "${item}" for "--build-arg" flag: invalid build argument, expected KEY=VALUE or KEY`);
    }
    if (eq !== -1) out[key] = item.slice(eq + 1);
    else if (env[key] !== undefined) out[key] = env[key] as string;
  }
  return out;
}

/** `--label`: `K=V`, or `K` for an empty value. */
export function parseLabels(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    const key = eq === -1 ? item : item.slice(0, eq);
    if (key.trim() === '') throw new UsageError(`invalid argument "${item}" for "--label" flag: label name is empty`);
    out[key] = eq === -1 ? '' : item.slice(eq + 1);
  }
  return out;
}

export function validateTag(tag: string): void {
  let ok = false;
  try {
    ok = parseReference(tag).digest === null;
  } catch {
    ok = false;
  }
  if (!ok) throw new UsageError(`invalid argument "${tag}" for "-t, --tag" flag: invalid reference format`);
}

/** The query string of POST /build (repeated `t`, so not a plain record). */
export function buildQuery(args: ParsedArgs, ctx: BuildContext, quiet: boolean): string {
  const q = new URLSearchParams();
  for (const t of args.list('tag')) q.append('t', t);
  q.set('dockerfile', ctx.dockerfile);
  const buildArgs = parseBuildArgs(args.list('build-arg'));
  if (Object.keys(buildArgs).length > 0) q.set('buildargs', JSON.stringify(buildArgs));
  const labels = parseLabels(args.list('label'));
  if (Object.keys(labels).length > 0) q.set('labels', JSON.stringify(labels));
  const target = args.str('target');
  if (target) q.set('target', target);
  if (args.bool('no-cache')) q.set('nocache', '1');
  if (args.has('pull')) q.set('pull', args.bool('pull') ? '1' : '0');
  if (quiet) q.set('q', '1');
  if (args.has('rm') && !args.bool('rm')) q.set('rm', '0');
  if (args.bool('force-rm')) q.set('forcerm', '1');
  return q.toString();
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Counts the bytes going to the daemon; on a terminal, shows them on stderr as Docker does. */
function uploadCounter(): { stream: PassThrough; done(): void } {
  const tty = process.stderr.isTTY === true;
  let sent = 0;
  let shown = false;
  let last = 0;
  const show = (final: boolean) => {
    if (!tty) return;
    process.stderr.write(`\rSending build context to Vessel daemon  ${humanSize(sent)}${final ? '\n' : ''}`);
    shown = !final;
  };
  const stream = new PassThrough();
  stream.on('data', (c: Buffer) => {
    sent += c.length;
    const now = Date.now();
    if (now - last >= 100) {
      last = now;
      show(false);
    }
  });
  let finished = false;
  stream.on('end', () => {
    if (!finished) show(true);
    finished = true;
  });
  return {
    stream,
    done() {
      // Ends a half-drawn progress line before anything else is printed.
      if (shown && !finished) process.stderr.write('\n');
      finished = true;
    },
  };
}

/** An image ID carried in stream text (`Successfully built …` or a bare ID with q=1). */
function idFromStream(text: string | undefined): string | undefined {
  if (!text) return undefined;
  const m = /^(?:Successfully built ([0-9a-f]{12,64}|sha256:[0-9a-f]{64})|(sha256:[0-9a-f]{64}))$/.exec(text.trim());
  return m?.[1] ?? m?.[2];
}

const build: Command = {
  usage: '[OPTIONS] PATH',
  summary: 'Build an image from a Dockerfile',
  flags: FLAGS,
  minArgs: 1,
  maxArgs: 1,
  notes: `The context directory is sent as a tar, less what .dockerignore excludes
(the Dockerfile and .dockerignore are always sent). -f is relative to the
current directory; a Dockerfile outside the context is added to it under a
generated name. Reading the context from stdin (PATH "-") is not supported yet.`,
  async run(cctx, args) {
    const [contextArg] = args.positionals as [string];
    // Validate everything before touching the context or the daemon.
    for (const t of args.list('tag')) validateTag(t);
    const mode = renderMode(args);
    const quiet = mode === 'quiet';
    if (contextArg === '-') throw new UsageError('reading the build context from stdin is not supported yet: give a directory');
    const file = args.str('file');
    const ctx = await resolveContext(contextArg, {
      file: file === '-' ? undefined : file,
      fileContent: file === '-' ? await readStdin() : undefined,
    });
    const query = buildQuery(args, ctx, quiet);
    // Before the context starts to flow: the upload counter reads it as soon as it does.
    const registryConfig = await registryConfigHeader();

    const tar: Readable = packContext(ctx);
    const counter = uploadCounter();
    let contextError: Error | undefined;
    pipeline(tar, counter.stream, (e) => {
      if (e) contextError ??= e;
    });
    const renderer = new ProgressRenderer(mode, (s) => process.stdout.write(s));
    let streamId: string | undefined;
    try {
      const res = await connect(cctx).stream('POST', `/build?${query}`, {
        headers: { 'Content-Type': 'application/x-tar', 'X-Registry-Config': registryConfig },
        body: counter.stream,
      });
      for await (const { value, raw } of jsonLines<JsonMessage>(res)) {
        counter.done();
        streamId = idFromStream(value.stream) ?? streamId;
        try {
          renderer.handle(value, raw);
        } catch (e) {
          // Build errors may span lines; the CLI reports one.
          const msg = (e as Error).message.split('\n').map((l) => l.trim()).filter(Boolean).join(' ');
          throw new InternalError(msg || 'build failed');
        }
      }
    } catch (e) {
      counter.done();
      throw contextError ?? e;
    }
    counter.done();
    const id = renderer.imageId ?? streamId;
    if (quiet) {
      if (!id) throw new InternalError('the daemon did not report the ID of the built image');
      process.stdout.write(`${id}\n`);
    }
    const iidfile = args.str('iidfile');
    if (iidfile) {
      if (!id) throw new InternalError('the daemon did not report the ID of the built image');
      await writeFile(iidfile, id);
    }
    return 0;
  },
};

export const commands: CommandTable = { build, 'image build': build };
