/**
 * Client for qemu-guest-agent, reached through the host end of the guest's
 * virtserialport `org.qemu.guest_agent.0` (a unix socket QEMU listens on).
 *
 * The agent is strictly request/reply with no events, so commands run one at
 * a time. A virtio-serial socket exists before the agent runs and keeps
 * whatever an earlier client left in flight, so the client resynchronises with
 * `guest-sync-delimited` first (and again after any timeout): the agent writes
 * a 0xFF byte before that reply, everything before it is stale and dropped.
 */
import type { Socket } from 'node:net';
import { FailedPreconditionError, InvalidArgumentError, UnavailableError, VesselError, type ErrorKind } from '../../core/errors.js';
import { parseJson, stringifyJson, type JsonObject, type JsonValue } from '../json.js';
import { connectUnix } from '../unix-socket.js';

export interface QgaOptions {
  /** Default per-command timeout. Default 10000 ms. */
  commandTimeoutMs?: number;
}

export interface QgaExecOptions {
  /** Replaces the command's whole environment (the agent passes it as envp), so include PATH. */
  env?: Record<string, string>;
  input?: string | Buffer;
  /** Total time for the command to exit. Default 30000 ms. */
  timeoutMs?: number;
}

export interface QgaExecResult {
  exitCode: number | null;
  signal?: number;
  stdout: string;
  stderr: string;
  /** The agent truncates captured output (16 MiB in 7.2). */
  truncated: boolean;
}

export interface QgaOsInfo {
  id?: string;
  name?: string;
  prettyName?: string;
  version?: string;
  versionId?: string;
  kernelRelease?: string;
  kernelVersion?: string;
  machine?: string;
}

export interface QgaNetworkInterface {
  name: string;
  hardwareAddress?: string;
  addresses: { type: 'ipv4' | 'ipv6'; address: string; prefix: number }[];
}

export type QgaShutdownMode = 'powerdown' | 'halt' | 'reboot';

/** The agent answered `{"error": …}`. */
export class QgaError extends VesselError {
  override name = 'QgaError';
  override readonly kind: ErrorKind = 'FailedPrecondition';
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(`Guest agent ${command} failed: ${desc}`);
  }
}

const DELIMITER = 0xff;

export class QgaClient {
  readonly socketPath: string;
  readonly #commandTimeoutMs: number;
  #socket: Socket | null = null;
  #buf: Buffer = Buffer.alloc(0);
  #wake: (() => void) | null = null;
  #closedError: Error | null = null;
  #synced = false;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(socketPath: string, options: QgaOptions = {}) {
    this.socketPath = socketPath;
    this.#commandTimeoutMs = options.commandTimeoutMs ?? 10_000;
  }

  /** Connect and synchronise; fails if the agent does not answer within `timeoutMs`. */
  static async connect(socketPath: string, options: QgaOptions & { timeoutMs?: number } = {}): Promise<QgaClient> {
    const c = new QgaClient(socketPath, options);
    try {
      await c.waitReady(options.timeoutMs ?? 5000);
    } catch (e) {
      // QEMU's chardev serves one client at a time: a leaked connection would lock everyone else out.
      c.close();
      throw e;
    }
    return c;
  }

  /**
   * Retry (re)connecting and ping until the agent answers or `timeoutMs` passes.
   * Use it right after boot: the socket may exist long before the agent runs.
   */
  async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown = null;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      try {
        await this.#serial(() => this.#call('guest-ping', {}, Math.min(left, 1000)));
        return;
      } catch (e) {
        last = e;
        if (this.#closedError) this.#reset();
        if (e instanceof QgaError) throw e;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const why = last instanceof Error ? `: ${last.message}` : '';
    throw new UnavailableError(`Guest agent not ready within ${timeoutMs} ms${why}`, last ? { cause: last } : undefined);
  }

  /** Run a guest-agent command and return its `return` value. */
  execute<T = JsonValue>(command: string, args: JsonObject = {}, options: { timeoutMs?: number } = {}): Promise<T> {
    return this.#serial(() => this.#call(command, args, options.timeoutMs ?? this.#commandTimeoutMs)) as Promise<T>;
  }

  async ping(): Promise<void> {
    await this.execute('guest-ping');
  }

  /** Run argv[0] (searched in the guest's PATH) with captured output, and wait for it to exit. */
  async exec(argv: string[], options: QgaExecOptions = {}): Promise<QgaExecResult> {
    if (argv.length === 0 || !argv[0]) throw new InvalidArgumentError('Guest exec: empty command');
    const timeoutMs = options.timeoutMs ?? 30_000;
    const deadline = Date.now() + timeoutMs;
    const args: JsonObject = { path: argv[0], arg: argv.slice(1), 'capture-output': true };
    if (options.env) args['env'] = Object.entries(options.env).map(([k, v]) => `${k}=${v}`);
    if (options.input !== undefined) args['input-data'] = Buffer.from(options.input).toString('base64');
    const started = (await this.execute('guest-exec', args)) as JsonObject;
    const pid = started['pid'];
    if (typeof pid !== 'number') throw new FailedPreconditionError('Guest agent guest-exec: no pid in reply');
    let delay = 10;
    for (;;) {
      const s = (await this.execute('guest-exec-status', { pid })) as JsonObject;
      if (s['exited'] === true) {
        const r: QgaExecResult = {
          exitCode: typeof s['exitcode'] === 'number' ? s['exitcode'] : null,
          stdout: Buffer.from(String(s['out-data'] ?? ''), 'base64').toString('utf8'),
          stderr: Buffer.from(String(s['err-data'] ?? ''), 'base64').toString('utf8'),
          truncated: s['out-truncated'] === true || s['err-truncated'] === true,
        };
        if (typeof s['signal'] === 'number') r.signal = s['signal'];
        return r;
      }
      if (Date.now() >= deadline) {
        throw new UnavailableError(`Guest exec ${argv[0]}: still running after ${timeoutMs} ms (pid ${pid} in the guest)`);
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 200);
    }
  }

  /** Ask the guest to shut down. The agent sends no reply on success, so this only sends the request. */
  async shutdown(mode: QgaShutdownMode = 'powerdown'): Promise<void> {
    await this.#serial(async () => {
      if (!this.#synced) await this.#sync(this.#commandTimeoutMs);
      this.#write({ execute: 'guest-shutdown', arguments: { mode } });
      this.#synced = false; // an error reply, if any, is stale data for the next sync to drop
    });
  }

  async osInfo(): Promise<QgaOsInfo> {
    const r = (await this.execute('guest-get-osinfo')) as JsonObject;
    const map: [keyof QgaOsInfo, string][] = [
      ['id', 'id'],
      ['name', 'name'],
      ['prettyName', 'pretty-name'],
      ['version', 'version'],
      ['versionId', 'version-id'],
      ['kernelRelease', 'kernel-release'],
      ['kernelVersion', 'kernel-version'],
      ['machine', 'machine'],
    ];
    const info: QgaOsInfo = {};
    for (const [k, q] of map) if (typeof r[q] === 'string') info[k] = r[q];
    return info;
  }

  async networkInterfaces(): Promise<QgaNetworkInterface[]> {
    const r = (await this.execute('guest-network-get-interfaces')) as JsonObject[];
    return r.map((i) => {
      const n: QgaNetworkInterface = {
        name: String(i['name']),
        addresses: ((i['ip-addresses'] as JsonObject[] | undefined) ?? []).map((a) => ({
          type: a['ip-address-type'] === 'ipv6' ? 'ipv6' : 'ipv4',
          address: String(a['ip-address']),
          prefix: Number(a['prefix']),
        })),
      };
      if (typeof i['hardware-address'] === 'string') n.hardwareAddress = i['hardware-address'];
      return n;
    });
  }

  /** Write a whole file in the guest (created or truncated; `mode` is not settable through the agent). */
  async fileWrite(path: string, data: string | Buffer): Promise<void> {
    const handle = await this.execute('guest-file-open', { path, mode: 'w' });
    try {
      const bytes = Buffer.from(data);
      const chunk = 48 * 1024;
      for (let off = 0; off < bytes.length; off += chunk) {
        await this.execute('guest-file-write', { handle, 'buf-b64': bytes.subarray(off, off + chunk).toString('base64') });
      }
    } finally {
      await this.execute('guest-file-close', { handle });
    }
  }

  close(): void {
    this.#socket?.destroy();
    this.#reset();
  }

  // ---- transport ----

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  async #call(command: string, args: JsonObject, timeoutMs: number): Promise<JsonValue> {
    const deadline = Date.now() + timeoutMs;
    try {
      if (!this.#socket) await this.#open(timeoutMs);
      if (!this.#synced) await this.#sync(deadline - Date.now());
      const msg: JsonObject = { execute: command };
      if (Object.keys(args).length > 0) msg['arguments'] = args;
      this.#write(msg);
      const reply = await this.#readMessage(deadline, command);
      if ('error' in reply) {
        const err = (reply['error'] ?? {}) as JsonObject;
        throw new QgaError(command, String(err['class'] ?? 'GenericError'), String(err['desc'] ?? 'unknown error'));
      }
      return reply['return'] ?? {};
    } catch (e) {
      if (!(e instanceof QgaError)) this.#synced = false; // a late reply may still come
      throw e;
    }
  }

  async #open(timeoutMs: number): Promise<void> {
    const s = await connectUnix(this.socketPath, timeoutMs, 'guest agent socket');
    this.#socket = s;
    this.#closedError = null;
    this.#buf = Buffer.alloc(0);
    this.#synced = false;
    s.on('data', (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d]);
      this.#wake?.();
    });
    const onEnd = (e?: Error): void => {
      if (this.#socket !== s) return;
      this.#closedError = new UnavailableError(`Guest agent connection ${this.socketPath} closed${e ? `: ${e.message}` : ''}`);
      this.#wake?.();
    };
    s.on('error', onEnd);
    s.on('close', () => onEnd());
  }

  #reset(): void {
    this.#socket?.destroy();
    this.#socket = null;
    this.#synced = false;
    this.#buf = Buffer.alloc(0);
  }

  #write(msg: JsonObject): void {
    if (!this.#socket || this.#closedError) throw this.#closedError ?? new UnavailableError('Guest agent: not connected');
    this.#socket.write(stringifyJson(msg));
  }

  /** Send guest-sync-delimited with a fresh id; drop bytes up to 0xFF, then replies until ours. */
  async #sync(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const id = Math.floor(Math.random() * 0x7fffffff);
    // A leading 0xFF makes the agent discard any partial command it holds.
    this.#socket?.write(Buffer.from([DELIMITER]));
    this.#write({ execute: 'guest-sync-delimited', arguments: { id } });
    for (;;) {
      let at: number;
      while ((at = this.#buf.indexOf(DELIMITER)) < 0) {
        this.#buf = Buffer.alloc(0);
        await this.#waitData(deadline, 'guest-sync-delimited');
      }
      this.#buf = this.#buf.subarray(at + 1);
      const reply = await this.#readMessage(deadline, 'guest-sync-delimited');
      if (reply['return'] === id) {
        this.#synced = true;
        return;
      }
    }
  }

  /** The next JSON object line (the agent ends replies with a newline). */
  async #readMessage(deadline: number, command: string): Promise<JsonObject> {
    for (;;) {
      const nl = this.#buf.indexOf(0x0a);
      if (nl >= 0) {
        const line = this.#buf.subarray(0, nl).toString('utf8').replace(/\xff/g, '').trim();
        this.#buf = this.#buf.subarray(nl + 1);
        if (line === '') continue;
        let v: JsonValue;
        try {
          v = parseJson(line);
        } catch {
          continue; // garbage from an interrupted earlier exchange
        }
        if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v;
        continue;
      }
      await this.#waitData(deadline, command);
    }
  }

  #waitData(deadline: number, command: string): Promise<void> {
    if (this.#closedError) return Promise.reject(this.#closedError);
    const left = deadline - Date.now();
    if (left <= 0) return Promise.reject(new UnavailableError(`Guest agent ${command}: no reply in time`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#wake = null;
        reject(new UnavailableError(`Guest agent ${command}: no reply in time`));
      }, left);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = null;
        if (this.#closedError) reject(this.#closedError);
        else resolve();
      };
    });
  }
}
