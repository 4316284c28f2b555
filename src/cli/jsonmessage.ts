/**
 * Rendering of Docker's JSON-lines progress streams (pull, import, build,
 * bootstrap). On a terminal each `id` owns one line that is redrawn in place
 * with ANSI cursor movement; elsewhere each status change is one plain line.
 * An `error` in the stream (sent with HTTP 200) becomes a thrown error.
 */
import { InternalError } from '../core/errors.js';
import { humanSize } from './units.js';

export interface JsonMessage {
  status?: string;
  id?: string;
  progress?: string;
  progressDetail?: { current?: number; total?: number };
  stream?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string };
}

export type RenderMode = 'tty' | 'plain' | 'quiet' | 'json';

const BAR_WIDTH = 50;

/** `[=====>      ]  1.2MB/3.4MB`, or the server's own progress text. */
export function progressText(m: JsonMessage): string {
  const cur = m.progressDetail?.current;
  const total = m.progressDetail?.total;
  if (cur !== undefined && total && total > 0) {
    const filled = Math.min(BAR_WIDTH, Math.floor((cur / total) * BAR_WIDTH));
    const bar = `${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? (filled === BAR_WIDTH ? '=' : '>') : ''}`;
    return `[${bar.padEnd(BAR_WIDTH)}]  ${humanSize(cur)}/${humanSize(total)}`;
  }
  if (cur !== undefined && cur > 0) return humanSize(cur);
  return m.progress ?? '';
}

export class ProgressRenderer {
  /** The image ID reported by the stream (aux.ID, or a final `sha256:` status). */
  imageId: string | undefined;
  readonly #write: (s: string) => void;
  readonly #mode: RenderMode;
  /** Terminal mode: which line (counted from the first id line) each id owns. */
  #lines = new Map<string, number>();
  /** Plain mode: last status printed per id, to skip pure progress repeats. */
  #lastStatus = new Map<string, string>();

  constructor(mode: RenderMode, write: (s: string) => void) {
    this.#mode = mode;
    this.#write = write;
  }

  /** Handles one decoded message (and its raw line, echoed in json mode). */
  handle(m: JsonMessage, raw?: string): void {
    if (this.#mode === 'json' && raw !== undefined) this.#write(`${raw}\n`);
    if (m.error !== undefined || m.errorDetail?.message) {
      throw new InternalError(m.errorDetail?.message || m.error || 'unknown error');
    }
    if (m.aux?.ID) this.imageId = m.aux.ID;
    else if (m.status && /^sha256:[0-9a-f]{64}$/.test(m.status.trim())) this.imageId = m.status.trim();
    if (this.#mode === 'json' || this.#mode === 'quiet') return;

    if (m.stream !== undefined) {
      this.#resetLines();
      this.#write(m.stream);
      return;
    }
    if (m.status === undefined && m.progress === undefined && !m.progressDetail) return;
    const text = [m.id ? `${m.id}: ` : '', m.status ?? '', progressText(m) ? ` ${progressText(m)}` : ''].join('');
    if (this.#mode === 'plain') {
      const key = m.id ?? '';
      if (m.id && this.#lastStatus.get(key) === m.status) return;
      this.#lastStatus.set(key, m.status ?? '');
      this.#write(`${text}\n`);
      return;
    }
    if (!m.id) {
      this.#resetLines();
      this.#write(`${text}\n`);
      return;
    }
    const line = this.#lines.get(m.id);
    if (line === undefined) {
      this.#lines.set(m.id, this.#lines.size);
      this.#write(`${text}\n`);
      return;
    }
    // Up to the id's line, clear it, redraw, and back down to the bottom.
    const up = this.#lines.size - line;
    this.#write(`\x1b[${up}A\r\x1b[2K${text}\r\x1b[${up}B`);
  }

  /** Output that is not per-id ends the redrawable block (as Docker does). */
  #resetLines(): void {
    this.#lines = new Map();
  }

  /** What `--quiet` prints at the end. */
  finish(): void {
    if (this.#mode === 'quiet' && this.imageId) this.#write(`${this.imageId}\n`);
  }
}
