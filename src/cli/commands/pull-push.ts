/**
 * `vessel pull`, `vessel push`, `vessel login`, `vessel logout`.
 *
 * pull/push stream Docker's JSON progress from the daemon (bars on a
 * terminal, one line per change otherwise); `--quiet` prints only the final
 * reference (pull) or `repo@digest` (push). Stored credentials for the
 * reference's registry are sent as `X-Registry-Auth`.
 */
import { jsonLines } from '../../client/client.js';
import { UnauthorizedError } from '../../registry/client/errors.js';
import { authKeyOf, resolveRemote } from '../../registry/client/endpoint.js';
import { parsePlatform } from '../../registry/client/platform.js';
import type { FlagSpec, ParsedArgs } from '../args.js';
import { connect, out, type Command, type CommandContext, type CommandTable } from '../command.js';
import { loadCredentials, registryAuthHeader, removeCredentials, saveCredentials } from '../credentials.js';
import { UsageError } from '../errors.js';
import { ProgressRenderer, type JsonMessage } from '../jsonmessage.js';

const INSECURE: FlagSpec = { long: 'insecure', type: 'bool', help: 'Allow plain HTTP and unverified TLS for this registry' };
const QUIET: FlagSpec = { long: 'quiet', short: 'q', type: 'bool', help: 'Suppress verbose output' };

interface StreamResult {
  digest?: string;
}

/** POSTs, renders the progress stream, returns the digest it reported; throws on an in-stream error. */
async function runStream(ctx: CommandContext, args: ParsedArgs, path: string, query: Record<string, string | undefined>, auth: string): Promise<StreamResult> {
  const quiet = args.bool('quiet');
  const res = await connect(ctx).stream('POST', path, { query, headers: { 'X-Registry-Auth': auth } });
  const renderer = new ProgressRenderer(quiet ? 'quiet' : process.stdout.isTTY ? 'tty' : 'plain', (s) => process.stdout.write(s));
  const result: StreamResult = {};
  for await (const { value } of jsonLines<JsonMessage & { aux?: { Digest?: string } }>(res)) {
    const digest = /^Digest: (sha256:[a-f0-9]{64})$/.exec(value.status ?? '')?.[1] ?? value.aux?.Digest;
    if (digest) result.digest = digest;
    // The push summary's aux line carries no text (the renderer would print an empty line).
    if (value.aux && value.status === undefined && !value.error) continue;
    renderer.handle(value);
  }
  return result;
}

async function authFor(ref: string): Promise<string> {
  const remote = resolveRemote(ref);
  return registryAuthHeader(await loadCredentials(remote.authKey), remote.authKey);
}

function checkRef(ref: string): ReturnType<typeof resolveRemote> {
  try {
    return resolveRemote(ref);
  } catch {
    throw new UsageError(`invalid reference format: ${ref}`);
  }
}

const pull: Command = {
  usage: '[OPTIONS] NAME[:TAG|@DIGEST]',
  summary: 'Download an image from a registry',
  flags: [{ long: 'platform', type: 'string', help: 'Platform os/arch[/variant] to pick from a multi-platform image (default linux/amd64)' }, QUIET, INSECURE],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx, args) {
    const ref = args.positionals[0] as string;
    const remote = checkRef(ref);
    const platform = args.str('platform');
    if (platform) parsePlatform(platform);
    const tag = remote.digest ?? remote.tag ?? 'latest';
    await runStream(
      ctx,
      args,
      '/images/create',
      { fromImage: remote.localRepo, tag, platform, insecure: args.bool('insecure') ? '1' : undefined },
      await authFor(ref),
    );
    if (args.bool('quiet')) await out(`${remote.localRepo}${remote.digest ? `@${remote.digest}` : `:${tag}`}\n`);
    return 0;
  },
};

const push: Command = {
  usage: '[OPTIONS] NAME[:TAG]',
  summary: 'Upload an image to a registry',
  flags: [QUIET, INSECURE],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx, args) {
    const ref = args.positionals[0] as string;
    const remote = checkRef(ref);
    if (remote.digest) throw new UsageError(`cannot push a digest reference: ${ref}`);
    const tag = remote.tag ?? 'latest';
    const r = await runStream(
      ctx,
      args,
      `/images/${remote.localRepo}/push`,
      { tag, insecure: args.bool('insecure') ? '1' : undefined },
      await authFor(ref),
    );
    if (args.bool('quiet') && r.digest) await out(`${remote.localRepo}@${r.digest}\n`);
    return 0;
  },
};

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

const login: Command = {
  usage: '[OPTIONS] SERVER',
  summary: 'Log in to a registry',
  flags: [
    { long: 'username', short: 'u', type: 'string', help: 'Username' },
    { long: 'password', short: 'p', type: 'string', help: 'Password' },
    { long: 'password-stdin', type: 'bool', help: 'Take the password from stdin' },
  ],
  minArgs: 1,
  maxArgs: 1,
  notes: 'Credentials are stored in $VESSEL_CONFIG/config.json (default ~/.vessel/config.json, mode 0600).',
  async run(ctx, args) {
    const server = args.positionals[0] as string;
    const key = authKeyOf(server);
    if (args.has('password') && args.bool('password-stdin')) throw new UsageError('--password and --password-stdin are mutually exclusive');
    let username = args.str('username');
    let password = args.bool('password-stdin') ? await readStdin() : args.str('password');
    if (username === undefined && password === undefined) {
      const stored = await loadCredentials(key);
      if (!stored) throw new UsageError('username and password are required: use -u USER with -p PASS or --password-stdin');
      ({ username, password } = stored);
    }
    if (!username) throw new UsageError('a username is required: use -u USER');
    if (password === undefined || password === '') throw new UsageError('a password is required: use -p PASS or --password-stdin');
    const r = await connect(ctx).request('POST', '/auth', { body: { username, password, serveraddress: server } });
    if (r.status === 401) {
      let msg = `Login to ${server} failed`;
      try {
        msg = (JSON.parse(r.body.toString('utf8')) as { message?: string }).message || msg;
      } catch {
        /* keep the default */
      }
      throw new UnauthorizedError(msg);
    }
    if (r.status < 200 || r.status >= 300) {
      const { errorFromResponse } = await import('../../client/client.js');
      throw errorFromResponse(r.status, r.body);
    }
    await saveCredentials(key, { username, password });
    await out('Login Succeeded\n');
    return 0;
  },
};

const logout: Command = {
  usage: 'SERVER',
  summary: 'Log out from a registry',
  flags: [],
  minArgs: 1,
  maxArgs: 1,
  async run(_ctx, args) {
    const server = args.positionals[0] as string;
    const removed = await removeCredentials(authKeyOf(server));
    await out(removed ? `Removing login credentials for ${server}\n` : `Not logged in to ${server}\n`);
    return 0;
  },
};

export const commands: CommandTable = { pull, push, login, logout };
