/**
 * One client's attachment to a container's stdio. The client may attach
 * before the container starts (`docker run` does): stdin it sends is buffered
 * until the container's attach socket exists, then flushed in order.
 */
import type { AttachConnection, OutputStream } from './attach.js';

export interface AttachOptions {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  onOutput: (stream: OutputStream, data: Buffer) => void;
}

export class AttachSession {
  #conn: AttachConnection | null = null;
  #buffered: Buffer[] = [];
  #stdinEnded = false;
  #resolveDone!: () => void;
  #ended = false;
  /** Resolves when the container's output has ended (or the session was closed). */
  readonly done: Promise<void>;

  constructor(readonly options: AttachOptions) {
    this.done = new Promise((r) => (this.#resolveDone = r));
  }

  /** Called by the manager once the attach socket exists. */
  bind(conn: AttachConnection): void {
    if (this.#ended) {
      conn.close();
      return;
    }
    this.#conn = conn;
    for (const b of this.#buffered.splice(0)) conn.writeStdin(b);
    if (this.#stdinEnded) conn.closeStdin();
    void conn.closed.then(() => this.finish());
  }

  deliver(stream: OutputStream, data: Buffer): void {
    if (stream === 'stdout' && !this.options.stdout) return;
    if (stream === 'stderr' && !this.options.stderr) return;
    this.options.onOutput(stream, data);
  }

  writeStdin(data: Buffer): void {
    if (!this.options.stdin || this.#stdinEnded) return;
    if (this.#conn) this.#conn.writeStdin(data);
    else this.#buffered.push(data);
  }

  endStdin(): void {
    if (!this.options.stdin || this.#stdinEnded) return;
    this.#stdinEnded = true;
    this.#conn?.closeStdin();
  }

  get connection(): AttachConnection | null {
    return this.#conn;
  }

  /** Ends the session (client went away or output ended). */
  finish(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#conn?.close();
    this.#resolveDone();
  }
}
