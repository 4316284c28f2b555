/**
 * VM lifecycle: starting QEMU, watching it, stopping it, and re-attaching
 * after a daemon restart.
 *
 * QEMU is spawned in its own session (setsid) with its output in `qemu.log`,
 * so it survives the daemon. The daemon holds one QMP connection per running
 * VM; when that connection closes the VM has exited, and the reason comes from
 * the last SHUTDOWN event (clean) or from the process's exit/log (a crash).
 */
import { spawn } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync, promises as fs } from 'node:fs';
import { FailedPreconditionError, ConflictError, InternalError, UnavailableError } from '../core/errors.js';
import { log } from '../core/log.js';
import type { VmRecord, VmState } from './model.js';
import type { VmManager } from './vm-manager.js';
import { QmpClient } from './qmp/client.js';
import { QgaClient } from './qga/client.js';
import { probeAccelerator } from './accel.js';
import { buildQemuArgs } from './qemu-args.js';
import { VmCgroup } from './cgroup.js';
import { ensureGuestKernel } from './guest/kernel.js';
import { ensureInitramfs } from './guest/initramfs.js';
import { guestKernelCmdline, hostTscKhz } from './guest/cmdline.js';

export const QEMU = process.env.VESSEL_QEMU || 'qemu-system-x86_64';

interface Live {
  qmp: QmpClient;
  lastShutdown: string | null;
  exited: Promise<void>;
}

export function pidAlive(pid: number | null, marker: string): boolean {
  if (!pid) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker);
  } catch {
    return false;
  }
}

function lastLogLine(file: string): string {
  try {
    const lines = readFileSync(file, 'utf8').trim().split('\n').filter((l) => l.trim());
    return (lines.at(-1) ?? '').replace(/^qemu-system-x86_64: /, '').trim();
  } catch {
    return '';
  }
}

async function waitFor<T>(fn: () => Promise<T | null> | T | null, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new UnavailableError(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export class VmRunner {
  #live = new Map<string, Live>();
  #accel: Promise<{ accel: 'kvm' | 'tcg'; reason: string }> | null = null;
  #closing = false;

  constructor(private readonly m: VmManager, private readonly o: { user?: string } = {}) {}

  accelerator(): Promise<{ accel: 'kvm' | 'tcg'; reason: string }> {
    const p = (this.#accel ??= probeAccelerator({ qemuBinary: QEMU, timeoutMs: 3000 }).catch((e: unknown) => {
      this.#accel = null;
      throw e;
    }));
    return p;
  }

  isLive(id: string): boolean {
    return this.#live.has(id);
  }

  qmp(vm: VmRecord): QmpClient {
    const l = this.#live.get(vm.id);
    if (!l) throw new ConflictError(`VM ${vm.name} is not running`);
    return l.qmp;
  }

  #save(vm: VmRecord, patch: Partial<VmState>): void {
    vm.state = { ...vm.state, ...patch };
    this.m.store.saveState(vm.id, vm.state);
  }

  async start(vm: VmRecord, o: { loadSnapshot?: string } = {}): Promise<void> {
    if (vm.state.status === 'running' || vm.state.status === 'paused') throw new ConflictError(`VM ${vm.name} is already running`);
    const f = this.m.files(vm);
    const accel = await this.accelerator();
    const kernel = await ensureGuestKernel(this.m.options.paths.cache);
    const initrd = await ensureInitramfs(kernel, this.m.options.paths.cache);
    const nets = await this.m.options.networks.plugVm({ id: vm.id, name: vm.name, hostname: vm.config.hostname }, this.o.user ? { user: this.o.user } : {});
    let pid: number | null = null;
    const cgroup = this.cgroup(vm);
    try {
      for (const s of [f.qmp, f.qga, f.console, f.pidFile]) await fs.rm(s, { force: true });
      const tsc = hostTscKhz();
      const append = guestKernelCmdline(
        {
          hostname: vm.config.hostname,
          machineId: vm.config.machineId,
          nics: nets.map((n) => ({ mac: n.endpoint.mac, address: `${n.endpoint.ip}/${n.prefix}`, gateway: n.network.gateway })),
          dns: [nets[0]?.network.gateway].filter((x): x is string => !!x && !nets[0]?.network.builtin),
        },
        { console: 'ttyS0', ...(tsc ? { tscKhz: tsc } : {}) },
      );
      const args = buildQemuArgs({
        name: vm.name,
        uuid: vm.id.slice(0, 32).replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5'),
        machine: 'q35',
        accel: accel.accel,
        vcpus: vm.config.vcpus,
        ...(vm.config.topology ? { topology: vm.config.topology } : {}),
        memoryBytes: vm.config.memory,
        kernel: kernel.vmlinuz,
        initrd,
        append,
        disks: [
          { id: 'root', path: f.rootDisk, format: 'qcow2', readOnly: false },
          ...vm.config.disks.map((d) => ({ id: `d-${d.name}`, path: d.path, format: 'qcow2' as const, readOnly: false })),
        ],
        nics: nets.map((n, i) => ({ id: `net${i}`, ifname: n.endpoint.hostIf, mac: n.endpoint.mac })),
        qmpSocket: f.qmp,
        guestAgentSocket: f.qga,
        serial: { socket: f.console, logFile: f.serialLog },
        pidFile: f.pidFile,
        ...(this.o.user ? { runAs: this.o.user } : {}),
        ...(o.loadSnapshot ? { loadSnapshot: o.loadSnapshot } : {}),
        ...(vm.config.cloudInit ? { fwCfg: [{ name: 'opt/vessel/user-data', file: vm.config.cloudInit }] } : {}),
      });
      const out = openSync(f.qemuLog, 'a');
      const child = spawn(QEMU, args, { detached: true, stdio: ['ignore', out, out] });
      closeSync(out);
      let spawnError: Error | null = null;
      child.on('error', (e) => (spawnError = e));
      const exitCode = new Promise<number | string>((resolve) => child.on('exit', (c, s) => resolve(s ?? c ?? -1)));
      child.unref();
      pid = child.pid ?? null;
      const qmp = await Promise.race([
        waitFor(() => (existsSync(f.qmp) ? QmpClient.connect(f.qmp).catch(() => null) : null), 30_000, 'the QEMU monitor'),
        exitCode.then((c) => {
          throw new InternalError(`QEMU failed to start (${typeof c === 'number' ? `exit code ${c}` : c}): ${lastLogLine(f.qemuLog) || 'no output'}`);
        }),
      ]).catch((e: unknown) => {
        if (spawnError) throw new FailedPreconditionError(`QEMU is missing (install qemu-system-x86): ${spawnError.message}`);
        throw e;
      });
      await VmCgroup.create(cgroup.path.split('/').slice(0, -1).join('/'), cgroup.path.split('/').pop() as string);
      if (pid) await cgroup.addProcess(pid);
      if (vm.config.cpuWeight) await cgroup.setCpuWeight(vm.config.cpuWeight);
      if (vm.config.cpuCap) await cgroup.setCpuCap(vm.config.cpuCap);
      this.#attach(vm, qmp, child.pid ? exitCode : null);
      await qmp.setGuestStatsInterval(2).catch(() => {});
      this.#save(vm, {
        status: 'running',
        pid,
        startedAt: new Date().toISOString(),
        finishedAt: null,
        reason: null,
        accel: accel.accel,
        accelReason: accel.reason,
        balloon: null,
      });
      log.info('vm started', { id: vm.id.slice(0, 12), name: vm.name, pid, accel: accel.accel });
    } catch (e) {
      if (pid) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await cgroup.remove().catch(() => {});
      await this.m.options.networks.unplugVm(vm.id).catch(() => {});
      for (const s of [f.qmp, f.qga, f.console, f.pidFile]) await fs.rm(s, { force: true });
      throw e;
    }
  }

  /** Follows one running QEMU until its monitor closes, then records why it stopped and releases its resources. */
  #attach(vm: VmRecord, qmp: QmpClient, exitCode: Promise<number | string> | null): void {
    const live: Live = { qmp, lastShutdown: null, exited: Promise.resolve() };
    qmp.on('SHUTDOWN', (e) => {
      live.lastShutdown = typeof e.data.reason === 'string' ? e.data.reason : 'unknown';
    });
    qmp.on('STOP', () => {
      if (vm.state.status === 'running') this.#save(vm, { status: 'paused' });
    });
    qmp.on('RESUME', () => {
      if (vm.state.status === 'paused') this.#save(vm, { status: 'running' });
    });
    live.exited = qmp.closed.then(async () => {
      if (this.#closing) return;
      const code = exitCode ? await Promise.race([exitCode, new Promise<null>((r) => setTimeout(() => r(null), 2000))]) : null;
      this.#live.delete(vm.id);
      const f = this.m.files(vm);
      let reason: string;
      if (live.lastShutdown === 'guest-shutdown') reason = 'guest shut down';
      else if (live.lastShutdown === 'host-qmp-quit') reason = 'stopped by vessel';
      else if (live.lastShutdown === 'host-signal') reason = 'QEMU received a termination signal';
      else if (live.lastShutdown) reason = `shutdown: ${live.lastShutdown}`;
      else {
        const how = typeof code === 'string' ? `killed by ${code}` : code !== null ? `exit code ${code}` : 'no shutdown event';
        reason = `QEMU died (${how})${lastLogLine(f.qemuLog) ? `: ${lastLogLine(f.qemuLog)}` : ''}`;
      }
      const fresh = this.m.store.tryResolve(vm.id);
      if (fresh) {
        vm.state = fresh.state;
        this.#save(vm, { status: live.lastShutdown ? 'stopped' : 'exited', pid: null, finishedAt: new Date().toISOString(), reason });
      }
      await this.#release(vm);
      log.info('vm exited', { id: vm.id.slice(0, 12), reason });
    });
    this.#live.set(vm.id, live);
  }

  async #release(vm: VmRecord): Promise<void> {
    const f = this.m.files(vm);
    await this.cgroup(vm).remove().catch(() => {});
    await this.m.options.networks.unplugVm(vm.id).catch(() => {});
    for (const s of [f.qmp, f.qga, f.console, f.pidFile]) await fs.rm(s, { force: true });
  }

  /** ACPI power-down, then (after `timeoutS`) a forced stop. */
  async stop(vm: VmRecord, timeoutS = 60): Promise<void> {
    const live = this.#live.get(vm.id);
    if (!live) {
      if (vm.state.status === 'running' || vm.state.status === 'paused') await this.#forceGone(vm);
      return;
    }
    if (vm.state.status === 'paused') await live.qmp.cont().catch(() => {});
    await live.qmp.systemPowerdown().catch(() => {});
    // Also ask the guest agent: guests without an ACPI daemon still shut down cleanly.
    const agent = await QgaClient.connect(this.m.files(vm).qga).catch(() => null);
    if (agent) {
      await agent.shutdown('powerdown').catch(() => {});
      agent.close();
    }
    const done = await Promise.race([live.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), timeoutS * 1000))]);
    if (!done) await this.kill(vm);
  }

  async kill(vm: VmRecord): Promise<void> {
    const live = this.#live.get(vm.id);
    if (live) {
      await live.qmp.quit().catch(() => {});
      const done = await Promise.race([live.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
      if (done) return;
    }
    await this.#forceGone(vm);
    await live?.exited;
  }

  async #forceGone(vm: VmRecord): Promise<void> {
    const marker = this.m.dirOf(vm);
    if (vm.state.pid && pidAlive(vm.state.pid, marker)) {
      try {
        process.kill(vm.state.pid, 'SIGKILL');
      } catch {
        // gone
      }
      await waitFor(() => (pidAlive(vm.state.pid, marker) ? null : true), 10_000, 'QEMU to exit');
    }
    if (!this.#live.has(vm.id)) {
      this.#save(vm, { status: 'stopped', pid: null, finishedAt: new Date().toISOString(), reason: 'killed' });
      await this.#release(vm);
    }
  }

  async pause(vm: VmRecord): Promise<void> {
    if (vm.state.status !== 'running') throw new ConflictError(`VM ${vm.name} is not running`);
    await this.qmp(vm).stop();
    this.#save(vm, { status: 'paused' });
  }

  async resume(vm: VmRecord): Promise<void> {
    if (vm.state.status !== 'paused') throw new ConflictError(`VM ${vm.name} is not paused`);
    await this.qmp(vm).cont();
    this.#save(vm, { status: 'running' });
  }

  /** A guest-agent connection to a running VM (waits for the agent to answer). */
  async agent(vm: VmRecord, timeoutMs = 120_000): Promise<QgaClient> {
    if (!this.#live.has(vm.id)) throw new ConflictError(`VM ${vm.name} is not running`);
    const qga = new QgaClient(this.m.files(vm).qga);
    try {
      await qga.waitReady(timeoutMs);
    } catch (e) {
      qga.close();
      throw new UnavailableError(`The guest agent of VM ${vm.name} did not answer within ${Math.round(timeoutMs / 1000)} s`, { cause: e });
    }
    return qga;
  }

  /** After a daemon restart: re-attach to every VM whose QEMU still runs; record the others as exited. */
  async recover(): Promise<void> {
    for (const vm of this.m.store.list()) {
      if (vm.state.status !== 'running' && vm.state.status !== 'paused') continue;
      const f = this.m.files(vm);
      if (pidAlive(vm.state.pid, this.m.dirOf(vm))) {
        try {
          const qmp = await QmpClient.connect(f.qmp);
          this.m.options.networks.adoptRunningVm({ id: vm.id, name: vm.name, hostname: vm.config.hostname });
          this.#attach(vm, qmp, null);
          const st = await qmp.queryStatus();
          this.#save(vm, { status: st.status === 'paused' ? 'paused' : 'running' });
          log.info('vm re-attached', { id: vm.id.slice(0, 12), pid: vm.state.pid });
          continue;
        } catch (e) {
          log.warn('vm monitor unreachable after restart', { id: vm.id.slice(0, 12), error: String(e) });
        }
      }
      this.#save(vm, {
        status: 'exited',
        pid: null,
        finishedAt: new Date().toISOString(),
        reason: `QEMU exited while the daemon was down${lastLogLine(f.qemuLog) ? `: ${lastLogLine(f.qemuLog)}` : ''}`,
      });
      await this.#release(vm);
    }
  }

  /** Daemon shutdown: VMs keep running; only our monitor connections close. */
  close(): void {
    this.#closing = true;
    for (const l of this.#live.values()) void l.qmp.close();
    this.#live.clear();
  }

  /** The VM's cgroup below the daemon's parent (exists only while QEMU runs). */
  cgroup(vm: VmRecord): VmCgroup {
    return new VmCgroup(this.m.options.paths.cgroupParent.replace(/^\//, ''), `vm-${vm.id.slice(0, 12)}`);
  }
}
