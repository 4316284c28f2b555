/**
 * Typed wrapper around the `vessel_native` Node-API addon (native/vessel_native.c):
 * mount(2), umount2(2), mknod(2), l{set,get}xattr(2), posix_spawn(3) and an
 * AF_UNIX SOCK_SEQPACKET client socket integrated with the event loop.
 *
 * The addon is loaded lazily on first use, so importing this module never fails;
 * calling into it without a built addon throws
 * `Vessel native addon not built: run npm ci`.
 *
 * All system-call failures throw an Error shaped like Node's own: `.code` is the
 * errno name (`'EINVAL'`), `.errno` the negated number, `.syscall` and `.path` are set,
 * and the message reads `mount /the/target: Invalid argument`.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ADDON_FILE = 'vessel_native.node';
const NOT_BUILT = 'Vessel native addon not built: run npm ci';

interface NativeSocket {
  write(msg: Buffer | Uint8Array): boolean;
  shutdownWrite(): void;
  close(): void;
  setRef(on: boolean): void;
}

interface Addon {
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): void;
  umount(target: string, flags?: number): void;
  umountAsync(target: string, flags?: number): Promise<void>;
  mknod(path: string, mode: number, major: number, minor: number): void;
  setxattr(path: string, name: string, value: Buffer | Uint8Array | string): void;
  getxattr(path: string, name: string): Buffer | null;
  MS: Record<string, number>;
  MNT_DETACH: number;
  S_IFCHR: number;
  SeqpacketSocket: new (path: string, owner: object) => NativeSocket;
  spawn(file: string, argv: string[], env: string[], cwd: string, fds: number[]): number;
  spawnAsync(file: string, argv: string[], env: string[], cwd: string, fds: number[]): Promise<number>;
  reap(pid: number): number | null;
  pipe(nonblockingRead?: boolean): [number, number];
  watchExit(pid: number, onExit: () => void): boolean;
  removeTree(path: string): Promise<void>;
  rmdirAll(paths: string): Promise<void>;
}

/**
 * Finds `build/Release/vessel_native.node` beside the nearest package.json above this
 * module, which works both from `src/native/` and from the compiled `dist/src/native/`.
 */
export function findAddonPath(from: string = dirname(fileURLToPath(import.meta.url))): string | null {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) {
      for (const config of ['Release', 'Debug']) {
        const candidate = join(dir, 'build', config, ADDON_FILE);
        if (existsSync(candidate)) return candidate;
      }
    }
    if (dirname(dir) === dir) return null;
  }
}

let cached: Addon | undefined;

function addon(): Addon {
  if (cached) return cached;
  const path = findAddonPath();
  if (!path) throw new Error(NOT_BUILT);
  try {
    cached = createRequire(import.meta.url)(path) as Addon;
  } catch (err) {
    const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new Error(`${NOT_BUILT} (${path}: ${why})`, { cause: err });
  }
  return cached;
}

/**
 * mount(2) flag bits (linux/mount.h). These are kernel ABI constants, kept here so the
 * values are usable without loading the addon; the tests check them against the C headers.
 */
export const MS = Object.freeze({
  RDONLY: 1,
  NOSUID: 2,
  NODEV: 4,
  NOEXEC: 8,
  REMOUNT: 32,
  NOATIME: 1024,
  BIND: 4096,
  MOVE: 8192,
  REC: 16384,
  UNBINDABLE: 1 << 17,
  PRIVATE: 1 << 18,
  SLAVE: 1 << 19,
  SHARED: 1 << 20,
  RELATIME: 1 << 21,
  STRICTATIME: 1 << 24,
});

/** umount2(2) flag: lazy unmount (detach now, clean up when no longer busy). */
export const MNT_DETACH = 2;

/** Character-device file type bits for mknod's mode. */
export const S_IFCHR = 0o020000;

/** mount(2). flags is the numeric MS_* mask; source may be null for propagation changes. */
export function mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): void {
  addon().mount(source, target, fstype, flags, data);
}

/** umount2(2). EINVAL (not a mount point) and ENOENT are thrown too; the caller decides. */
export function umount(target: string, flags = 0): void {
  addon().umount(target, flags);
}

/**
 * posix_spawn(3) of a detached process (new session, default signal
 * dispositions, empty mask) without forking the caller: `fds[i]` becomes the
 * child's descriptor i (-1: /dev/null). Returns the pid; the caller reaps it
 * with `reap`.
 */
export function spawnProcess(file: string, argv: string[], env: string[], cwd: string, fds: number[]): number {
  return addon().spawn(file, argv, env, cwd, fds);
}

/**
 * `spawnProcess` on a thread-pool thread: the calling thread is not held
 * while the child execs (half a millisecond or more, longer on a busy host).
 * The caller may close its copies of `fds` as soon as this returns.
 */
export function spawnProcessAsync(file: string, argv: string[], env: string[], cwd: string, fds: number[]): Promise<number> {
  return addon().spawnAsync(file, argv, env, cwd, fds);
}

/** waitpid(pid, WNOHANG): the exit code (128 + signal when killed), or null while it runs. */
export function reap(pid: number): number | null {
  return addon().reap(pid);
}

/**
 * Calls `onExit` once process `pid` (any process, not only a child) has
 * exited, through a pidfd polled on the event loop (without keeping the loop
 * alive). False, and `onExit` is never called, when the process is already
 * gone or the kernel has no pidfds (before 5.3).
 */
export function watchExit(pid: number, onExit: () => void): boolean {
  return addon().watchExit(pid, onExit);
}

/** pipe2(O_CLOEXEC): [read end, write end]; `nonblockingRead` makes the read end O_NONBLOCK. */
export function pipe(nonblockingRead = false): [number, number] {
  return addon().pipe(nonblockingRead);
}

/** umount2(2) on a thread-pool thread, so it can overlap other work; rejects like `umount` throws. */
export function umountAsync(target: string, flags = 0): Promise<void> {
  return addon().umountAsync(target, flags);
}

/**
 * Deletes a directory tree on a thread-pool thread (nftw). It never follows
 * symbolic links and never enters another file system: a mount left below
 * stays, and the removal then rejects.
 */
export function removeTree(path: string): Promise<void> {
  return addon().removeTree(path);
}

/**
 * rmdir(2) of each of `paths` in one thread-pool job; missing ones count as
 * removed. Rejects with the first other failure (the rest are still tried).
 */
export function rmdirAll(paths: readonly string[]): Promise<void> {
  if (paths.some((p) => p.includes('\n'))) return Promise.reject(new TypeError('rmdirAll: a path contains a newline'));
  return addon().rmdirAll(paths.join('\n'));
}

/** mknod(2); mode includes the file type bits, e.g. `S_IFCHR | 0o000` for an overlayfs whiteout. */
export function mknod(path: string, mode: number, major: number, minor: number): void {
  addon().mknod(path, mode, major, minor);
}

/** lsetxattr(2): create or replace. Strings are stored as UTF-8 without a terminator. */
export function setxattr(path: string, name: string, value: Buffer | string): void {
  addon().setxattr(path, name, value);
}

/** lgetxattr(2); null when the attribute is absent (ENODATA). */
export function getxattr(path: string, name: string): Buffer | null {
  return addon().getxattr(path, name);
}

/**
 * A connected AF_UNIX SOCK_SEQPACKET client. Reads are driven by a uv_poll handle on
 * the main loop (no threadpool); every received datagram is delivered whole.
 *
 * While open it keeps the event loop alive (like net.Socket) unless unref()'d.
 * Messages that arrive while `onMessage` is null are discarded; set it right
 * after connect() (delivery never happens before the current tick ends).
 */
export class SeqpacketSocket {
  /** Called once per received message (a whole datagram of at most 64 KiB). */
  onMessage: ((msg: Buffer) => void) | null = null;
  /**
   * Called once when the peer closed (err null) or the connection failed (err has
   * .code, e.g. ECONNRESET, or EMSGSIZE for a datagram over 64 KiB). The socket is
   * already closed when this runs. Never called after close().
   */
  onClose: ((err: Error | null) => void) | null = null;

  readonly #native: NativeSocket;

  private constructor(path: string) {
    // The addon calls this object's onMessage/onClose and holds it strongly while open.
    this.#native = new (addon().SeqpacketSocket)(path, this);
  }

  /**
   * Connects synchronously (AF_UNIX connects complete immediately). Paths longer than
   * sun_path (108 bytes) are reached via /proc/self/fd/<dirfd>/<basename>. Throws
   * with .code ENOENT, ECONNREFUSED, EAGAIN (listen backlog full), ...
   */
  static connect(path: string): SeqpacketSocket {
    return new SeqpacketSocket(path);
  }

  /**
   * Sends one message. Returns true if it went out immediately, false if it was
   * queued (socket buffer full, or earlier messages still queued); queued messages
   * are sent in order when writable. Throws EBADF after close(), EPIPE after
   * shutdownWrite(), EMSGSIZE if the datagram can never fit. A broken connection
   * is reported through onClose, not thrown.
   */
  write(msg: Buffer): boolean {
    return this.#native.write(msg);
  }

  /** shutdown(SHUT_WR) once all queued writes are flushed; the peer then sees EOF. */
  shutdownWrite(): void {
    this.#native.shutdownWrite();
  }

  /** Stops polling and closes the fd; idempotent. No callbacks fire afterwards. */
  close(): void {
    this.#native.close();
  }

  /** Lets the process exit while this socket is open (like net.Socket#unref). */
  unref(): this {
    this.#native.setRef(false);
    return this;
  }

  /** Undoes unref(). */
  ref(): this {
    this.#native.setRef(true);
    return this;
  }
}

