/**
 * Starting conmon, the per-container monitor (Debian package `conmon`).
 *
 * conmon runs `<runtime> create` (or `exec`), keeps the container's stdio,
 * writes its log (k8s-file format), serves an attach socket
 * (`<bundle>/attach`, SOCK_SEQPACKET) and a control fifo (`<bundle>/ctl`), and
 * records the exit code in `<exitDir>/<id>` (and `oom` in the persist dir).
 * It double-forks, so containers outlive the daemon; there is no Node process
 * per container.
 *
 * The daemon talks to it over pipes given by environment variables:
 * `_OCI_SYNCPIPE` carries newline-delimited JSON `{"data": N, "message"?}`
 * (the container pid, or -1 and an error; for exec sessions later the exit
 * code); `_OCI_ATTACHPIPE`/`_OCI_STARTPIPE` sequence exec attach.
 */
import { closeSync, existsSync, readSync, unlinkSync, writeSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { spawnDetached, spawnDetachedInBackground, type StdioSpec } from '../core/detached-spawn.js';
import { InternalError, UnavailableError } from '../core/errors.js';
import type { ContainerRecord } from './model.js';
import { containerPaths, type DaemonPaths } from './paths.js';
import { cleanRuntimeMessage, type OciRuntime } from './runtime.js';

export const CONMON = process.env.VESSEL_CONMON ?? '/usr/bin/conmon';

/** How long a start waits for conmon's spawn on the thread pool before it gives up. */
const SPAWN_TIMEOUT_MS = 30_000;

export interface ConmonCommon {
  id: string;
  /** Unique per session: the container id, or the exec id. */
  uuid: string;
  name: string;
  bundle: string;
  exitDir: string;
  socketDir: string;
  logPath: string;
  persistDir: string;
  terminal: boolean;
  stdin: boolean;
  /** Keep the container's stdin open when an attached client goes away. */
  leaveStdinOpen?: boolean;
  runtime: OciRuntime;
}

function commonArgs(o: ConmonCommon): string[] {
  const args = [
    '--api-version', '1',
    '-c', o.id,
    '-u', o.uuid,
    '-r', o.runtime.binary,
    '-b', o.bundle,
    '-n', o.name,
    '--exit-dir', o.exitDir,
    '--socket-dir-path', o.socketDir,
    '--full-attach',
    '-l', `k8s-file:${o.logPath}`,
    '--log-level', 'error',
    // No fsync of the log when the container exits (Docker's json-file logger
    // does not sync either): it sat between the exit and the exit file.
    '--no-sync-log',
    '--syslog',
    '-0', o.persistDir,
    '--runtime-arg', `--root=${o.runtime.root}`,
  ];
  if (o.terminal) args.push('-t');
  if (o.stdin) args.push('-i');
  if (o.leaveStdinOpen) args.push('--leave-stdin-open');
  return args;
}

function checkBinaries(runtime: OciRuntime): void {
  if (!existsSync(CONMON)) throw new UnavailableError(`conmon not found at ${CONMON}: run npm run setup`);
  runtime.check();
}

/** Reads newline-delimited JSON messages from a pipe. */
export class SyncReader {
  #buf = '';
  #queue: Array<{ data: number; message?: string }> = [];
  #waiters: Array<(m: { data: number; message?: string } | null) => void> = [];
  #ended = false;

  constructor(stream: Readable) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      this.#buf += chunk;
      let nl;
      while ((nl = this.#buf.indexOf('\n')) >= 0) {
        const line = this.#buf.slice(0, nl).trim();
        this.#buf = this.#buf.slice(nl + 1);
        if (!line) continue;
        try {
          this.#push(JSON.parse(line) as { data: number; message?: string });
        } catch {
          /* ignore malformed lines */
        }
      }
    });
    const end = () => {
      this.#ended = true;
      for (const w of this.#waiters.splice(0)) w(null);
    };
    stream.on('end', end);
    stream.on('close', end);
    stream.on('error', end);
  }

  #push(m: { data: number; message?: string }): void {
    const w = this.#waiters.shift();
    if (w) w(m);
    else this.#queue.push(m);
  }

  /** The next message, or null when the pipe closed first. */
  next(timeoutMs: number): Promise<{ data: number; message?: string } | null> {
    const m = this.#queue.shift();
    if (m) return Promise.resolve(m);
    if (this.#ended) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const t = Number.isFinite(timeoutMs)
        ? setTimeout(() => reject(new InternalError('Timed out waiting for conmon')), timeoutMs)
        : undefined;
      this.#waiters.push((v) => {
        if (t) clearTimeout(t);
        resolve(v);
      });
    });
  }
}

interface ConmonProcess {
  /** Resolves once conmon runs; rejects when it could not be started. */
  spawned: Promise<number>;
  /** SIGKILL once spawned; resolves when sent (or when there was nothing to kill). */
  kill(): Promise<void>;
  running(): boolean;
  sync: Readable;
  attach: Readable | null;
  /** conmon's stderr: a stream, or with `fds` a non-blocking descriptor (read when something failed). */
  stderr: Readable | number;
  /** The start pipe: a stream, or with `fds` a descriptor (one byte is all it ever carries). */
  start: Writable | number | null;
}

/**
 * conmon's environment, which it passes on to the runtime: the daemon's PATH
 * (and TZ, which its log timestamps follow), nothing else. Without any locale
 * variable conmon's setlocale() stays in the C locale instead of reading a
 * couple of dozen locale files on every container start.
 */
function conmonEnviron(extra: string[]): string[] {
  const env = [`PATH=${process.env.PATH || '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'}`];
  if (process.env.TZ) env.push(`TZ=${process.env.TZ}`);
  return [...env, ...extra];
}

/**
 * conmon with its sync pipe (fd 3) and, as asked, an attach pipe and a start
 * pipe on the next descriptors. `fds`: stderr and the start pipe as plain
 * descriptors rather than streams (a container's create, on every start).
 */
function spawnConmon(args: string[], cwd: string, want: { attach: boolean; start: boolean; fds?: boolean; background?: boolean }): ConmonProcess {
  const extra = ['_OCI_SYNCPIPE=3'];
  const stdio: StdioSpec[] = ['ignore', 'ignore', want.fds ? 'fromChildFd' : 'fromChild', 'fromChild'];
  if (want.attach) {
    extra.push(`_OCI_ATTACHPIPE=${stdio.length}`);
    stdio.push('fromChild');
  }
  const startAt = stdio.length;
  if (want.start) {
    extra.push(`_OCI_STARTPIPE=${startAt}`);
    stdio.push(want.fds ? 'toChildFd' : 'toChild');
  }
  const env = conmonEnviron(extra);
  // conmon writes stray files (an `oom` marker) into its working directory: keep them in the bundle.
  const o = { env, cwd, stdio };
  const child = want.background ? spawnDetachedInBackground(CONMON, args, o) : spawnDetached(CONMON, args, o);
  const spawned = Promise.resolve(child.pid);
  const at = (i: number) => child.pipes[i] ?? child.fds[i] ?? null;
  return {
    spawned,
    kill: () =>
      spawned.then(
        (pid) => {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* already gone */
          }
        },
        () => {},
      ),
    running: child.running,
    stderr: at(2)!,
    sync: child.pipes[3]!,
    attach: want.attach ? child.pipes[4]! : null,
    start: want.start ? at(startAt) : null,
  };
}

/** What a non-blocking descriptor holds right now (conmon's stderr after a failure). */
function readAvailable(fd: number): string {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(4096);
  try {
    for (let n; (n = readSync(fd, buf)) > 0 && chunks.length < 16; ) chunks.push(Buffer.from(buf.subarray(0, n)));
  } catch {
    /* EAGAIN: nothing more for now */
  }
  return Buffer.concat(chunks).toString('utf8');
}

export interface PendingCreate {
  /** Lets conmon run `<runtime> create`; resolves with the container's init pid. */
  go(): Promise<{ pid: number }>;
  /** Kills conmon before it started anything (the bundle could not be made). */
  abort(): void;
  /** Whether conmon still waits for go() (not killed meanwhile). */
  waiting(): boolean;
}

/** conmon's options for a container's create: everything follows from the record, the daemon's paths and the runtime. */
export function monitorOptions(c: ContainerRecord, paths: DaemonPaths, runtime: OciRuntime): ConmonCommon & { pidFile: string; conmonPidFile: string } {
  const p = containerPaths(paths, c.id);
  return {
    id: c.id,
    uuid: c.id,
    name: c.name,
    bundle: p.bundle,
    exitDir: paths.exits,
    socketDir: paths.sockets,
    logPath: p.log,
    persistDir: p.persist,
    terminal: !!c.spec.Config.Tty,
    stdin: !!c.spec.Config.OpenStdin,
    leaveStdinOpen: !!c.spec.Config.OpenStdin && !c.spec.Config.StdinOnce,
    runtime,
    pidFile: p.pidFile,
    conmonPidFile: p.conmonPidFile,
  };
}

/**
 * Starts conmon for a container whose bundle is still being prepared: conmon
 * loads and parses its arguments, then blocks on its start pipe before doing
 * anything else, so that work overlaps the bundle's. `go()` once config.json
 * and the root filesystem are in place.
 */
export function conmonCreate(o: ConmonCommon & { pidFile: string; conmonPidFile: string }): PendingCreate {
  checkBinaries(o.runtime);
  const args = [...commonArgs(o), '-p', o.pidFile, '-P', o.conmonPidFile];
  // Spawned on a thread-pool thread: the daemon answers other requests while conmon execs.
  const child = spawnConmon(args, o.bundle, { attach: false, start: true, fds: true, background: true });
  const sync = new SyncReader(child.sync);
  const own = [child.stderr as number, child.start as number];
  const closeFds = () => {
    for (const fd of own.splice(0)) closeSync(fd);
  };
  const close = () => {
    child.sync.destroy();
    closeFds();
  };
  return {
    async go() {
      let msg: Awaited<ReturnType<SyncReader['next']>> = null;
      let stderr = '';
      let state: 'up' | 'failed' | 'late' = 'late';
      let timer: NodeJS.Timeout | undefined;
      try {
        const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), SPAWN_TIMEOUT_MS)));
        state = await Promise.race([
          child.spawned.then(
            () => 'up' as const,
            (e: Error) => ((stderr = `conmon could not be started: ${e.message}`), 'failed' as const),
          ),
          late,
        ]);
        if (state === 'late') stderr = `conmon was not started within ${SPAWN_TIMEOUT_MS / 1000} s`;
        if (state === 'up') {
          // Anything read, even EOF, lets conmon go on: only a write is a go-ahead.
          try {
            writeSync(child.start as number, '0');
          } catch {
            /* conmon is gone: its sync pipe tells */
          }
          msg = await sync.next(60_000);
          if (!msg || msg.data < 0) stderr = readAvailable(child.stderr as number);
        }
      } finally {
        clearTimeout(timer);
        // One that is still to come is killed before its start pipe closes (an end of file is a go-ahead).
        if (state === 'late') void child.kill().finally(close);
        else close();
        // conmon read runc's pid file before it reported: the file has served.
        try {
          unlinkSync(o.pidFile);
        } catch {
          /* not written (a failed create) */
        }
      }
      if (!msg || msg.data < 0) {
        const detail = cleanRuntimeMessage(msg?.message ?? stderr) || 'conmon exited without reporting the container';
        throw new InternalError(`Failed to create container: ${detail}`);
      }
      return { pid: msg.data };
    },
    abort() {
      // Killed while it waits on the start pipe: it has not forked or started the runtime yet.
      // The start pipe stays open until then: conmon takes its end of file as a go-ahead.
      void child.kill().finally(close);
    },
    waiting: () => child.running(),
  };
}

export interface ExecSession {
  /** Resolves once conmon's attach socket is ready (before the process starts). */
  attachReady: Promise<void>;
  /** Lets the process start (after the caller attached). */
  start(): void;
  /** The exec'd process's host pid. */
  pid: Promise<number>;
  /** The exit code once the process ended. */
  exitCode: Promise<number>;
}

/** Runs a process in a running container through conmon, with an attach socket. */
export function conmonExec(o: ConmonCommon & { processSpecPath: string }): ExecSession {
  checkBinaries(o.runtime);
  // Each session needs its own pid file; conmon's default is shared by all execs of a container.
  const args = [...commonArgs(o), '-p', `${o.bundle}/pid`, '--exec', '--exec-attach', '--exec-process-spec', o.processSpecPath];
  const child = spawnConmon(args, o.bundle, { attach: true, start: true });
  const stderrPipe = child.stderr as Readable;
  const stderr: string[] = [];
  stderrPipe.setEncoding('utf8').on('data', (d: string) => stderr.push(d));
  const sync = new SyncReader(child.sync);
  const attach = new SyncReader(child.attach!);
  const startPipe = child.start as Writable;
  startPipe.on('error', () => {});
  // conmon blocks on a first read of the start pipe before doing anything.
  startPipe.write('0');
  const attachReady = attach.next(30_000).then((m) => {
    if (!m) throw new InternalError(`Exec failed: ${stderr.join('').trim() || 'conmon exited early'}`);
  });
  const pid = sync.next(60_000).then((m) => {
    if (!m || m.data < 0) {
      throw new InternalError(`Exec failed: ${cleanRuntimeMessage(m?.message ?? stderr.join('')) || 'conmon exited early'}`);
    }
    return m.data;
  });
  const exitCode = pid.then(async () => {
    const m = await sync.next(Infinity);
    for (const p of [child.sync, child.attach!, startPipe, stderrPipe]) p.destroy();
    return m ? m.data : 255;
  });
  pid.catch(() => {});
  exitCode.catch(() => {});
  return {
    attachReady,
    start: () => startPipe.end('1'),
    pid,
    exitCode,
  };
}
