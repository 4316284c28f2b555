/**
 * `exec` sessions: extra processes in a running container (Docker's
 * POST /containers/{id}/exec + POST /exec/{id}/start).
 *
 * Each session is run by its own conmon (`--exec`), which handles the
 * terminal and gives an attach socket like the container's; its files live
 * in `<container>/exec/<execId>/` and are removed when it ends. Sessions are
 * kept in memory only: an exec does not survive a daemon restart.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ConflictError, NotFoundError } from '../core/errors.js';
import { AttachConnection, resizeTerminal } from './attach.js';
import { AttachSession, type AttachOptions } from './attach-session.js';
import { conmonExec } from './conmon.js';
import type { ContainerManager } from './manager.js';
import { containerPaths } from './paths.js';
import { mergeEnv } from './run-config.js';
import { resolveUser } from './user.js';

export interface ExecConfig {
  Cmd: string[];
  Env?: string[] | null;
  WorkingDir?: string;
  User?: string;
  Tty?: boolean;
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  Privileged?: boolean;
  ConsoleSize?: [number, number] | null;
}

interface ExecRecord {
  id: string;
  containerId: string;
  config: ExecConfig;
  running: boolean;
  exitCode: number | null;
  pid: number;
  dir: string;
}

export class ExecManager {
  #execs = new Map<string, ExecRecord>();

  constructor(private readonly manager: ContainerManager) {}

  create(ref: string, config: ExecConfig): string {
    const c = this.manager.get(ref);
    if (c.state.Status !== 'running') {
      throw new ConflictError(`Container ${c.id} is ${c.state.Status === 'paused' ? 'paused, unpause the container before exec' : 'not running'}`);
    }
    if (!Array.isArray(config.Cmd) || config.Cmd.length === 0) throw new ConflictError('No exec command specified');
    const id = randomBytes(32).toString('hex');
    this.#execs.set(id, {
      id,
      containerId: c.id,
      config,
      running: false,
      exitCode: null,
      pid: 0,
      dir: path.join(containerPaths(this.manager.paths, c.id).execs, id.slice(0, 16)),
    });
    return id;
  }

  get(id: string): ExecRecord {
    const e = this.#execs.get(id);
    if (!e) throw new NotFoundError(`No such exec instance: ${id}`);
    return e;
  }

  inspect(id: string): Record<string, unknown> {
    const e = this.get(id);
    return {
      ID: e.id,
      Running: e.running,
      ExitCode: e.exitCode,
      ProcessConfig: {
        tty: !!e.config.Tty,
        entrypoint: e.config.Cmd[0],
        arguments: e.config.Cmd.slice(1),
        privileged: false,
        user: e.config.User ?? '',
      },
      OpenStdin: !!e.config.AttachStdin,
      OpenStderr: !!e.config.AttachStderr,
      OpenStdout: !!e.config.AttachStdout,
      CanRemove: false,
      ContainerID: e.containerId,
      DetachKeys: '',
      Pid: e.pid,
    };
  }

  /** Starts the process; output goes to `options.onOutput` until `session.done`. */
  async start(id: string, options: Omit<AttachOptions, 'stdin'>): Promise<{ session: AttachSession; exitCode: Promise<number> }> {
    const e = this.get(id);
    if (e.running || e.exitCode !== null) throw new ConflictError(`Exec ${id.slice(0, 12)} has already run`);
    const c = this.manager.get(e.containerId);
    if (c.state.Status !== 'running') throw new ConflictError(`Container ${c.id} is not running`);
    const p = containerPaths(this.manager.paths, c.id);
    await fs.mkdir(e.dir, { recursive: true });
    const base = JSON.parse(await fs.readFile(p.specFile, 'utf8')) as { process: Record<string, unknown> & { env?: string[]; user?: Record<string, unknown>; cwd?: string } };
    const proc: Record<string, unknown> = { ...base.process, args: e.config.Cmd, terminal: !!e.config.Tty };
    if (e.config.Env?.length) proc.env = mergeEnv(base.process.env, e.config.Env);
    if (e.config.WorkingDir) proc.cwd = e.config.WorkingDir;
    if (e.config.User) {
      const u = await resolveUser(p.rootfs, e.config.User);
      proc.user = { uid: u.uid, gid: u.gid, additionalGids: u.additionalGids };
    }
    const [height = 0, width = 0] = e.config.ConsoleSize ?? [];
    proc.consoleSize = e.config.Tty && height > 0 && width > 0 ? { height, width } : undefined;
    const specPath = path.join(e.dir, 'process.json');
    await fs.writeFile(specPath, JSON.stringify(proc));
    const session = new AttachSession({ ...options, stdin: !!e.config.AttachStdin });
    const runner = conmonExec({
      id: c.id,
      uuid: id,
      name: c.name,
      bundle: e.dir,
      exitDir: e.dir,
      socketDir: this.manager.paths.sockets,
      logPath: path.join(e.dir, 'exec.log'),
      persistDir: e.dir,
      terminal: !!e.config.Tty,
      stdin: !!e.config.AttachStdin,
      runtime: this.manager.runtimeFor(c),
      processSpecPath: specPath,
    });
    e.running = true;
    try {
      await runner.attachReady;
      session.bind(AttachConnection.connect(e.dir, (stream, data) => session.deliver(stream, data)));
      runner.start();
      e.pid = await runner.pid;
    } catch (err) {
      e.running = false;
      e.exitCode = 126;
      session.finish();
      await fs.rm(e.dir, { recursive: true, force: true });
      throw err;
    }
    const exitCode = runner.exitCode.then(async (code) => {
      await session.done.catch(() => {});
      e.running = false;
      e.exitCode = code;
      await fs.rm(e.dir, { recursive: true, force: true });
      return code;
    });
    return { session, exitCode };
  }

  async resize(id: string, height: number, width: number): Promise<void> {
    const e = this.get(id);
    if (!e.running) return;
    await resizeTerminal(e.dir, height, width).catch(() => {});
  }
}
