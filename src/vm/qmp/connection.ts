/**
 * The QMP transport: one unix-socket connection to a QEMU monitor.
 *
 * Protocol (QEMU 7.2): the server sends a greeting line, the client sends
 * `qmp_capabilities`, then every command carries an `id` that its reply
 * echoes. Events are asynchronous lines with an `event` member; they may come
 * BEFORE the reply of the command that caused them (RESUME precedes the
 * reply to `cont`), so code that waits for an event must start waiting before
 * it sends the command:
 *
 *   const resumed = qmp.waitForEvent('RESUME', undefined, 5000);
 *   await qmp.execute('cont');
 *   await resumed;
 *
 * When the socket closes every pending command and event wait rejects with
 * one UnavailableError naming the socket.
 */
import type { Socket } from 'node:net';
import { FailedPreconditionError, UnavailableError, VesselError, type ErrorKind } from '../../core/errors.js';
import { parseJson, stringifyJson, type JsonObject, type JsonValue } from '../json.js';
import { connectUnix } from '../unix-socket.js';
import type { QmpEvent, QmpGreeting } from './types.js';

export interface QmpConnectOptions {
  /** How long to keep retrying the connection and wait for the greeting. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** Default per-command timeout. Default 10000 ms. */
  commandTimeoutMs?: number;
}

/** A command QEMU answered with `{"error": {class, desc}}`. */
export class QmpError extends VesselError {
  override name = 'QmpError';
  override readonly kind: ErrorKind;
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(`QMP ${command} failed: ${desc} (${errorClass})`);
    this.kind = errorClass === 'DeviceNotFound' ? 'NotFound' : 'FailedPrecondition';
  }
}

export type QmpEventListener = (event: QmpEvent) => void;

interface Pending {
  command: string;
  resolve: (v: JsonValue) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class QmpConnection {
  readonly socketPath: string;
  greeting: QmpGreeting | null = null;
  readonly #socket: Socket;
  readonly #commandTimeoutMs: number;
  readonly #pending = new Map<string, Pending>();
  readonly #listeners = new Map<string, Set<QmpEventListener>>();
  readonly #closeListeners = new Set<(e: Error) => void>();
  #buffer = '';
  #nextId = 1;
  #closedError: Error | null = null;
  #greetingWaiter: { resolve: (g: QmpGreeting) => void; reject: (e: Error) => void } | null = null;
  /** Resolves when the socket has closed (never rejects). */
  readonly closed: Promise<void>;

  protected constructor(socket: Socket, socketPath: string, options: QmpConnectOptions) {
    this.#socket = socket;
    this.socketPath = socketPath;
    this.#commandTimeoutMs = options.commandTimeoutMs ?? 10_000;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.#onData(chunk));
    let markClosed!: () => void;
    this.closed = new Promise((r) => (markClosed = r));
    socket.on('error', (e) => this.#onClose(e));
    socket.on('close', () => {
      this.#onClose(null);
      markClosed();
    });
  }

  /** Connect (retrying while QEMU has not created the socket yet), read the greeting, negotiate capabilities. */
  static async connect(socketPath: string, options: QmpConnectOptions = {}): Promise<QmpConnection> {
    const c = new QmpConnection(await connectUnix(socketPath, options.connectTimeoutMs ?? 5000, 'QMP socket'), socketPath, options);
    await c.handshake(options.connectTimeoutMs ?? 5000);
    return c;
  }

  protected async handshake(timeoutMs: number): Promise<void> {
    const greeting = await new Promise<QmpGreeting>((resolve, reject) => {
      if (this.greeting) return resolve(this.greeting);
      if (this.#closedError) return reject(this.#closedError);
      const timer = setTimeout(() => {
        reject(new UnavailableError(`QMP socket ${this.socketPath}: no greeting within ${timeoutMs} ms`));
        this.#socket.destroy();
      }, timeoutMs);
      this.#greetingWaiter = {
        resolve: (g) => (clearTimeout(timer), resolve(g)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
    });
    this.greeting = greeting;
    await this.execute('qmp_capabilities', {}, { timeoutMs });
  }

  get isClosed(): boolean {
    return this.#closedError !== null;
  }

  /** Send a command and wait for its reply (matched by id). QMP errors throw QmpError. */
  execute<T = JsonValue>(command: string, args?: JsonObject | Record<string, unknown>, options: { timeoutMs?: number } = {}): Promise<T> {
    if (this.#closedError) return Promise.reject(this.#closedError);
    const id = `vessel-${this.#nextId++}`;
    const timeoutMs = options.timeoutMs ?? this.#commandTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new UnavailableError(`QMP ${command}: no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { command, resolve: resolve as (v: JsonValue) => void, reject, timer });
      const msg: Record<string, unknown> = { execute: command, id };
      if (args && Object.keys(args).length > 0) msg['arguments'] = args;
      this.#socket.write(`${stringifyJson(msg)}\n`);
    });
  }

  /** Listen for an event by name, or '*' for all. Returns an unsubscribe function. */
  on(event: string, listener: QmpEventListener): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Called once with the reason when the connection closes. */
  onClose(listener: (e: Error) => void): () => void {
    if (this.#closedError) {
      listener(this.#closedError);
      return () => {};
    }
    this.#closeListeners.add(listener);
    return () => this.#closeListeners.delete(listener);
  }

  /**
   * Resolve with the next event called `name` (matching `predicate`) seen
   * from now on. Start waiting before sending the command that causes it.
   */
  waitForEvent(name: string, predicate?: (e: QmpEvent) => boolean, timeoutMs = 10_000): Promise<QmpEvent> {
    return this.watchEvent(name, predicate, timeoutMs).promise;
  }

  /** Like waitForEvent, with a `cancel()` for callers that may abandon the wait (it then never settles). */
  protected watchEvent(name: string, predicate: ((e: QmpEvent) => boolean) | undefined, timeoutMs: number): { promise: Promise<QmpEvent>; cancel: () => void } {
    let cancel = (): void => {};
    const promise = new Promise<QmpEvent>((resolve, reject) => {
      if (this.#closedError) return reject(this.#closedError);
      const done = (): void => {
        clearTimeout(timer);
        off();
        offClose();
      };
      const timer = setTimeout(() => {
        done();
        reject(new UnavailableError(`QMP event ${name}: not seen within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.on(name, (e) => {
        if (predicate && !predicate(e)) return;
        done();
        resolve(e);
      });
      const offClose = this.onClose((e) => {
        done();
        reject(new UnavailableError(`QMP event ${name}: not seen: ${e.message}`, { cause: e }));
      });
      cancel = done;
    });
    return { promise, cancel };
  }

  /** Close the socket; pending commands reject. */
  async close(): Promise<void> {
    if (!this.#socket.destroyed) this.#socket.end();
    const t = setTimeout(() => this.#socket.destroy(), 1000);
    await this.closed;
    clearTimeout(t);
  }

  #onData(chunk: string): void {
    this.#buffer += chunk;
    let nl: number;
    while ((nl = this.#buffer.indexOf('\n')) >= 0) {
      const line = this.#buffer.slice(0, nl).trim();
      this.#buffer = this.#buffer.slice(nl + 1);
      if (line !== '') this.#onLine(line);
    }
  }

  #onLine(line: string): void {
    let msg: JsonValue;
    try {
      msg = parseJson(line);
    } catch {
      return; // QEMU never sends invalid JSON; ignore rather than crash the daemon
    }
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) return;
    if ('QMP' in msg) {
      const q = msg['QMP'] as JsonObject;
      const v = ((q['version'] as JsonObject | undefined) ?? {}) as JsonObject;
      const qemu = (v['qemu'] ?? {}) as JsonObject;
      const g: QmpGreeting = {
        version: { major: Number(qemu['major']), minor: Number(qemu['minor']), micro: Number(qemu['micro']), package: String(v['package'] ?? '') },
        capabilities: ((q['capabilities'] as JsonValue[] | undefined) ?? []).map(String),
      };
      this.#greetingWaiter?.resolve(g);
      this.#greetingWaiter = null;
      return;
    }
    if (typeof msg['event'] === 'string') {
      const ts = (msg['timestamp'] ?? {}) as JsonObject;
      const e: QmpEvent = {
        event: msg['event'],
        data: (msg['data'] ?? {}) as JsonObject,
        timestampMs: Number(ts['seconds'] ?? 0) * 1000 + Math.floor(Number(ts['microseconds'] ?? 0) / 1000),
      };
      for (const key of [e.event, '*']) for (const l of [...(this.#listeners.get(key) ?? [])]) l(e);
      return;
    }
    // A reply without id answers a command QEMU could not parse; give it to the oldest pending one.
    const id = typeof msg['id'] === 'string' ? msg['id'] : [...this.#pending.keys()][0];
    const p = id === undefined ? undefined : this.#pending.get(id);
    if (!p || id === undefined) return;
    this.#pending.delete(id);
    clearTimeout(p.timer);
    if ('error' in msg) {
      const err = (msg['error'] ?? {}) as JsonObject;
      p.reject(new QmpError(p.command, String(err['class'] ?? 'GenericError'), String(err['desc'] ?? 'unknown error')));
    } else {
      p.resolve(msg['return'] ?? {});
    }
  }

  #onClose(cause: Error | null): void {
    if (this.#closedError) return;
    const why = cause ? `: ${(cause as NodeJS.ErrnoException).code ?? cause.message}` : '';
    this.#closedError = new UnavailableError(`QMP connection ${this.socketPath} closed${why}`, cause ? { cause } : undefined);
    this.#socket.destroy();
    for (const [, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(new UnavailableError(`QMP ${p.command}: no reply, connection ${this.socketPath} closed${why}`));
    }
    this.#pending.clear();
    this.#greetingWaiter?.reject(this.#closedError);
    this.#greetingWaiter = null;
    for (const l of [...this.#closeListeners]) l(this.#closedError);
    this.#closeListeners.clear();
  }
}

/** Errors for values QEMU returned in an unexpected shape. */
export function unexpectedReply(command: string, what: string): FailedPreconditionError {
  return new FailedPreconditionError(`QMP ${command}: unexpected reply: ${what}`);
}
