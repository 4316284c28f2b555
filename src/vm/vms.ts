/**
 * The VM service the daemon's API uses: one entry point per user command,
 * each taking the VM's lock, over the manager (records, disks), the runner
 * (QEMU processes) and snapshots.
 */
import { existsSync, readFileSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../core/errors.js';
import type { ImageStore } from '../image/image-store.js';
import type { NetworkManager } from '../network/network-manager.js';
import type { Db } from '../store/db.js';
import type { VmRecord, VmSnapshot } from './model.js';
import { VmManager, type VmCreateRequest } from './vm-manager.js';
import type { VmHostPaths } from './vm-paths.js';
import { VmRunner } from './vm-runner.js';
import { VmSnapshots } from './vm-snapshots.js';
import { createDisk, qemuImgInfo, resizeDisk } from './qemu-img.js';
import { run } from '../core/exec.js';

export interface VmServiceOptions {
  db: Db;
  images: ImageStore;
  networks: NetworkManager;
  paths: VmHostPaths;
  /** Unprivileged user QEMU drops to (`-runas`); none = QEMU stays root. */
  qemuUser?: string;
}

function rssBytes(pid: number | null): number | null {
  if (!pid) return null;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export class VmService {
  readonly manager: VmManager;
  readonly runner: VmRunner;
  readonly snapshots: VmSnapshots;

  readonly qemuUser: string | null;

  constructor(o: VmServiceOptions) {
    this.qemuUser = o.qemuUser ?? null;
    this.manager = new VmManager({ db: o.db, images: o.images, networks: o.networks, paths: o.paths });
    this.runner = new VmRunner(this.manager, o.qemuUser ? { user: o.qemuUser } : {});
    this.snapshots = new VmSnapshots(this.manager, this.runner);
    o.networks.adoptVms(this.manager.list().map((v) => v.id));
  }

  #with<T>(ref: string, fn: (vm: VmRecord) => Promise<T>): Promise<T> {
    const id = this.manager.resolve(ref).id;
    return this.manager.locked(id, () => fn(this.manager.resolve(id)));
  }

  list(): VmRecord[] {
    return this.manager.list();
  }

  async create(req: VmCreateRequest & { start?: boolean }, progress?: (line: string) => void): Promise<VmRecord> {
    const vm = await this.manager.create(req, progress);
    if (req.start) await this.start(vm.id);
    return this.manager.resolve(vm.id);
  }

  start(ref: string): Promise<void> {
    return this.#with(ref, async (vm) => {
      const load = vm.config.loadSnapshot;
      await this.runner.start(vm, load ? { loadSnapshot: load } : {});
      if (load) {
        vm.config = { ...vm.config, loadSnapshot: null };
        this.manager.store.saveConfig(vm.id, vm.config);
      }
    });
  }

  stop(ref: string, timeoutS?: number): Promise<void> {
    return this.#with(ref, (vm) => this.runner.stop(vm, timeoutS));
  }

  kill(ref: string): Promise<void> {
    return this.#with(ref, async (vm) => {
      if (!this.runner.isLive(vm.id) && vm.state.status !== 'running' && vm.state.status !== 'paused') {
        throw new ConflictError(`VM ${vm.name} is not running`);
      }
      await this.runner.kill(vm);
    });
  }

  pause(ref: string): Promise<void> {
    return this.#with(ref, (vm) => this.runner.pause(vm));
  }

  resume(ref: string): Promise<void> {
    return this.#with(ref, (vm) => this.runner.resume(vm));
  }

  restart(ref: string, timeoutS?: number): Promise<void> {
    return this.#with(ref, async (vm) => {
      if (this.runner.isLive(vm.id)) await this.runner.stop(vm, timeoutS);
      await this.runner.start(this.manager.resolve(vm.id));
    });
  }

  rm(ref: string, force: boolean): Promise<void> {
    return this.#with(ref, async (vm) => {
      if (this.runner.isLive(vm.id) || vm.state.status === 'running' || vm.state.status === 'paused') {
        if (!force) throw new ConflictError(`VM ${vm.name} is running: stop it first or use --force`);
        await this.runner.kill(vm);
      }
      await this.manager.destroy(this.manager.resolve(vm.id));
    });
  }

  async exec(ref: string, argv: string[], o: { timeoutMs?: number; env?: string[]; input?: string } = {}) {
    const vm = this.manager.resolve(ref);
    if (!argv.length) throw new InvalidArgumentError('No command given');
    const agent = await this.runner.agent(vm);
    // The agent replaces the whole environment: start from a usable PATH and HOME, then the user's variables.
    const env: Record<string, string> = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/.vessel/bin', HOME: '/root', TERM: 'dumb' };
    for (const kv of o.env ?? []) {
      const i = kv.indexOf('=');
      if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
    }
    try {
      return await agent.exec(argv, { timeoutMs: o.timeoutMs ?? 600_000, env, ...(o.input !== undefined ? { input: o.input } : {}) });
    } finally {
      agent.close();
    }
  }

  ip(ref: string): Array<{ network: string; ip: string; mac: string }> {
    const vm = this.manager.resolve(ref);
    return this.manager.options.networks.vmEndpoints(vm.id).map(({ endpoint, network }) => ({ network: network.name, ip: endpoint.ip, mac: endpoint.mac }));
  }

  /** `vm memory set`: moves the balloon so the guest has `bytes` of RAM. */
  setMemory(ref: string, bytes: number): Promise<void> {
    return this.#with(ref, async (vm) => {
      if (!Number.isSafeInteger(bytes) || bytes < 64 * 1024 ** 2) throw new InvalidArgumentError('Invalid memory size: at least 64 MiB is needed');
      if (bytes > vm.config.memory) throw new InvalidArgumentError(`Invalid memory size: the VM was created with ${vm.config.memory} bytes (the balloon can only take memory back)`);
      await this.runner.qmp(vm).balloon(bytes);
      vm.state = { ...vm.state, balloon: bytes };
      this.manager.store.saveState(vm.id, vm.state);
    });
  }

  async inspect(ref: string): Promise<Record<string, unknown>> {
    const vm = this.manager.resolve(ref);
    const live = this.runner.isLive(vm.id);
    let balloon: Record<string, unknown> | null = null;
    let status = vm.state.status;
    if (live) {
      const qmp = this.runner.qmp(vm);
      const st = await qmp.queryStatus().catch(() => null);
      if (st) status = st.status === 'paused' || st.status === 'postmigrate' ? 'paused' : 'running';
      const actual = await qmp.queryBalloon().catch(() => null);
      const stats = await qmp.guestStats().catch(() => null);
      balloon = { target: vm.state.balloon ?? vm.config.memory, actual: actual?.actual ?? null, guest: stats };
    }
    const f = this.manager.files(vm);
    return {
      Id: vm.id,
      Name: vm.name,
      Created: vm.created,
      Config: vm.config,
      State: { ...vm.state, status, rss: rssBytes(vm.state.pid) },
      Accelerator: vm.state.accel ? { Name: vm.state.accel, Reason: vm.state.accelReason } : null,
      Networks: this.ip(vm.id),
      Disks: await this.disks(vm.id),
      Snapshots: this.snapshots.list(vm),
      Memory: balloon,
      Resources: {
        CpuWeight: vm.config.cpuWeight,
        CpuCap: vm.config.cpuCap,
        CpuUsageNs: live ? Number(await this.runner.cgroup(vm).cpuUsageNs().catch(() => 0n)) : null,
      },
      Files: { Dir: f.dir, SerialLog: f.serialLog, QemuLog: f.qemuLog },
    };
  }

  async disks(ref: string): Promise<Array<{ Name: string; Path: string; VirtualSize: number; ActualSize: number; Backing: string | null }>> {
    const vm = this.manager.resolve(ref);
    const all = [{ name: 'root', path: this.manager.files(vm).rootDisk }, ...vm.config.disks];
    const out = [];
    for (const d of all) {
      if (!existsSync(d.path)) continue;
      const info = await qemuImgInfo(d.path).catch(() => null);
      out.push({ Name: d.name, Path: d.path, VirtualSize: info?.virtualSize ?? 0, ActualSize: info?.actualSize ?? 0, Backing: info?.backing ?? null });
    }
    return out;
  }

  /** `vm disk create`: a new empty qcow2 data disk, attached (live when the VM runs). */
  diskCreate(ref: string, name: string, size: number): Promise<void> {
    return this.#with(ref, async (vm) => {
      if (!/^[a-z0-9][a-z0-9_-]{0,30}$/.test(name) || name === 'root') throw new InvalidArgumentError(`Invalid disk name: ${JSON.stringify(name)}`);
      if (vm.config.disks.some((d) => d.name === name)) throw new ConflictError(`VM ${vm.name} already has a disk named ${name}`);
      if (!Number.isSafeInteger(size) || size < 1024 * 1024) throw new InvalidArgumentError('Invalid disk size: at least 1 MiB is needed');
      const file = path.join(this.manager.dirOf(vm), `disk-${name}.qcow2`);
      await createDisk(file, size);
      try {
        await this.#attachDisk(vm, name, file, size);
      } catch (e) {
        await fs.rm(file, { force: true });
        throw e;
      }
    });
  }

  /** `vm disk attach`: an existing qcow2 file becomes a data disk of the VM. */
  diskAttach(ref: string, name: string, file: string): Promise<void> {
    return this.#with(ref, async (vm) => {
      if (!/^[a-z0-9][a-z0-9_-]{0,30}$/.test(name) || name === 'root') throw new InvalidArgumentError(`Invalid disk name: ${JSON.stringify(name)}`);
      if (vm.config.disks.some((d) => d.name === name)) throw new ConflictError(`VM ${vm.name} already has a disk named ${name}`);
      const abs = path.resolve(file);
      if (!existsSync(abs)) throw new NotFoundError(`Disk not found: ${abs}`);
      const info = await qemuImgInfo(abs);
      if (info.format !== 'qcow2') throw new InvalidArgumentError(`Disk ${abs} is ${info.format}; only qcow2 disks can be attached`);
      await this.#attachDisk(vm, name, abs, info.virtualSize);
    });
  }

  async #attachDisk(vm: VmRecord, name: string, file: string, size: number): Promise<void> {
    // QEMU opens a hot-plugged disk after dropping to its own user: hand the file over (as libvirt's dynamic ownership does).
    if (this.qemuUser) await run('chown', [this.qemuUser, file]);
    if (this.runner.isLive(vm.id)) {
      const qmp = this.runner.qmp(vm);
      const node = `d-${name}`;
      await qmp.blockdevAdd({ driver: 'qcow2', 'node-name': node, file: { driver: 'file', filename: file } });
      // q35's root bus takes no hotplug: the argv has empty PCIe root ports hp0..hp3; use the first free one.
      let added = false;
      let lastError: unknown = null;
      for (let port = 0; port < 4 && !added; port++) {
        try {
          await qmp.deviceAdd({ driver: 'virtio-blk-pci', id: `dev-${node}`, drive: node, serial: name, bus: `hp${port}` });
          added = true;
        } catch (e) {
          lastError = e;
        }
      }
      if (!added) {
        await qmp.blockdevDel(node).catch(() => {});
        throw lastError instanceof Error ? lastError : new ConflictError('No free hotplug port (4 disks at most while running)');
      }
    }
    vm.config = { ...vm.config, disks: [...vm.config.disks, { name, path: file, size }] };
    this.manager.store.saveConfig(vm.id, vm.config);
  }

  diskDetach(ref: string, name: string): Promise<void> {
    return this.#with(ref, async (vm) => {
      const disk = vm.config.disks.find((d) => d.name === name);
      if (!disk) throw new NotFoundError(`VM ${vm.name} has no disk named ${name}`);
      if (this.runner.isLive(vm.id)) {
        const qmp = this.runner.qmp(vm);
        await qmp.deviceDel(`dev-d-${name}`, 30_000);
        await qmp.blockdevDel(`d-${name}`);
      }
      vm.config = { ...vm.config, disks: vm.config.disks.filter((d) => d.name !== name) };
      this.manager.store.saveConfig(vm.id, vm.config);
    });
  }

  diskResize(ref: string, name: string, size: number): Promise<void> {
    return this.#with(ref, async (vm) => {
      const file = name === 'root' ? this.manager.files(vm).rootDisk : vm.config.disks.find((d) => d.name === name)?.path;
      if (!file) throw new NotFoundError(`VM ${vm.name} has no disk named ${name}`);
      const info = await qemuImgInfo(file);
      if (size < info.virtualSize) throw new InvalidArgumentError(`Shrinking a disk is not supported (${name} is ${info.virtualSize} bytes)`);
      if (this.runner.isLive(vm.id)) await this.runner.qmp(vm).execute('block_resize', { 'node-name': name === 'root' ? 'root' : `d-${name}`, size });
      else await resizeDisk(file, size);
      if (name !== 'root') {
        vm.config = { ...vm.config, disks: vm.config.disks.map((d) => (d.name === name ? { ...d, size } : d)) };
        this.manager.store.saveConfig(vm.id, vm.config);
      }
    });
  }

  snapshotCreate(ref: string, name: string): Promise<VmSnapshot> {
    return this.#with(ref, (vm) => this.snapshots.create(vm, name));
  }

  snapshotRestore(ref: string, name: string): Promise<void> {
    return this.#with(ref, (vm) => this.snapshots.restore(vm, name));
  }

  snapshotRemove(ref: string, name: string): Promise<void> {
    return this.#with(ref, (vm) => this.snapshots.remove(vm, name));
  }

  clone(ref: string, snapshot: string, name: string): Promise<VmRecord> {
    return this.#with(ref, (vm) => this.snapshots.clone(vm, snapshot, name));
  }

  recover(): Promise<void> {
    return this.runner.recover();
  }

  close(): void {
    this.runner.close();
  }
}
