/**
 * Reads the container log that conmon writes with `-l k8s-file:<path>`.
 *
 * Each record is `<RFC3339Nano time> <stdout|stderr> <tag> <bytes>\n`, where the
 * tag is `F` (the bytes were followed by a newline in the container's output)
 * or `P` (a fragment: conmon flushed without a newline, and the next record of
 * the same stream continues it). Fragments of stdout and stderr interleave, so
 * lines are reassembled per stream.
 */
import { watch, type FSWatcher } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

export type LogStream = 'stdout' | 'stderr';

export interface LogRecord {
  /** RFC3339Nano as written. */
  time: string;
  timeNs: bigint;
  stream: LogStream;
  partial: boolean;
  /** Without the trailing newline. */
  data: Buffer;
}

export interface ReadLogsOptions {
  stdout: boolean;
  stderr: boolean;
  /** Last N full lines; undefined = all. */
  tail?: number;
  sinceNs?: bigint;
  untilNs?: bigint;
  follow: boolean;
  timestamps: boolean;
  /** Stops following. */
  signal?: AbortSignal;
  /** When following: stop once the container has exited and the file is drained. */
  isRunning?: () => boolean;
}

const TIME_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;
const SEC = 1_000_000_000n;
const NL = 0x0a;
const BLOCK = 64 * 1024;
const POLL_MS = 250;
/** Once `tail` has N lines it reads on backwards only this far to find their leading fragments (normally adjacent). */
const PREFIX_SCAN_LIMIT = 1024 * 1024;
/** conmon splits output at a few KiB; a longer "record" is corruption, and carrying it along would cost O(size²). */
const MAX_RECORD = 1024 * 1024;

/** Nanoseconds since the epoch, or null. BigInt because a double loses the nanoseconds. */
export function parseTimestamp(s: string): bigint | null {
  const m = TIME_RE.exec(s);
  if (!m) return null;
  const [y, mo, d, h, mi, se] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, se);
  // Date.UTC rolls 2026-13-45 over into a later date instead of failing.
  const date = new Date(ms);
  if (Number.isNaN(ms) || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d || h > 23 || mi > 59 || se > 60) return null;
  const zone = m[8]!;
  const offsetSec = zone === 'Z' ? 0 : (zone[0] === '-' ? -1 : 1) * (+zone.slice(1, 3) * 3600 + +zone.slice(4, 6) * 60);
  return (BigInt(ms / 1000) - BigInt(offsetSec)) * SEC + BigInt((m[7] ?? '').padEnd(9, '0'));
}

/** Docker's `--timestamps` form: UTC with always nine fraction digits, so columns line up. */
export function formatTimestamp(ns: bigint): string {
  const frac = ((ns % SEC) + SEC) % SEC;
  const iso = new Date(Number((ns - frac) / SEC) * 1000).toISOString();
  return `${iso.slice(0, 19)}.${frac.toString().padStart(9, '0')}Z`;
}

export function parseLogLine(line: Buffer | string): LogRecord | null {
  let buf = typeof line === 'string' ? Buffer.from(line) : line;
  if (buf[buf.length - 1] === NL) buf = buf.subarray(0, buf.length - 1);
  const sp1 = buf.indexOf(0x20);
  const sp2 = sp1 < 0 ? -1 : buf.indexOf(0x20, sp1 + 1);
  if (sp2 < 0) return null;
  // An empty output line may come with or without the separating space.
  const sp3 = buf.indexOf(0x20, sp2 + 1);
  const time = buf.toString('latin1', 0, sp1);
  const stream = buf.toString('latin1', sp1 + 1, sp2);
  const tags = buf.toString('latin1', sp2 + 1, sp3 < 0 ? buf.length : sp3).split(':');
  if (stream !== 'stdout' && stream !== 'stderr') return null;
  const partial = tags.includes('P');
  const timeNs = parseTimestamp(time);
  if ((!partial && !tags.includes('F')) || timeNs === null) return null;
  return { time, timeNs, stream, partial, data: sp3 < 0 ? Buffer.alloc(0) : buf.subarray(sp3 + 1) };
}

/** A cursor on the log file that survives the file appearing late, being truncated or replaced (conmon's rotation). */
class LogFile {
  fh: FileHandle | null = null;
  offset = 0;
  #ino = -1;
  #leftover: Buffer = Buffer.alloc(0);
  #skipping = false;

  constructor(readonly path: string) {}

  /** Opens the file if it was not open or has been replaced or truncated; true if reading must restart at 0. */
  async refresh(): Promise<boolean> {
    const st = await stat(this.path).catch(() => null);
    if (!st || (this.fh && st.ino === this.#ino && st.size >= this.offset)) return false;
    if (!this.fh || st.ino !== this.#ino) {
      const fh = await open(this.path, 'r').catch(() => null);
      if (!fh) return false;
      await this.close();
      this.fh = fh;
      this.#ino = (await fh.stat()).ino;
    }
    this.offset = 0;
    this.#leftover = Buffer.alloc(0);
    this.#skipping = false;
    return true;
  }

  /** Whole records from the cursor to EOF, a block at a time; an unterminated last record waits for its newline. */
  async *batches(): AsyncGenerator<Buffer[]> {
    while (this.fh) {
      const chunk = Buffer.allocUnsafe(BLOCK);
      const { bytesRead } = await this.fh.read(chunk, 0, BLOCK, this.offset);
      if (bytesRead === 0) return;
      this.offset += bytesRead;
      let buf = Buffer.concat([this.#leftover, chunk.subarray(0, bytesRead)]);
      if (this.#skipping) {
        const nl = buf.indexOf(NL);
        if (nl < 0) continue;
        buf = buf.subarray(nl + 1);
        this.#skipping = false;
      }
      const lines: Buffer[] = [];
      let start = 0;
      for (let nl = buf.indexOf(NL); nl >= 0; nl = buf.indexOf(NL, start)) {
        lines.push(buf.subarray(start, nl));
        start = nl + 1;
      }
      this.#leftover = Buffer.from(buf.subarray(start));
      if (this.#leftover.length > MAX_RECORD) {
        this.#leftover = Buffer.alloc(0);
        this.#skipping = true;
      }
      if (lines.length) yield lines;
    }
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    await fh?.close().catch(() => {});
  }
}

/** Newline-terminated records, last first, with their offsets; bytes after the last newline are still being written. */
async function* recordsBackward(fh: FileHandle): AsyncGenerator<{ offset: number; line: Buffer }> {
  let pos = (await fh.stat()).size;
  let carry: Buffer = Buffer.alloc(0); // from `pos` up to and including the newline of a line that starts further back
  let seenNewline = false;
  while (pos > 0) {
    const size = Math.min(BLOCK, pos);
    pos -= size;
    const block = Buffer.alloc(size);
    await fh.read(block, 0, size, pos);
    let buf = Buffer.concat([block, carry]);
    if (!seenNewline) {
      const nl = buf.lastIndexOf(NL);
      if (nl < 0) continue; // carry stays empty: the unfinished record is dropped
      buf = buf.subarray(0, nl + 1);
      seenNewline = true;
    }
    let e = buf.length - 1; // the newline ending the next line to yield
    for (let s = e > 0 ? buf.lastIndexOf(NL, e - 1) : -1; s >= 0; s = e > 0 ? buf.lastIndexOf(NL, e - 1) : -1) {
      yield { offset: pos + s + 1, line: buf.subarray(s + 1, e) };
      e = s;
    }
    carry = buf.subarray(0, e + 1);
    if (carry.length > MAX_RECORD) return;
  }
  if (carry.length > 1) yield { offset: 0, line: carry.subarray(0, carry.length - 1) };
}

/** Offset from which a forward read holds the last `n` wanted full lines, including their leading fragments. */
async function tailStart(fh: FileHandle, n: number, want: (s: LogStream) => boolean): Promise<number> {
  let start = -1;
  let end = -1; // just after the last newline: where an unfinished record starts
  let counted = 0;
  let satisfiedAt = -1;
  // needPrefix[s]: the earliest included line of stream s may have fragments further back.
  const needPrefix = { stdout: false, stderr: false };
  const seen = { stdout: false, stderr: false };
  for await (const { offset, line } of recordsBackward(fh)) {
    if (end < 0) end = offset + line.length + 1;
    if (counted >= n && !needPrefix.stdout && !needPrefix.stderr) break;
    if (satisfiedAt >= 0 && satisfiedAt - offset > PREFIX_SCAN_LIMIT) break;
    const rec = parseLogLine(line);
    if (!rec || !want(rec.stream)) continue;
    const s = rec.stream;
    if (!rec.partial && counted < n) {
      counted++;
      start = offset;
      needPrefix[s] = true;
      if (counted === n) satisfiedAt = offset;
    } else if (!rec.partial) {
      needPrefix[s] = false; // ends an earlier, excluded line
    } else if (counted < n || needPrefix[s] || !seen[s]) {
      start = offset; // a fragment of an included line, or of a line not finished yet
      needPrefix[s] = true;
    }
    seen[s] = true;
  }
  return start >= 0 ? start : Math.max(end, 0);
}

/** Wakes a follower when the file changes; a poll covers missing inotify (limits, network filesystems). */
function changeNotifier(path: string, signal?: AbortSignal): { wait(): Promise<void>; close(): void } {
  let dirty = false;
  let wake: (() => void) | null = null;
  let watcher: FSWatcher | null = null;
  try {
    // The directory, not the file: that also reports the file's creation and replacement.
    watcher = watch(dirname(path), { persistent: false }, (_event, name) => {
      if (name === null || name === basename(path)) {
        dirty = true;
        wake?.();
      }
    });
    watcher.on('error', () => watcher?.close());
  } catch {
    // no such directory yet, or no inotify: polling alone
  }
  return {
    wait: () =>
      new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          wake = null;
          dirty = false;
          resolve();
        };
        const timer = setTimeout(done, dirty || signal?.aborted ? 0 : POLL_MS);
        signal?.addEventListener('abort', done);
        wake = done;
      }),
    close: () => watcher?.close(),
  };
}

interface Line {
  stream: LogStream;
  timeNs: bigint;
  data: Buffer;
  /** False for trailing fragments whose newline never came. */
  complete: boolean;
}

/**
 * Yields chunks ready to send to a client: the data of each full line plus
 * '\n', partial records joined with what follows; with timestamps each line is
 * prefixed "<RFC3339Nano timestamp> " like docker logs --timestamps.
 *
 * `tail` counts full lines of the selected streams and applies before
 * `sinceNs`/`untilNs`, as in docker; both bounds are inclusive and compare the
 * time of a line's first fragment.
 */
export async function* readLogs(path: string, options: ReadLogsOptions): AsyncGenerator<{ stream: LogStream; data: Buffer }> {
  const { signal, sinceNs, untilNs } = options;
  const want = (s: LogStream): boolean => (s === 'stdout' ? options.stdout : options.stderr);
  if ((!options.stdout && !options.stderr) || signal?.aborted) return;
  const pending: Record<LogStream, { timeNs: bigint; parts: Buffer[] } | null> = { stdout: null, stderr: null };

  const toLines = (records: Buffer[]): Line[] => {
    const out: Line[] = [];
    for (const raw of records) {
      const rec = parseLogLine(raw);
      if (!rec || !want(rec.stream)) continue;
      // Copy fragments: a small one must not keep a whole read block alive while it waits.
      const p = (pending[rec.stream] ??= { timeNs: rec.timeNs, parts: [] });
      p.parts.push(rec.partial ? Buffer.from(rec.data) : rec.data);
      if (rec.partial) continue;
      pending[rec.stream] = null;
      out.push({ stream: rec.stream, timeNs: p.timeNs, data: p.parts.length === 1 ? rec.data : Buffer.concat(p.parts), complete: true });
    }
    return out;
  };
  // Consecutive lines of one stream go out as one chunk: fewer frames for the client.
  function* chunks(lines: Line[]): Generator<{ stream: LogStream; data: Buffer }> {
    let parts: Buffer[] = [];
    let stream: LogStream = 'stdout';
    for (const l of lines) {
      if ((sinceNs !== undefined && l.timeNs < sinceNs) || (untilNs !== undefined && l.timeNs > untilNs)) continue;
      if (parts.length && (l.stream !== stream || parts.length > 1024)) {
        yield { stream, data: Buffer.concat(parts) };
        parts = [];
      }
      stream = l.stream;
      if (options.timestamps) parts.push(Buffer.from(`${formatTimestamp(l.timeNs)} `));
      parts.push(l.complete ? Buffer.concat([l.data, Buffer.from('\n')]) : l.data);
    }
    if (parts.length) yield { stream, data: Buffer.concat(parts) };
  }

  const file = new LogFile(path);
  const notifier = options.follow ? changeNotifier(path, signal) : null;
  try {
    await file.refresh();
    if (file.fh && options.tail !== undefined) {
      file.offset = await tailStart(file.fh, options.tail, want);
      // The region can hold a few more lines than asked for (see tailStart): keep the last ones.
      const lines: Line[] = [];
      for await (const batch of file.batches()) for (const l of toLines(batch)) lines.push(l);
      yield* chunks(options.tail > 0 ? lines.slice(-options.tail) : []);
    }
    let stopping = false;
    for (;;) {
      for await (const batch of file.batches()) {
        yield* chunks(toLines(batch));
        if (signal?.aborted) return;
      }
      if (await file.refresh()) continue; // the old file was drained above; go on with the new one
      if (!options.follow || stopping || signal?.aborted) break;
      // Exit is noticed before one last drain, so nothing written before the exit is missed.
      const expired = untilNs !== undefined && BigInt(Date.now()) * 1_000_000n > untilNs;
      if (expired || (options.isRunning && !options.isRunning())) stopping = true;
      else await notifier!.wait();
      if (signal?.aborted) return;
    }
    // What the container printed last without a newline is still output.
    const rest: Line[] = [];
    for (const s of ['stdout', 'stderr'] as const) {
      const p = pending[s];
      if (p) rest.push({ stream: s, timeNs: p.timeNs, data: Buffer.concat(p.parts), complete: false });
    }
    yield* chunks(rest);
  } finally {
    notifier?.close();
    await file.close();
  }
}
