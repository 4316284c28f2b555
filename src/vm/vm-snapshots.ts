/**
 * VM snapshots and clones, as qcow2 internal snapshots.
 *
 * A snapshot of a running (or paused) VM stores memory and device state
 * together with every disk's state inside the VM's own overlay (QMP
 * `snapshot-save`), so a restore returns to exactly that moment. A stopped
 * VM's snapshot is disk-only (`qemu-img snapshot`). The shared base disk is
 * never written: snapshots live in the per-VM overlays.
 *
 * A clone copies the source's overlays (with the source paused so QEMU has
 * flushed them), starts from the snapshot, then gives the guest its own
 * identity through the guest agent: hostname, machine-id, MAC and IP.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ConflictError, InvalidArgumentError } from '../core/errors.js';
import { run } from '../core/exec.js';
import { log } from '../core/log.js';
import { NEW_STATE, VM_NAME, type VmRecord, type VmSnapshot } from './model.js';
import type { VmManager } from './vm-manager.js';
import { randomMac } from './vm-manager.js';
import type { VmRunner } from './vm-runner.js';
import { snapshotOffline } from './qemu-img.js';

const SNAP_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;

function diskFiles(m: VmManager, vm: VmRecord): Array<{ node: string; file: string }> {
  return [{ node: 'root', file: m.files(vm).rootDisk }, ...vm.config.disks.map((d) => ({ node: `d-${d.name}`, file: d.path }))];
}

export class VmSnapshots {
  constructor(private readonly m: VmManager, private readonly runner: VmRunner) {}

  list(vm: VmRecord): VmSnapshot[] {
    return this.m.store.snapshots(vm.id);
  }

  async create(vm: VmRecord, name: string): Promise<VmSnapshot> {
    if (!SNAP_NAME.test(name)) throw new InvalidArgumentError(`Invalid snapshot name: ${JSON.stringify(name)}`);
    if (this.m.store.snapshots(vm.id).some((s) => s.name === name)) throw new ConflictError(`Snapshot "${name}" already exists`);
    const disks = diskFiles(this.m, vm);
    const live = this.runner.isLive(vm.id);
    const started = Date.now();
    if (live) {
      await this.runner.qmp(vm).snapshotSave(name, 'root', disks.map((d) => d.node));
    } else {
      const done: string[] = [];
      try {
        for (const d of disks) {
          await snapshotOffline('create', d.file, name);
          done.push(d.file);
        }
      } catch (e) {
        for (const f of done) await snapshotOffline('delete', f, name).catch(() => {});
        throw e;
      }
    }
    const snap: VmSnapshot = { vmId: vm.id, name, created: new Date().toISOString(), withMemory: live, vmClockMs: null };
    this.m.store.addSnapshot(snap);
    log.info('vm snapshot created', { vm: vm.name, name, withMemory: live, ms: Date.now() - started });
    return snap;
  }

  async restore(vm: VmRecord, name: string): Promise<void> {
    const snap = this.m.store.snapshot(vm.id, name);
    const disks = diskFiles(this.m, vm);
    if (this.runner.isLive(vm.id)) {
      if (!snap.withMemory) throw new ConflictError(`Snapshot "${name}" holds disks only: stop the VM to restore it`);
      const wasPaused = vm.state.status === 'paused';
      await this.runner.qmp(vm).snapshotLoad(name, 'root', disks.map((d) => d.node));
      // snapshot-load leaves the VM in the state it was in when the job started; a paused VM stays paused.
      if (!wasPaused) await this.runner.qmp(vm).cont().catch(() => {});
      return;
    }
    if (snap.withMemory) {
      await this.runner.start(vm, { loadSnapshot: name });
      return;
    }
    for (const d of disks) await snapshotOffline('apply', d.file, name);
  }

  async remove(vm: VmRecord, name: string): Promise<void> {
    this.m.store.snapshot(vm.id, name);
    const disks = diskFiles(this.m, vm);
    if (this.runner.isLive(vm.id)) await this.runner.qmp(vm).snapshotDelete(name, disks.map((d) => d.node));
    else for (const d of disks) await snapshotOffline('delete', d.file, name).catch(() => {});
    this.m.store.removeSnapshot(vm.id, name);
  }

  /**
   * A new VM from `source`'s snapshot `snapName`, with its own identity. The
   * clone starts when the snapshot holds memory (it resumes at that moment),
   * and its identity is applied through the guest agent.
   */
  async clone(source: VmRecord, snapName: string, name: string): Promise<VmRecord> {
    const snap = this.m.store.snapshot(source.id, snapName);
    if (!VM_NAME.test(name)) throw new InvalidArgumentError(`Invalid VM name: ${JSON.stringify(name)}`);
    if (this.m.store.tryResolve(name)?.name === name) throw new ConflictError(`A VM named "${name}" already exists`);
    const id = randomBytes(32).toString('hex');
    const dir = this.m.dirOf(id);
    const f = this.m.files(id);
    const nics = source.config.nics.map((n) => ({ network: n.network, mac: randomMac(), ip: null as string | null }));
    const vm: VmRecord = {
      id,
      name,
      created: new Date().toISOString(),
      config: {
        ...source.config,
        nics,
        hostname: name.replace(/[^a-zA-Z0-9-]/g, '-').slice(0, 63),
        machineId: randomBytes(16).toString('hex'),
        disks: source.config.disks.map((d) => ({ ...d, path: path.join(dir, path.basename(d.path)) })),
        cloudInit: null,
        loadSnapshot: snap.withMemory ? snapName : null,
      },
      state: { ...NEW_STATE },
    };
    await fs.mkdir(dir, { recursive: true, mode: 0o711 });
    await fs.chmod(dir, 0o711);
    let leased = false;
    try {
      const pause = this.runner.isLive(source.id) && source.state.status === 'running';
      if (pause) await this.runner.qmp(source).stop();
      try {
        const copies = diskFiles(this.m, source).map((d, i) => [d.file, i === 0 ? f.rootDisk : (vm.config.disks[i - 1]?.path as string)] as const);
        for (const [from, to] of copies) await run('cp', ['--sparse=always', from, to], { timeoutMs: 600_000 });
      } finally {
        if (pause) await this.runner.qmp(source).cont().catch(() => {});
      }
      if (!snap.withMemory) for (const d of diskFiles(this.m, vm)) await snapshotOffline('apply', d.file, snapName);
      leased = true;
      for (const nic of nics) nic.ip = this.m.options.networks.leaseVm(id, nic.network, { mac: nic.mac, aliases: [name] }).ip;
      this.m.store.insert(vm);
    } catch (e) {
      if (leased) await this.m.options.networks.releaseVm(id).catch(() => {});
      await fs.rm(dir, { recursive: true, force: true });
      throw e;
    }
    if (snap.withMemory) {
      await this.runner.start(vm, { loadSnapshot: snapName });
      await this.reidentify(vm);
    }
    return vm;
  }

  /** Applies `vm`'s hostname, machine-id, MAC and address inside the running guest. */
  async reidentify(vm: VmRecord): Promise<void> {
    const [first] = this.m.options.networks.vmEndpoints(vm.id);
    const agent = await this.runner.agent(vm);
    try {
      const argv = ['/.vessel/bin/reidentify', vm.config.hostname, vm.config.machineId];
      if (first) {
        const prefix = first.network.subnet.split('/')[1];
        argv.push(first.endpoint.mac, `${first.endpoint.ip}/${prefix}`, first.network.gateway);
        if (!first.network.builtin) argv.push(first.network.gateway);
      }
      const r = await agent.exec(argv, { timeoutMs: 30_000 });
      if (r.exitCode !== 0) throw new ConflictError(`Could not apply the clone's identity: ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
    } finally {
      agent.close();
    }
  }
}
