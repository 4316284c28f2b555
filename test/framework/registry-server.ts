/**
 * `RegistryProcess`: a real `vessel registry serve` child process on
 * 127.0.0.1 with an ephemeral port, for interoperability tests with real
 * registry clients (skopeo).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CliResult } from './daemon.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const VESSEL = path.join(REPO, 'bin', 'vessel');

/** Runs `vessel ARGS` to completion (no daemon involved). */
export function vessel(args: string[]): CliResult {
  const r = spawnSync(process.execPath, [VESSEL, ...args], { encoding: 'utf8', timeout: 120_000 });
  if (r.error) throw r.error;
  return { code: r.status ?? 255, stdout: r.stdout, stderr: r.stderr };
}

export class RegistryProcess {
  #child: ChildProcess | undefined;
  #stderr = '';
  /** `127.0.0.1:PORT`, known once started. */
  host = '';

  constructor(
    readonly root: string,
    readonly extraArgs: string[] = [],
  ) {}

  get stderr(): string {
    return this.#stderr;
  }

  async start(): Promise<void> {
    const child = spawn(process.execPath, [VESSEL, 'registry', 'serve', '--addr', '127.0.0.1:0', '--root', this.root, ...this.extraArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child = child;
    child.stderr?.on('data', (d: Buffer) => (this.#stderr += d.toString()));
    this.host = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`registry did not start within 20 s; stderr: ${this.#stderr}`)), 20_000);
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /Listening on (127\.0\.0\.1:\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1] as string);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`registry exited with ${code} before listening; stderr: ${this.#stderr}`));
      });
    });
  }

  get url(): string {
    return `http://${this.host}`;
  }

  /** Sends `signal` and resolves to the exit code (null when killed by the signal). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }
}
