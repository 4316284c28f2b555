/**
 * Runs a helper program (runc, mount, mmdebstrap, ...) and collects its output.
 *
 * A failure is a `CommandError` with the same fields as a result plus the
 * reason (after execa): callers can print `stderr` or wrap it with context.
 */
import { spawn, type SpawnOptions } from 'node:child_process';

export interface CommandResult {
  command: string;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
}

export class CommandError extends Error {
  override name = 'CommandError';
  constructor(readonly result: CommandResult, options?: ErrorOptions) {
    const why = result.timedOut
      ? 'timed out'
      : result.signal
        ? `killed by ${result.signal}`
        : `exit code ${result.exitCode}`;
    const detail = lastLine(result.stderr) || lastLine(result.stdout);
    super(`Command failed: ${result.command}: ${why}${detail ? `: ${detail}` : ''}`, options);
  }
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string | Buffer;
  timeoutMs?: number;
  /** Resolve with the result instead of throwing on a non-zero exit. */
  reject?: boolean;
  signal?: AbortSignal;
}

export function lastLine(s: string): string {
  const lines = s.trim().split('\n');
  return (lines[lines.length - 1] ?? '').trim();
}

export function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
  const started = Date.now();
  const command = [file, ...args].join(' ');
  return new Promise((resolve, reject) => {
    const spawnOptions: SpawnOptions = {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    };
    if (options.signal) spawnOptions.signal = options.signal;
    let child;
    try {
      child = spawn(file, args, spawnOptions);
    } catch (e) {
      reject(e);
      return;
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = options.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, options.timeoutMs)
      : undefined;
    child.stdout?.on('data', (d: Buffer) => out.push(d));
    child.stderr?.on('data', (d: Buffer) => err.push(d));
    if (options.input !== undefined) child.stdin?.end(options.input);
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      const result: CommandResult = {
        command,
        exitCode: null,
        signal: null,
        stdout: '',
        stderr: e.code === 'ENOENT' ? `${file}: executable not found` : e.message,
        durationMs: Date.now() - started,
        timedOut,
      };
      reject(new CommandError(result, { cause: e }));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const result: CommandResult = {
        command,
        exitCode: code,
        signal,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
        durationMs: Date.now() - started,
        timedOut,
      };
      if ((code !== 0 || timedOut) && options.reject !== false) reject(new CommandError(result));
      else resolve(result);
    });
  });
}
