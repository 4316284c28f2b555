/**
 * `vessel run` and `vessel create`, following docker CLI 28's request order:
 * create → attach (hijacked, before start so no output is lost) → wait
 * (headers received before start, so a fast exit is not missed) → start →
 * stream until the daemon closes it → exit with the status from wait.
 *
 * Attached non-TTY runs first try Vessel's one-request `POST /vessel/run`
 * (api/run-stream.ts), which does all of that on the daemon's side; a daemon
 * without it (Docker, an older vesseld) answers 404 and gets the sequence.
 * The HTTP client (node:http) is loaded only when it is needed.
 */
import { STATUS_FRAME, type RunStatus } from '../../api/run-stream.js';
import type { VesselClient } from '../../client/client.js';
import { openRun } from '../../client/run-request.js';
import { InternalError } from '../../core/errors.js';
import type { FlagSpec } from '../args.js';
import { checkTty, forwardSignals, monitorTtySize, pumpStream, setRawTerminal } from '../attach.js';
import type { Command, CommandContext, CommandTable } from '../command.js';
import { buildCreateRequest, CONTAINER_FLAGS, type CreateRequest } from '../container-config.js';
import { pathName } from '../path-name.js';
import { beginWait, type WaitCondition } from '../wait.js';

const RUN_ONLY: FlagSpec[] = [
  { long: 'detach', short: 'd', type: 'bool', help: 'Run container in background and print container ID' },
  { long: 'sig-proxy', type: 'bool', help: 'Proxy received signals to the container (non-TTY only)', defaultText: 'true' },
];
// Plain code-unit order: localeCompare would load ICU's collator, which costs
// milliseconds at every start of the CLI (the names are lowercase ASCII anyway).
const RUN_FLAGS: FlagSpec[] = [...RUN_ONLY, ...CONTAINER_FLAGS].sort((a, b) => (a.long < b.long ? -1 : a.long > b.long ? 1 : 0));

async function createContainer(client: VesselClient, req: CreateRequest): Promise<string> {
  const res = await client.json<{ Id: string; Warnings?: string[] | null }>('POST', '/containers/create', {
    query: { name: req.name },
    body: req.body,
  });
  for (const w of res.Warnings ?? []) process.stderr.write(`WARNING: ${w}\n`);
  return res.Id;
}

/** Gives a failed start Docker's exit codes: 127 command not found, 126 not executable, else 125. */
function startFailure(e: unknown): unknown {
  const msg = e instanceof Error ? e.message : String(e);
  const code = /executable file not found|no such file or directory/i.test(msg)
    ? 127
    : /permission denied/i.test(msg)
      ? 126
      : 125;
  if (e instanceof Error) Object.assign(e, { exitCode: code });
  return e;
}

export interface AttachedStartOptions {
  tty: boolean;
  stdin: boolean;
  sigProxy: boolean;
  condition: WaitCondition;
  /** Issued once attach and wait are in place. */
  start: () => Promise<unknown>;
}

/**
 * Attach, wait, start, stream; returns the container's exit status. Shared by
 * `run` and `start -a`.
 */
export async function attachAndStart(client: VesselClient, id: string, opts: AttachedStartOptions): Promise<number> {
  const cid = pathName(id);
  const noop = () => undefined;
  // Docker's sig-proxy is off for TTYs: there ^C travels as a byte instead.
  const stopSignals =
    opts.sigProxy && !opts.tty
      ? forwardSignals((signal) => client.call('POST', `/containers/${cid}/kill`, { query: { signal } }))
      : noop;
  let restoreTerminal: () => void = noop;
  let stopResize: () => void = noop;
  try {
    // Attach and wait are independent: one round trip instead of two.
    const attaching = client.upgrade('POST', `/containers/${cid}/attach`, {
      query: { stream: true, stdout: true, stderr: true, stdin: opts.stdin || undefined },
    });
    const waiting = beginWait(client, id, opts.condition);
    waiting.catch(() => undefined);
    const socket = await attaching;
    if (opts.tty && opts.stdin) restoreTerminal = setRawTerminal();
    const session = pumpStream(socket, { tty: opts.tty, stdin: opts.stdin });
    const wait = await waiting;
    try {
      await opts.start();
    } catch (e) {
      session.close();
      wait.cancel();
      throw startFailure(e);
    }
    if (opts.tty) {
      stopResize = monitorTtySize((h, w) => client.call('POST', `/containers/${cid}/resize`, { query: { h, w } }));
    }
    // Output first (as Docker does), but a stream the daemon keeps open after
    // the exit is abandoned once idle; then the status.
    let status: number | undefined;
    let statusError: unknown;
    const statusKnown = wait.status.then(
      (s) => void (status = s),
      (e) => void (statusError = e),
    );
    await Promise.race([session.done.catch(() => undefined), statusKnown]);
    await session.drain();
    await statusKnown;
    if (statusError) throw statusError;
    return status ?? 0;
  } finally {
    stopResize();
    restoreTerminal();
    stopSignals();
  }
}

/**
 * Vessel's one-request run (api/run-stream.ts) for attached non-TTY runs:
 * the container's exit status, or null when the daemon lacks the endpoint.
 */
async function runInOneRequest(host: string, req: CreateRequest, opts: { stdin: boolean; sigProxy: boolean; client: () => Promise<VesselClient> }): Promise<number | null> {
  const opened = await openRun(host, req.name, req.body);
  if (!opened) return null;
  for (const w of opened.warnings) process.stderr.write(`WARNING: ${w}\n`);
  const cid = pathName(opened.id);
  const stopSignals = opts.sigProxy
    ? forwardSignals(async (signal) => (await opts.client()).call('POST', `/containers/${cid}/kill`, { query: { signal } }))
    : () => undefined;
  let status: RunStatus | undefined;
  try {
    const session = pumpStream(opened.socket, {
      tty: false,
      stdin: opts.stdin,
      status: { stream: STATUS_FRAME, onFrame: (p) => void (status = JSON.parse(p.toString('utf8')) as RunStatus) },
    });
    // An in-band error (before any status) is the failed start.
    await session.done.catch((e: unknown) => {
      if (status) return;
      const first = (e instanceof Error ? e.message : String(e)).split('\n')[0];
      throw startFailure(new InternalError(first || 'error from daemon in stream'));
    });
  } finally {
    stopSignals();
  }
  if (!status) throw new InternalError('Error waiting for container: unexpected EOF');
  if (status.Error?.Message) throw new InternalError(`Error waiting for container: ${status.Error.Message}`);
  return Number(status.StatusCode ?? 0);
}

/** One client per process, made on first use (loading node:http then). */
let lazyClient: Promise<VesselClient> | undefined;
function connectLazily(ctx: CommandContext): Promise<VesselClient> {
  lazyClient ??= import('../command.js').then((m) => m.connect(ctx));
  return lazyClient;
}

const run: Command = {
  usage: '[OPTIONS] IMAGE [COMMAND] [ARG...]',
  summary: 'Create and run a new container from an image',
  flags: RUN_FLAGS,
  interspersed: false,
  minArgs: 1,
  failureCode: 125,
  notes: 'Flags must come before IMAGE; everything after it is the container command.',
  async run(ctx, args) {
    const req = buildCreateRequest(args);
    const body = req.body;
    const detach = args.bool('detach');
    const stdin = body.OpenStdin;
    if (detach) {
      Object.assign(body, { AttachStdin: false, AttachStdout: false, AttachStderr: false, StdinOnce: false });
    } else {
      checkTty(stdin, body.Tty);
    }
    const sigProxy = args.has('sig-proxy') ? args.bool('sig-proxy') : true;
    if (!detach && !body.Tty) {
      // The HTTP client is loaded only if needed: for the kill of a proxied signal.
      const code = await runInOneRequest(ctx.host, req, { stdin, sigProxy, client: () => connectLazily(ctx) });
      if (code !== null) return code;
    }
    const { connect, out } = await import('../command.js');
    const client = connect(ctx);
    // A missing image is reported as the daemon words it (there is no pull yet).
    const id = await createContainer(client, req);
    const autoRemove = body.HostConfig.AutoRemove === true;
    const condition: WaitCondition = autoRemove ? 'removed' : 'next-exit';
    const start = () => client.call('POST', `/containers/${pathName(id)}/start`);

    if (detach) {
      const wait = await beginWait(client, id, condition);
      try {
        await start().catch((e: unknown) => {
          throw startFailure(e);
        });
      } finally {
        wait.cancel();
      }
      await out(`${id}\n`);
      return 0;
    }
    return attachAndStart(client, id, { tty: body.Tty, stdin, sigProxy, condition, start });
  },
};

const create: Command = {
  usage: '[OPTIONS] IMAGE [COMMAND] [ARG...]',
  summary: 'Create a new container',
  flags: CONTAINER_FLAGS,
  interspersed: false,
  minArgs: 1,
  failureCode: 125,
  notes: 'Flags must come before IMAGE; everything after it is the container command.',
  async run(ctx, args) {
    const req = buildCreateRequest(args);
    const { connect, out } = await import('../command.js');
    const id = await createContainer(connect(ctx), req);
    await out(`${id}\n`);
    return 0;
  },
};

export const commands: CommandTable = { run, create };
