/**
 * A connection to conmon's attach socket for one container or exec session.
 *
 * conmon sends each chunk of output as one SEQPACKET message whose first byte
 * names the stream (2 = stdout, 3 = stderr); bytes sent to it go to the
 * process's stdin, and closing our write side closes that stdin. Terminal
 * resizes go through the `ctl` fifo beside the socket.
 */
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { SeqpacketSocket } from '../native/native.js';

export type OutputStream = 'stdout' | 'stderr';

/** conmon reads stdin messages into a fixed buffer; larger messages would be cut. */
const MAX_STDIN_MESSAGE = 8192;

export class AttachConnection {
  #sock: SeqpacketSocket;
  #closed = false;
  readonly closed: Promise<void>;

  private constructor(
    sock: SeqpacketSocket,
    private readonly bundle: string,
    onOutput: (stream: OutputStream, data: Buffer) => void,
  ) {
    this.#sock = sock;
    this.closed = new Promise((resolve) => {
      sock.onClose = () => {
        this.#closed = true;
        resolve();
      };
    });
    sock.onMessage = (msg: Buffer) => {
      if (msg.length < 1) return;
      const kind = msg[0];
      onOutput(kind === 3 ? 'stderr' : 'stdout', msg.subarray(1));
    };
  }

  static connect(bundle: string, onOutput: (stream: OutputStream, data: Buffer) => void): AttachConnection {
    const sock = SeqpacketSocket.connect(path.join(bundle, 'attach'));
    return new AttachConnection(sock, bundle, onOutput);
  }

  writeStdin(data: Buffer): void {
    if (this.#closed) return;
    for (let off = 0; off < data.length; off += MAX_STDIN_MESSAGE) {
      this.#sock.write(data.subarray(off, off + MAX_STDIN_MESSAGE));
    }
  }

  /** Ends the process's stdin once everything written so far was delivered. */
  closeStdin(): void {
    if (!this.#closed) this.#sock.shutdownWrite();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#sock.close();
  }

  async resize(height: number, width: number): Promise<void> {
    await resizeTerminal(this.bundle, height, width);
  }
}

export async function resizeTerminal(bundle: string, height: number, width: number): Promise<void> {
  const h = await fs.open(path.join(bundle, 'ctl'), constants.O_WRONLY | constants.O_NONBLOCK);
  try {
    await h.write(`1 ${Math.max(1, Math.floor(height))} ${Math.max(1, Math.floor(width))}\n`);
  } finally {
    await h.close();
  }
}
