/**
 * The container engine: lifecycle of containers on one host.
 *
 * Every state change of a container goes through this class and is persisted
 * before the call returns. Changes to one container are serialised by a
 * per-container lock; waiting for an exit never holds the lock, since exits
 * are handled under it (see `handleExit`). Exits are learnt from conmon's exit
 * files (`<run>/exits/<id>`), watched with inotify and re-scanned
 * periodically, so an exit that happened while the daemon was down is handled
 * at start-up exactly like a live one.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, promises as fs, watch, type FSWatcher } from 'node:fs';
import { ConflictError, FailedPreconditionError, InvalidArgumentError, NotModifiedError, VesselError, errorMessage } from '../core/errors.js';
import { log } from '../core/log.js';
import type { AttachSession, AttachOptions } from './attach-session.js';
import { Attachments } from './attachments.js';
import { conmonCreate, monitorOptions, type PendingCreate } from './conmon.js';
import { releaseContainer, sawOomKill } from './release.js';
import { WarmMonitors } from './warm-monitors.js';
import { ContainerStore } from './container-store.js';
import { HealthMonitor } from './health.js';
import { initialState, isActive, type ContainerRecord, type ContainerSpec, type ContainerState } from './model.js';
import { checkName, randomName } from './names.js';
import { containerPaths, type DaemonPaths } from './paths.js';
import { restartDelayMs, shouldRestart } from './restart-policy.js';
import { prepareBundle, releaseBundle } from './bundle.js';
import { isMountedOver } from './rootfs.js';
import { discardDir, discardsSettled } from './discard.js';
import { OciRuntime } from './runtime.js';
import { validateSpec } from './validate.js';
import { normalizeSignal } from './signal.js';

export { normalizeSignal };
import { volumeServiceFor } from '../volume/registry.js';
import type { ContainerNetworkInfo } from '../network/network-manager.js';
import { portRequests } from '../network/ports.js';
import { networkInfo, networkModeOf, setupContainerNetwork } from './network-mode.js';
import { EarlyReleases } from './early-release.js';

import { readSmall, unlinkIfPresent, type ContainerEvent, type ManagerOptions, type WaitCondition } from './manager-types.js';
import { WaitList, type WaitResult } from './wait-list.js';

export type { ContainerEvent, ManagerOptions, WaitCondition };

export class ContainerManager extends EventEmitter {
  readonly store: ContainerStore;
  readonly health: HealthMonitor;
  #locks = new Map<string, Promise<unknown>>();
  #waiters = new WaitList();
  #attachments = new Attachments((id) => containerPaths(this.paths, id).bundle);
  #restartTimers = new Map<string, NodeJS.Timeout>();
  /** Exited containers whose runtime, cgroups and network were released since their last start. */
  #released = new Set<string>();
  /** Containers in a `restart`: their stop's exit does not auto-remove them (as in Docker). */
  #restarting = new Set<string>();
  /** conmon started ahead for created containers (see prepareStart). */
  #warm = new WarmMonitors();
  /** Releases begun when a started container's init exits, before its exit file (early-release.ts). */
  #early = new EarlyReleases();
  #watcher: FSWatcher | null = null;
  #scanTimer: NodeJS.Timeout | null = null;
  #runtimes = new Map<string, OciRuntime>();

  constructor(readonly options: ManagerOptions) {
    super();
    this.store = new ContainerStore(options.db);
    this.health = new HealthMonitor(this);
  }

  get paths(): DaemonPaths {
    return this.options.paths;
  }

  runtimeFor(c: ContainerRecord | null): OciRuntime {
    const name = (c?.spec.HostConfig.Runtime as string | undefined) || this.options.defaultRuntime;
    let r = this.#runtimes.get(name);
    if (!r) {
      const base = name.includes('/') ? name.split('/').pop()! : name;
      r = OciRuntime.resolve(name, `${this.paths.runtimeRoot}/${base}`);
      this.#runtimes.set(name, r);
    }
    return r;
  }

  async init(): Promise<void> {
    for (const d of [this.paths.containers, this.paths.bundles, this.paths.exits, this.paths.sockets, this.paths.runtimeRoot]) {
      await fs.mkdir(d, { recursive: true, mode: 0o700 });
    }
    this.#watcher = watch(this.paths.exits, (_ev, file) => {
      if (file) void this.#onExitFile(String(file));
    });
    this.#scanTimer = setInterval(() => void this.#scanExits(), 2000);
    this.#scanTimer.unref();
    await this.#recover();
  }

  async close(): Promise<void> {
    this.#warm.dropAll();
    this.#watcher?.close();
    if (this.#scanTimer) clearInterval(this.#scanTimer);
    for (const t of this.#restartTimers.values()) clearTimeout(t);
    this.health.stopAll();
    // Removed containers' directories still being deleted (start-up would also finish them).
    await discardsSettled();
  }

  /** Runs `fn` with the container's lock held. */
  /** Runs `fn` with the container's lock held (for modules that extend the manager). */
  locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.#locked(id, fn);
  }

  async #locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#locks.get(id) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(fn);
    this.#locks.set(id, next);
    try {
      return await next;
    } finally {
      if (this.#locks.get(id) === next) this.#locks.delete(id);
    }
  }

  emitEvent(action: string, c: ContainerRecord, extra: Record<string, string> = {}): void {
    this.#emit(action, c, extra);
  }

  #emit(action: string, c: ContainerRecord, extra: Record<string, string> = {}): void {
    const attributes: Record<string, string> = {
      name: c.name,
      image: c.spec.Config.Image ?? '',
      ...(c.spec.Config.Labels ?? {}),
      ...extra,
    };
    this.emit('event', { action, id: c.id, attributes } satisfies ContainerEvent);
  }

  #save(c: ContainerRecord): void {
    this.store.saveState(c.id, c.state);
  }

  // ---- create -------------------------------------------------------------

  async create(name: string | null, spec: ContainerSpec): Promise<{ Id: string; Warnings: string[] }> {
    const image = this.options.images.resolve(spec.Config.Image ?? '');
    const warnings = validateSpec(spec, image.config);
    const mode = networkModeOf(spec);
    this.options.networks.validateMode(mode);
    if (mode.kind === 'container') this.store.resolve(mode.ref);
    portRequests(spec.HostConfig.PortBindings, !!spec.HostConfig.PublishAllPorts, { ...(image.config.config?.ExposedPorts ?? {}), ...(spec.Config.ExposedPorts ?? {}) });
    const finalName = name ? checkName(name) : randomName((n) => this.store.nameTaken(n));
    if (this.store.nameTaken(finalName)) {
      const other = this.store.resolve(finalName);
      throw new ConflictError(
        `Conflict: the container name "/${finalName}" is already in use by container "${other.id}". You have to remove (or rename) that container to be able to reuse that name`,
      );
    }
    this.runtimeFor({ spec } as ContainerRecord).check();
    const id = randomBytes(32).toString('hex');
    const p = containerPaths(this.paths, id);
    const record: ContainerRecord = {
      id,
      name: finalName,
      imageId: image.id,
      created: new Date().toISOString(),
      spec,
      state: initialState(),
    };
    // The record goes in before the first await: that reserves the name, so
    // concurrent creates never pick the same generated name.
    this.store.insert(record);
    try {
      // Directories of our own: synchronous, cheaper than thread-pool round trips.
      mkdirSync(p.dir, { recursive: true, mode: 0o710 });
      mkdirSync(p.persist, { recursive: true });
      // Named volumes are made if missing, anonymous ones made and named (Docker does this at create).
      await volumeServiceFor(this.paths.containers)?.attachContainer(record, image.config.config?.Volumes);
    } catch (e) {
      this.store.delete(id);
      await fs.rm(p.dir, { recursive: true, force: true });
      await fs.rm(p.bundle, { recursive: true, force: true });
      throw e;
    }
    this.#emit('create', record);
    return { Id: id, Warnings: warnings };
  }

  // ---- start --------------------------------------------------------------

  /** After `POST /containers/create`: the container's conmon gets going ahead of its start (warm-monitors.ts). */
  prepareStart(id: string): void {
    if (this.#locks.has(id)) return;
    const c = this.store.get(id);
    if (c?.state.Status === 'created') this.#warm.prepare(id, () => conmonCreate(monitorOptions(c, this.paths, this.runtimeFor(c))));
  }

  async start(ref: string): Promise<void> {
    const id = this.store.resolve(ref).id;
    await this.#locked(id, () => this.#start(id, false));
  }

  async #start(id: string, fromRestart: boolean): Promise<void> {
    this.#released.delete(id);
    const c = this.store.resolve(id);
    const s = c.state.Status;
    if (s === 'running') throw new NotModifiedError(`Container ${c.name} is already running`);
    if (s === 'paused') throw new ConflictError(`Cannot start a paused container ${c.name}, try unpause instead`);
    if (s === 'removing' || s === 'dead') throw new ConflictError(`Container ${c.name} is marked for removal and cannot be started`);
    if (s === 'restarting' && !fromRestart) {
      this.#cancelRestart(id);
    }
    const runtime = this.runtimeFor(c);
    const p = containerPaths(this.paths, id);
    const image = this.options.images.resolve(c.imageId);
    let pending: PendingCreate | null = null;
    try {
      runtime.check();
      // Tiny files on the start and exit paths are handled synchronously: a syscall is cheaper than a thread-pool round trip.
      unlinkIfPresent(`${this.paths.exits}/${id}`);
      // The bundle lives on the exec root, a tmpfs that a reboot empties.
      if (!existsSync(p.persist)) mkdirSync(p.persist, { recursive: true });
      unlinkIfPresent(`${p.persist}/oom`);
      const t0 = performance.now();
      // conmon loads and reads its arguments while the bundle is made, then waits for go().
      pending = this.#warm.take(id) ?? conmonCreate(monitorOptions(c, this.paths, runtime));
      await this.options.images.ensureUnpacked(image); // a just-pulled image may still be unpacking
      const net = await setupContainerNetwork(c, this.store, this.options.networks, image.config.config?.ExposedPorts);
      await prepareBundle({
        network: {
          netns: net.netns,
          nameservers: net.nameservers,
          ip: net.endpoints[0]?.ip ?? null,
        },
        container: c,
        image,
        lowerDirs: this.options.images.lowerDirs(image),
        paths: p,
        cgroupsPath: `${this.paths.cgroupParent}/${id}`,
        hostRlimits: this.options.hostRlimits,
        cgroupVersion: this.options.cgroupVersion,
      });
      const t1 = performance.now();
      const conmon = pending;
      pending = null;
      const { pid } = await conmon.go();
      this.#early.watch(id, pid, {
        stillRunning: () => this.store.get(id)?.state.Status === 'running',
        oomKilled: () => sawOomKill(p.persist, `${this.paths.cgroupParent}/${id}`),
        release: () => this.#releaseRuntime(c, pid, true),
      });
      this.#attachments.connectWaiting(id);
      const t2 = performance.now();
      await runtime.start(id);
      // bench/run-latency reads this line for its phase breakdown.
      log.debug('container started', { id: id.slice(0, 12), bundleMs: Math.round(t1 - t0), createMs: Math.round(t2 - t1), startMs: Math.round(performance.now() - t2) });
      const conmonPid = Number(readSmall(p.conmonPidFile).trim()) || 0;
      c.state = {
        ...c.state,
        Status: 'running',
        Pid: pid,
        ConmonPid: conmonPid,
        ExitCode: 0,
        Error: '',
        OOMKilled: false,
        StartedAt: new Date().toISOString(),
        FinishedAt: c.state.FinishedAt,
        ManuallyStopped: false,
        Ports: net.ports,
      };
      const health = this.health.configFor(c, image);
      if (health) {
        c.state.Health = { Status: 'starting', FailingStreak: 0, Log: c.state.Health?.Log ?? [] };
      }
      this.#save(c);
      this.#emit('start', c);
      this.health.watch(c, health);
    } catch (e) {
      pending?.abort();
      await this.#releaseRuntime(c).catch(() => {});
      this.#attachments.endWaiting(id);
      const message = errorMessage(e);
      c.state = {
        ...c.state,
        Status: c.state.StartedAt === initialState().StartedAt && !fromRestart ? 'created' : 'exited',
        Pid: 0,
        ExitCode: /executable file not found|no such file or directory/i.test(message)
          ? 127
          : /permission denied/i.test(message)
            ? 126
            : 128,
        Error: message,
      };
      this.#save(c);
      this.#notifyWaiters(c, ['next-exit', 'not-running']);
      // `run --rm` of something that cannot start leaves nothing behind, as in Docker.
      if (c.spec.HostConfig.AutoRemove && !fromRestart) setImmediate(() => void this.remove(id, { force: true }).catch(() => {}));
      throw e instanceof VesselError ? e : new InvalidArgumentError(message, { cause: e });
    }
  }

  // ---- attach -------------------------------------------------------------

  /** Attaches to a container's stdio; before start, the session waits for the next start. */
  attach(ref: string, options: AttachOptions): AttachSession {
    const c = this.store.resolve(ref);
    return this.#attachments.open(c.id, c.state.Status === 'running' || c.state.Status === 'paused', options);
  }

  // ---- exit handling ------------------------------------------------------

  async #onExitFile(file: string): Promise<void> {
    if (!/^[a-f0-9]{64}$/.test(file)) return;
    if (!existsSync(`${this.paths.exits}/${file}`)) return;
    const c = this.store.get(file);
    if (!c) {
      await fs.rm(`${this.paths.exits}/${file}`, { force: true });
      return;
    }
    await this.#locked(c.id, () => this.#handleExit(c.id, false));
  }

  async #scanExits(): Promise<void> {
    let files: string[] = [];
    try {
      files = await fs.readdir(this.paths.exits);
    } catch {
      return;
    }
    for (const f of files) await this.#onExitFile(f);
  }

  async #handleExit(id: string, daemonStartup: boolean): Promise<void> {
    const c = this.store.get(id);
    const exitFile = `${this.paths.exits}/${id}`;
    if (!c || !existsSync(exitFile)) return;
    if (c.state.Status === 'exited') {
      // The exit was recorded but the daemon stopped before it released the
      // container and removed the file (see below): finish that now.
      await this.#releaseRuntime(c).catch(() => {});
      unlinkIfPresent(exitFile);
      await this.#afterExit(c, 0, daemonStartup);
      return;
    }
    if (!isActive(c.state.Status) || c.state.Status === 'restarting') {
      await fs.rm(exitFile, { force: true });
      return;
    }
    const text = readSmall(exitFile);
    const code = Number.parseInt(text.trim(), 10);
    const early = this.#early.take(id);
    const oom = !!early?.oomKilled || sawOomKill(containerPaths(this.paths, id).persist, `${this.paths.cgroupParent}/${id}`);
    this.health.unwatch(id);
    const pid = c.state.Pid;
    const ranFor = Date.now() - Date.parse(c.state.StartedAt);
    c.state = {
      ...c.state,
      Status: 'exited',
      Pid: 0,
      ConmonPid: 0,
      ExitCode: Number.isFinite(code) ? code : 255,
      OOMKilled: oom,
      FinishedAt: new Date().toISOString(),
    };
    this.#save(c);
    this.#emit('die', c, { exitCode: String(c.state.ExitCode) });
    if (oom) this.#emit('oom', c);
    // Waiters hear of the exit first (as with Podman's cleanup); the release (begun at the init's exit,
    // early-release.ts) still holds the lock, so an `rm` or `start` right after waits for it. The exit
    // file goes last: a daemon killed before that finds the exit again at start-up and releases then.
    this.#notifyWaiters(c, ['next-exit', 'not-running']);
    await ((await early?.done) ? Promise.resolve() : this.#releaseRuntime(c, pid)).then(
      () => this.#released.add(id),
      (e) => {
        c.state.Error = errorMessage(e);
        this.#save(c);
      },
    );
    unlinkIfPresent(exitFile);
    await this.#afterExit(c, ranFor, daemonStartup);
  }

  /** Restart policy, then auto-removal, once a container has exited; the caller holds the container's lock. */
  async #afterExit(c: ContainerRecord, ranForMs: number, daemonStartup: boolean): Promise<void> {
    const facts = {
      exitCode: c.state.ExitCode,
      manuallyStopped: c.state.ManuallyStopped,
      restartCount: c.state.RestartCount,
      daemonStartup,
    };
    if (shouldRestart(c.spec.HostConfig.RestartPolicy, facts)) {
      c.state.Status = 'restarting';
      this.#save(c);
      const delay = daemonStartup ? 0 : restartDelayMs(c.state.RestartCount, ranForMs);
      const timer = setTimeout(() => {
        this.#restartTimers.delete(c.id);
        void this.#locked(c.id, async () => {
          const cur = this.store.get(c.id);
          if (!cur || cur.state.Status !== 'restarting') return;
          cur.state.RestartCount += 1;
          this.#save(cur);
          await this.#start(c.id, true).catch(() => {
            const again = this.store.get(c.id);
            if (again && again.state.Status !== 'running') {
              return this.#afterExit(again, 0, false);
            }
          });
        });
      }, delay);
      this.#restartTimers.set(c.id, timer);
      return;
    }
    // Removed at once, under the same lock: nothing can come in between.
    if (c.spec.HostConfig.AutoRemove && !this.#restarting.has(c.id)) await this.#removeHeld(c.id, {}).catch(() => {});
  }

  #cancelRestart(id: string): void {
    const t = this.#restartTimers.get(id);
    if (t) clearTimeout(t);
    this.#restartTimers.delete(id);
  }

  /** Releases what a started container holds (release.ts). `exitedPid`: the init that exited, when known. */
  #releaseRuntime(c: ContainerRecord, exitedPid: number | null = null, initExited = false): Promise<void> {
    return releaseContainer({
      id: c.id,
      paths: containerPaths(this.paths, c.id),
      runtime: this.runtimeFor(c),
      cgroupPath: `${this.paths.cgroupParent}/${c.id}`,
      networks: this.options.networks,
      exitedPid,
      initExited,
    });
  }

  #notifyWaiters(c: ContainerRecord, conditions: WaitCondition[]): void {
    this.#waiters.notify(c.id, c.state, conditions);
  }

  // ---- wait / stop / kill -------------------------------------------------

  wait(ref: string, condition: WaitCondition = 'not-running'): Promise<WaitResult> {
    const c = this.store.resolve(ref);
    if (condition === 'not-running' && !isActive(c.state.Status)) {
      return Promise.resolve({ StatusCode: c.state.ExitCode, Error: null });
    }
    return this.#waiters.add(c.id, condition);
  }

  /** Resolves when the container is no longer running (or after `timeoutMs`, with false). */
  async #waitStopped(id: string, timeoutMs: number): Promise<boolean> {
    const c = this.store.get(id);
    if (!c || !isActive(c.state.Status) || c.state.Status === 'restarting') return true;
    const exited = this.wait(id, 'next-exit').then(() => true);
    let deadline: NodeJS.Timeout | undefined;
    const timer = new Promise<boolean>((r) => (deadline = setTimeout(() => r(false), timeoutMs).unref()));
    // Nudge exit detection in case inotify missed the file.
    const poll = setInterval(() => void this.#onExitFile(id), 500);
    try {
      return await Promise.race([exited, timer]);
    } finally {
      clearInterval(poll);
      clearTimeout(deadline);
    }
  }

  async stop(ref: string, timeoutSec?: number, signal?: string): Promise<void> {
    const c = this.store.resolve(ref);
    if (c.state.Status === 'restarting') {
      this.#cancelRestart(c.id);
      await this.#locked(c.id, async () => {
        const cur = this.store.resolve(c.id);
        cur.state = { ...cur.state, Status: 'exited', ManuallyStopped: true };
        this.#save(cur);
        this.#notifyWaiters(cur, ['next-exit', 'not-running']);
      });
      return;
    }
    if (!isActive(c.state.Status)) throw new NotModifiedError(`Container ${c.name} is not running`);
    c.state.ManuallyStopped = true;
    this.#save(c);
    const t = timeoutSec ?? c.spec.Config.StopTimeout ?? 10;
    const sig = signal || c.spec.Config.StopSignal || 'SIGTERM';
    const runtime = this.runtimeFor(c);
    if (t !== 0) {
      await runtime.kill(c.id, sig).catch(() => {});
      if (c.state.Status === 'paused') await runtime.resume(c.id).catch(() => {});
      if (t < 0 ? await this.#waitStopped(c.id, 24 * 3600_000) : await this.#waitStopped(c.id, t * 1000)) return;
    }
    await runtime.kill(c.id, 'SIGKILL', true).catch(() => {});
    if (c.state.Status === 'paused') await runtime.resume(c.id).catch(() => {});
    if (!(await this.#waitStopped(c.id, 15_000))) {
      throw new ConflictError(`Container ${c.name} did not stop after SIGKILL`);
    }
  }

  async restart(ref: string, timeoutSec?: number): Promise<void> {
    const id = this.store.resolve(ref).id;
    this.#restarting.add(id);
    try {
      try {
        await this.stop(id, timeoutSec);
      } catch (e) {
        if (!(e instanceof NotModifiedError)) throw e;
      }
      await this.start(id);
    } finally {
      this.#restarting.delete(id);
    }
  }

  async kill(ref: string, signal = 'SIGKILL'): Promise<void> {
    const c = this.store.resolve(ref);
    if (c.state.Status !== 'running' && c.state.Status !== 'paused') {
      throw new ConflictError(`Cannot kill container: ${ref}: Container ${c.id} is not running`);
    }
    const sig = normalizeSignal(signal);
    if (['SIGKILL', 'SIGTERM', 'SIGINT'].includes(sig)) {
      c.state.ManuallyStopped = true;
      this.#save(c);
    }
    await this.runtimeFor(c).kill(c.id, sig);
  }

  async pause(ref: string): Promise<void> {
    const id = this.store.resolve(ref).id;
    await this.#locked(id, async () => {
      const c = this.store.resolve(id);
      if (c.state.Status === 'paused') throw new ConflictError(`Container ${c.id} is already paused`);
      if (c.state.Status !== 'running') throw new ConflictError(`Container ${c.id} is not running`);
      await this.runtimeFor(c).pause(c.id);
      c.state.Status = 'paused';
      this.#save(c);
      this.#emit('pause', c);
    });
  }

  async unpause(ref: string): Promise<void> {
    const id = this.store.resolve(ref).id;
    await this.#locked(id, async () => {
      const c = this.store.resolve(id);
      if (c.state.Status !== 'paused') throw new ConflictError(`Container ${c.id} is not paused`);
      await this.runtimeFor(c).resume(c.id);
      c.state.Status = 'running';
      this.#save(c);
      this.#emit('unpause', c);
    });
  }

  async rename(ref: string, newName: string): Promise<void> {
    const c = this.store.resolve(ref);
    const name = checkName(newName);
    if (name === c.name) throw new ConflictError(`Renaming a container with the same name as its current name`);
    this.store.rename(c.id, name);
    this.#emit('rename', { ...c, name }, { oldName: `/${c.name}` });
  }

  // ---- remove -------------------------------------------------------------

  async remove(ref: string, options: { force: boolean; removeVolumes?: boolean }): Promise<void> {
    const c = this.store.resolve(ref);
    if (c.state.Status === 'removing') return;
    if (isActive(c.state.Status) && c.state.Status !== 'restarting') {
      if (!options.force) {
        throw new ConflictError(
          `You cannot remove a ${c.state.Status} container ${c.id}. Stop the container before attempting removal or force remove`,
        );
      }
      await this.stop(c.id, 0).catch(() => {});
    }
    this.#cancelRestart(c.id);
    this.#warm.drop(c.id);
    await this.#locked(c.id, () => this.#removeHeld(c.id, options));
  }

  /** Removal proper, with the container's lock held (also auto-removal, right after the exit). */
  async #removeHeld(id: string, options: { removeVolumes?: boolean }): Promise<void> {
    const cur = this.store.get(id);
    if (!cur) return;
    const p = containerPaths(this.paths, id);
    this.health.unwatch(id);
    cur.state.Status = 'removing';
    this.#save(cur);
    try {
      // After a released exit only the rootfs mount can have come back (`cp` from a stopped container).
      if (!this.#released.delete(id) && !(await this.#early.take(id)?.done)) await this.#releaseRuntime(cur);
      else if (isMountedOver(p.rootfs)) await releaseBundle(p);
    } catch (e) {
      cur.state.Status = 'dead';
      cur.state.Error = errorMessage(e);
      this.#save(cur);
      throw new FailedPreconditionError(`Cannot remove container ${cur.name}: ${errorMessage(e)}`, { cause: e });
    }
    discardDir(p.dir, this.paths.tmp);
    discardDir(p.bundle, this.paths.runTmp);
    const volumes = volumeServiceFor(this.paths.containers);
    const anonymous = volumes?.anonymousOf(id) ?? [];
    this.store.delete(id); // its volume references go with it (ON DELETE CASCADE)
    // `rm -v`, and auto-removal (`--rm`), also remove the container's anonymous volumes.
    if (options.removeVolumes ?? !!cur.spec.HostConfig.AutoRemove) await volumes?.removeUnused(anonymous);
    this.#attachments.endWaiting(id);
    this.#emit('destroy', cur);
    this.#notifyWaiters(cur, ['removed', 'next-exit', 'not-running']);
  }

  // ---- recovery -----------------------------------------------------------

  /** Re-attaches to what survived a daemon restart and handles what ended meanwhile. */
  async #recover(): Promise<void> {
    for (const c of this.store.list()) {
      await this.#locked(c.id, async () => {
        const exitFile = `${this.paths.exits}/${c.id}`;
        if (c.state.Status === 'removing' || c.state.Status === 'dead') {
          await this.#releaseRuntime(c).catch(() => {});
          return;
        }
        if (c.state.Status === 'running' || c.state.Status === 'paused') {
          if (existsSync(exitFile)) {
            await this.#handleExit(c.id, true);
            return;
          }
          const st = await this.runtimeFor(c).state(c.id).catch(() => null);
          if (st && (st.status === 'running' || st.status === 'paused')) {
            c.state.Status = st.status;
            c.state.Pid = st.pid;
            this.#save(c);
            this.health.watch(c);
            return;
          }
          // Monitor and container vanished without an exit file (e.g. host reboot).
          await this.#releaseRuntime(c).catch(() => {});
          c.state = { ...c.state, Status: 'exited', Pid: 0, ExitCode: 255, FinishedAt: new Date().toISOString(), Error: 'Container exited while the daemon was down' };
          this.#save(c);
          await this.#afterExit(c, 0, true);
          return;
        }
        if (c.state.Status === 'restarting') {
          c.state.Status = 'exited';
          await this.#afterExit(c, 0, true);
          return;
        }
        if (c.state.Status === 'exited' && existsSync(exitFile)) {
          await this.#handleExit(c.id, true); // recorded, but not yet released
          return;
        }
        if (c.state.Status === 'exited' && c.state.StartedAt !== initialState().StartedAt) {
          const policy = c.spec.HostConfig.RestartPolicy?.Name;
          if (policy === 'always' || policy === 'unless-stopped') await this.#afterExit(c, 0, true);
        }
      });
    }
  }

  /** Networking facts of the running containers, for the network manager's reconciliation. */
  runningNetworkInfos(): ContainerNetworkInfo[] {
    return this.store.list().filter((c) => c.state.Status === 'running' || c.state.Status === 'paused').map(networkInfo);
  }

  /** By name, ID or ID prefix; and all records (shortcuts to the store). */
  get = (ref: string): ContainerRecord => this.store.resolve(ref);
  list = (): ContainerRecord[] => this.store.list();

  updateHealth(id: string, mutate: (s: ContainerState) => void): ContainerRecord | null {
    const c = this.store.get(id);
    if (!c || c.state.Status !== 'running') return null;
    mutate(c.state);
    this.#save(c);
    return c;
  }

  emitHealth(c: ContainerRecord): void {
    this.#emit(`health_status: ${c.state.Health?.Status ?? 'none'}`, c);
  }
}
