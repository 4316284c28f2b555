/**
 * Detached helper processes (conmon) started with posix_spawn
 * (native/spawn.c) instead of child_process.spawn, whose fork(2) costs
 * milliseconds of main-thread time at the daemon's heap size on every
 * container start and exec.
 *
 * Pipes are created here; the parent's ends come back as net.Sockets. The
 * direct child is reaped by polling waitpid(WNOHANG) with a back-off: conmon's
 * first process exits as soon as it has daemonized, so the first polls find it.
 */
import { closeSync } from 'node:fs';
import net from 'node:net';
import { pipe, reap, spawnProcess, spawnProcessAsync } from '../native/native.js';

/**
 * Per child descriptor: none (/dev/null), a pipe the child writes to, or one
 * it reads from. The `…Fd` kinds hand the parent its end as a plain
 * descriptor instead of a stream (non-blocking for `fromChildFd`): for pipes
 * used once or only when something failed, a stream costs more than the use.
 */
export type StdioSpec = 'ignore' | 'fromChild' | 'toChild' | 'fromChildFd' | 'toChildFd';

export interface DetachedChild {
  pid: number;
  /** The parent's end of each stream pipe, indexed by the child's descriptor (null for the other kinds). */
  pipes: Array<net.Socket | null>;
  /** The parent's end of each `…Fd` pipe, indexed by the child's descriptor (null for the other kinds); the caller closes them. */
  fds: Array<number | null>;
  /** The direct child's exit code (128 + signal when killed); polled on unref'd timers, so it does not keep the process alive. */
  exited: Promise<number>;
  /** Whether the direct child still runs, checked now (reaping it if it ended). */
  running(): boolean;
}

export interface DetachedSpawnOptions {
  /** The child's environment, as variables or as a ready list of `NAME=value` entries. */
  env: NodeJS.ProcessEnv | readonly string[];
  cwd: string;
  stdio: StdioSpec[];
}

const MAX_REAP_DELAY_MS = 100;

/** Reaps `pid` by polling waitpid(WNOHANG) with a back-off; `check()` polls once now. */
function reaper(pid: number): { exited: Promise<number>; check(): boolean } {
  let done = false;
  let settle!: (code: number) => void;
  const exited = new Promise<number>((resolve) => (settle = resolve));
  const check = (): boolean => {
    if (done) return false;
    let code: number | null;
    try {
      code = reap(pid);
    } catch {
      code = 255; // ECHILD: nothing left to wait for
    }
    if (code === null) return true;
    done = true;
    settle(code);
    return false;
  };
  let delay = 1;
  const poll = () => {
    if (!check()) return;
    delay = Math.min(delay * 2, MAX_REAP_DELAY_MS);
    setTimeout(poll, delay).unref();
  };
  setTimeout(poll, delay).unref();
  return { exited, check };
}

/** `NAME=value` entries of an environment, as execve(2) takes them. */
export function environList(env: NodeJS.ProcessEnv): string[] {
  return Object.entries(env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]));
}

/** The pipes of `o.stdio`: the child's descriptors to pass, the parent's ends, and the child's ends to close once passed. */
function openPipes(o: DetachedSpawnOptions): { childFds: number[]; parentFds: Array<number | null>; childEnds: number[] } {
  const childFds: number[] = [];
  const parentFds: Array<number | null> = [];
  const childEnds: number[] = [];
  try {
    for (const s of o.stdio) {
      if (s === 'ignore') {
        childFds.push(-1);
        parentFds.push(null);
        continue;
      }
      const fromChild = s === 'fromChild' || s === 'fromChildFd';
      const [r, w] = pipe(s === 'fromChildFd');
      const [mine, theirs] = fromChild ? [r, w] : [w, r];
      parentFds.push(mine);
      childEnds.push(theirs);
      childFds.push(theirs);
    }
  } catch (e) {
    for (const fd of [...parentFds, ...childEnds]) if (fd !== null) closeSync(fd);
    throw e;
  }
  return { childFds, parentFds, childEnds };
}

/** Spawns with `spawn`, then hands back the parent's ends (streams or descriptors). */
function launch<P>(file: string, args: string[], o: DetachedSpawnOptions, spawn: (argv: string[], env: string[], fds: number[]) => P) {
  const { childFds, parentFds, childEnds } = openPipes(o);
  let pid: P;
  try {
    const env = Array.isArray(o.env) ? o.env : environList(o.env as NodeJS.ProcessEnv);
    pid = spawn([file, ...args], env, childFds);
  } catch (e) {
    for (const fd of parentFds) if (fd !== null) closeSync(fd);
    throw e;
  } finally {
    for (const fd of childEnds) closeSync(fd);
  }
  const stream = (i: number) => o.stdio[i] === 'fromChild' || o.stdio[i] === 'toChild';
  const pipes = parentFds.map((fd, i) =>
    fd === null || !stream(i) ? null : new net.Socket({ fd, readable: o.stdio[i] === 'fromChild', writable: o.stdio[i] === 'toChild' }),
  );
  const fds = parentFds.map((fd, i) => (fd === null || stream(i) ? null : fd));
  return { pid, pipes, fds };
}

export function spawnDetached(file: string, args: string[], o: DetachedSpawnOptions): DetachedChild {
  const { pid, pipes, fds } = launch(file, args, o, (argv, env, childFds) => spawnProcess(file, argv, env, o.cwd, childFds));
  const r = reaper(pid);
  return { pid, pipes, fds, exited: r.exited, running: r.check };
}

export interface BackgroundChild extends Omit<DetachedChild, 'pid'> {
  /** Once the child has exec'd; rejects when it could not be started (then `exited` gives 127). */
  pid: Promise<number>;
}

/**
 * `spawnDetached`, with the spawn itself on a thread-pool thread: the pipes
 * are there at once (a write to the child's waits in the pipe), the pid comes
 * later. For spawns on a request's path, where the event loop has other
 * clients to answer meanwhile.
 */
export function spawnDetachedInBackground(file: string, args: string[], o: DetachedSpawnOptions): BackgroundChild {
  const { pid, pipes, fds } = launch(file, args, o, (argv, env, childFds) => spawnProcessAsync(file, argv, env, o.cwd, childFds));
  let r: ReturnType<typeof reaper> | null = null;
  let failed = false;
  const exited = pid.then(
    (p) => (r = reaper(p)).exited,
    () => {
      failed = true;
      return 127;
    },
  );
  return { pid, pipes, fds, exited, running: () => (r ? r.check() : !failed) };
}
