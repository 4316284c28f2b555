/**
 * A thin wrapper over an OCI runtime binary (runc or crun). It keeps no state:
 * the runtime's own state lives under `root`, one directory per daemon, so
 * two daemons never see each other's containers.
 */
import { constants, existsSync, openSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { CommandError, run, type CommandResult } from '../core/exec.js';
import { FailedPreconditionError, InternalError, UnavailableError } from '../core/errors.js';

export interface RuntimeState {
  id: string;
  pid: number;
  status: 'creating' | 'created' | 'running' | 'paused' | 'stopped';
}

export class OciRuntime {
  constructor(
    readonly name: string,
    readonly binary: string,
    readonly root: string,
  ) {}

  /** Resolves a runtime name or path (`runc`, `crun`, `/usr/sbin/runc`) on PATH. */
  static resolve(nameOrPath: string, root: string): OciRuntime {
    const name = path.basename(nameOrPath);
    if (nameOrPath.includes('/')) return new OciRuntime(name, nameOrPath, root);
    for (const dir of (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
      const p = path.join(dir, nameOrPath);
      if (existsSync(p)) return new OciRuntime(name, p, root);
    }
    return new OciRuntime(name, nameOrPath, root);
  }

  /** Throws a one-line error when the runtime binary cannot be executed. */
  check(): void {
    if (!existsSync(this.binary)) {
      throw new UnavailableError(`OCI runtime not found: ${this.binary}: install it (npm run setup) or pick another with --runtime`);
    }
  }

  private async exec(args: string[], timeoutMs = 30_000): Promise<CommandResult> {
    this.check();
    try {
      return await run(this.binary, ['--root', this.root, ...args], { timeoutMs });
    } catch (e) {
      if (e instanceof CommandError) {
        const msg = e.result.stderr.trim().split('\n').pop() ?? '';
        throw new InternalError(`${this.name} ${args[0]} failed: ${cleanRuntimeMessage(msg) || e.message}`, { cause: e });
      }
      throw e;
    }
  }

  async state(id: string): Promise<RuntimeState | null> {
    this.check();
    const r = await run(this.binary, ['--root', this.root, 'state', id], { reject: false, timeoutMs: 10_000 });
    if (r.exitCode !== 0) return null;
    const s = JSON.parse(r.stdout) as { id: string; pid: number; status: RuntimeState['status'] };
    return { id: s.id, pid: s.pid, status: s.status };
  }

  async start(id: string): Promise<void> {
    if (await this.#startThroughFifo(id)) return;
    await this.exec(['start', id]);
  }

  /**
   * `runc start` only reads the container's exec fifo (which lets the waiting
   * init exec the user's process) and removes it; doing that here saves a
   * runtime process per start. Anything unexpected falls back to `runc start`,
   * which also gives the proper error message.
   *
   * The read side is opened without blocking (a blocking open waits for the
   * init's write side, on a thread-pool thread that stays blocked for good if
   * the init dies and the fifo is removed meanwhile) and watched on the event
   * loop: the init's byte arrives once it has opened its end.
   */
  async #startThroughFifo(id: string): Promise<boolean> {
    const fifo = path.join(this.root, id, 'exec.fifo');
    if (this.name !== 'runc' || !existsSync(fifo)) return false;
    let fd: number;
    try {
      fd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch {
      return false;
    }
    const reader = new net.Socket({ fd, readable: true, writable: false });
    return new Promise<boolean>((resolve) => {
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        reader.removeAllListeners('data');
        reader.destroy();
        if (ok) rmSync(fifo, { force: true });
        resolve(ok);
      };
      // An init that never opens its end (it died): `runc start` says why.
      const timer = setTimeout(() => finish(false), 2000);
      reader.once('data', () => finish(true));
      // The init closed its end without writing.
      reader.once('end', () => finish(false));
      reader.once('error', () => finish(false));
    });
  }

  async kill(id: string, signal: string, all = false): Promise<void> {
    try {
      await this.exec(['kill', ...(all ? ['--all'] : []), id, signal]);
    } catch (e) {
      if (/not running|container not running|process already finished|no such process/i.test(String((e as Error).message))) {
        throw new FailedPreconditionError(`Container ${id.slice(0, 12)} is not running`, { cause: e });
      }
      throw e;
    }
  }

  async pause(id: string): Promise<void> {
    await this.exec(['pause', id]);
  }

  async resume(id: string): Promise<void> {
    await this.exec(['resume', id]);
  }

  /** Removes runtime state and the container's cgroup; idempotent. */
  async delete(id: string): Promise<void> {
    const r = await run(this.binary, ['--root', this.root, 'delete', '--force', id], { reject: false, timeoutMs: 30_000 }).catch(
      () => null,
    );
    if (r && r.exitCode !== 0 && !/does not exist|not found/i.test(r.stderr)) {
      throw new InternalError(`${this.name} delete failed: ${cleanRuntimeMessage(r.stderr.trim())}`);
    }
  }

  /** Runs a process in the container and collects its output (health checks). */
  async execCapture(
    id: string,
    processSpecPath: string,
    timeoutMs: number,
  ): Promise<{ exitCode: number; output: string; timedOut: boolean }> {
    this.check();
    const r = await run(this.binary, ['--root', this.root, 'exec', '--process', processSpecPath, id], {
      reject: false,
      timeoutMs,
    });
    return {
      exitCode: r.timedOut ? -1 : (r.exitCode ?? 128 + 9),
      output: (r.stdout + r.stderr).slice(-4096),
      timedOut: r.timedOut,
    };
  }
}

/** runc prints logfmt-ish lines (`time=... level=error msg="..."`); keep the message. */
export function cleanRuntimeMessage(line: string): string {
  const last = line.trim().split('\n').pop() ?? '';
  const m = /msg="((?:[^"\\]|\\.)*)"/.exec(last);
  return (m ? m[1]!.replace(/\\"/g, '"') : last).trim();
}
