/**
 * Writing a tar with tar-stream's `pack()` into a stream, shared by layer
 * writing and image archives: back-pressure on entry sinks, and settling both
 * sides so the first real failure is reported (not the other side's teardown).
 */
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pack as tarPack, type Pack } from 'tar-stream';
import { errorMessage } from '../core/errors.js';

/** The part of tar-stream's entry sink (a streamx Writable) used here. */
export interface EntrySink {
  write(chunk: Buffer): boolean;
  end(): void;
  destroy(err?: Error): void;
  readonly destroyed: boolean;
  on(event: 'drain' | 'close' | 'error', fn: () => void): unknown;
  off(event: 'drain' | 'close' | 'error', fn: () => void): unknown;
}

/** Resolves once the sink can take more data (or is gone). */
export function drained(sink: Pick<EntrySink, 'on' | 'off'>): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      sink.off('drain', done);
      sink.off('close', done);
      resolve();
    };
    sink.on('drain', done);
    sink.on('close', done);
  });
}

/** An error that only says the stream was torn down because the other side failed. */
export function isStreamTeardown(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return (
    code === 'ERR_STREAM_PREMATURE_CLOSE' ||
    code === 'ERR_STREAM_DESTROYED' ||
    code === 'EPIPE' ||
    /premature|pack stream destroyed|tar entry destroyed|stream destroyed/i.test(errorMessage(e))
  );
}

export interface PackFailure {
  /** `fill` failed, or the output side did. */
  side: 'fill' | 'output';
  error: unknown;
}

/**
 * Runs `fill` against a pack piped into `out`. Returns null on success, else
 * the failure that came first (the writing side's own teardown never wins
 * over the output's error).
 */
export async function packInto(out: Writable, fill: (pk: Pack) => Promise<void>): Promise<PackFailure | null> {
  const pk = tarPack();
  const piping = pipeline(pk, out);
  let failure: unknown;
  let failed = false;
  try {
    await fill(pk);
    pk.finalize();
  } catch (e) {
    failed = true;
    failure = e;
    pk.destroy(e instanceof Error ? e : new Error(String(e)));
  }
  let pipeError: unknown;
  let pipeFailed = false;
  try {
    await piping;
  } catch (e) {
    pipeFailed = true;
    pipeError = e;
  }
  if (failed && !(pipeFailed && isStreamTeardown(failure))) return { side: 'fill', error: failure };
  return pipeFailed ? { side: 'output', error: pipeError } : null;
}
