/**
 * The VM manager: create, remove, list and inspect VMs; lifecycle lives in
 * `VmRunner`, snapshots in `vm-snapshots.ts`. Every operation on one VM runs
 * under that VM's lock, so a `stop` and an `rm` of the same VM never overlap.
 *
 * Failure rule: a create that fails leaves nothing behind (directory, overlay
 * disk, leases, record); an `rm` removes taps, cgroup, sockets and disks.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConflictError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../core/errors.js';
import { log } from '../core/log.js';
import type { ImageStore } from '../image/image-store.js';
import type { NetworkManager } from '../network/network-manager.js';
import type { Db } from '../store/db.js';
import { NEW_STATE, VM_NAME, type VmConfig, type VmNic, type VmRecord } from './model.js';
import { VmStore } from './vm-store.js';
import { vmPaths, type VmHostPaths } from './vm-paths.js';
import { ensureBaseDisk, createOverlayDisk } from './guest/base-disk.js';
import { ensureGuestKit } from './guest/kit.js';
import { qemuImgInfo } from './qemu-img.js';
import { userDataScript } from './cloud-init.js';

export interface VmCreateRequest {
  name: string;
  image?: string;
  /** An existing qcow2 to use (read-only) as the root disk's backing file, instead of an image. */
  rootDisk?: string;
  vcpus?: number;
  topology?: { sockets: number; cores: number; threads: number };
  memory?: number;
  disk?: number;
  networks?: Array<{ network: string; ip?: string; mac?: string }>;
  cloudInit?: string;
  cpuWeight?: number;
  cpuCap?: number;
}

export interface VmManagerOptions {
  db: Db;
  images: ImageStore;
  networks: NetworkManager;
  paths: VmHostPaths;
}

const MIN_MEMORY = 64 * 1024 ** 2;

/** Fails with one line when the QEMU binary is not installed (checked before any work). */
export function requireQemu(): void {
  const bin = process.env.VESSEL_QEMU || 'qemu-system-x86_64';
  const found = bin.includes('/') ? existsSync(bin) : (process.env.PATH ?? '').split(':').some((d) => d && existsSync(path.join(d, bin)));
  if (!found) throw new FailedPreconditionError(`QEMU is missing: ${bin} not found (install qemu-system-x86)`);
}

export function randomMac(): string {
  const b = randomBytes(3);
  return `52:54:00:${[...b].map((x) => x.toString(16).padStart(2, '0')).join(':')}`;
}

export class VmManager {
  readonly store: VmStore;
  #locks = new Map<string, Promise<unknown>>();

  constructor(readonly options: VmManagerOptions) {
    this.store = new VmStore(options.db);
  }

  /** Runs `fn` after every earlier operation on the same VM has finished. */
  locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#locks.get(id) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(fn);
    this.#locks.set(id, next);
    void next.catch(() => {}).finally(() => {
      if (this.#locks.get(id) === next) this.#locks.delete(id);
    });
    return next;
  }

  dirOf(vm: VmRecord | string): string {
    return path.join(this.options.paths.vms, (typeof vm === 'string' ? vm : vm.id).slice(0, 12));
  }

  files(vm: VmRecord | string) {
    return vmPaths(this.dirOf(vm));
  }

  list(): VmRecord[] {
    return this.store.list();
  }

  resolve(ref: string): VmRecord {
    return this.store.resolve(ref);
  }

  validate(req: VmCreateRequest): void {
    if (!req.name || !VM_NAME.test(req.name)) throw new InvalidArgumentError(`Invalid VM name: ${JSON.stringify(req.name ?? '')} (letters, digits, '_', '.', '-')`);
    if (!req.image && !req.rootDisk) throw new InvalidArgumentError('An image is needed: vm create NAME --image IMAGE');
    const hostCpus = os.cpus().length;
    const vcpus = req.vcpus ?? 1;
    if (!Number.isInteger(vcpus) || vcpus < 1) throw new InvalidArgumentError(`Invalid vCPU count: ${req.vcpus}`);
    if (vcpus > hostCpus) throw new InvalidArgumentError(`Too many vCPUs: ${vcpus} requested, the host has ${hostCpus}`);
    if (req.topology) {
      const t = req.topology;
      if (t.sockets * t.cores * t.threads !== vcpus) {
        throw new InvalidArgumentError(`CPU topology ${t.sockets}x${t.cores}x${t.threads} does not match ${vcpus} vCPUs`);
      }
    }
    const mem = req.memory ?? 512 * 1024 ** 2;
    if (!Number.isSafeInteger(mem) || mem < MIN_MEMORY) throw new InvalidArgumentError(`Invalid memory size: at least 64 MiB is needed`);
    if (mem > os.totalmem()) throw new InvalidArgumentError(`Invalid memory size: ${mem} bytes is more than the host's ${os.totalmem()}`);
    if (req.disk !== undefined && (!Number.isSafeInteger(req.disk) || req.disk < 64 * 1024 ** 2)) {
      throw new InvalidArgumentError('Invalid disk size: at least 64 MiB is needed');
    }
    if (req.cpuWeight !== undefined && (!Number.isInteger(req.cpuWeight) || req.cpuWeight < 1 || req.cpuWeight > 10000)) {
      throw new InvalidArgumentError(`Invalid CPU weight: ${req.cpuWeight} (1..10000)`);
    }
    if (req.cpuCap !== undefined && (!(req.cpuCap > 0) || req.cpuCap > 100 * vcpus)) {
      throw new InvalidArgumentError(`Invalid CPU cap: ${req.cpuCap} (percent of one CPU, 1..${100 * vcpus})`);
    }
    if (req.cloudInit !== undefined) userDataScript(req.cloudInit);
    if (this.store.tryResolve(req.name)?.name === req.name) throw new ConflictError(`A VM named "${req.name}" already exists`);
  }

  async create(req: VmCreateRequest, progress?: (line: string) => void): Promise<VmRecord> {
    this.validate(req);
    requireQemu();
    for (const n of req.networks ?? []) this.options.networks.get(n.network);
    const image = req.image ? this.options.images.resolve(req.image) : null;
    const id = randomBytes(32).toString('hex');
    const dir = this.dirOf(id);
    const f = vmPaths(dir);
    const nics: VmNic[] = (req.networks ?? [{ network: 'bridge' }]).map((n) => ({ network: n.network, mac: n.mac ?? randomMac(), ip: n.ip ?? null }));
    let leased = false;
    try {
      // Traversable (not listable) by the unprivileged QEMU user, which opens hot-plugged disks in it.
      await fs.mkdir(dir, { recursive: true, mode: 0o711 });
      await fs.chmod(dir, 0o711);
      let backing: string;
      if (image) {
        progress?.(`Preparing the base disk of ${req.image}`);
        const kit = await ensureGuestKit(this.options.paths.cache);
        await this.options.images.ensureUnpacked(image);
        const base = await ensureBaseDisk({
          lowerDirs: this.options.images.lowerDirs(image),
          imageId: image.id,
          outDir: this.options.paths.baseDisks,
          kitDir: kit,
          cacheDir: this.options.paths.cache,
        });
        backing = base.path;
      } else {
        const p = path.resolve(req.rootDisk as string);
        if (!existsSync(p)) throw new NotFoundError(`Disk not found: ${p}`);
        backing = p;
      }
      const info = await qemuImgInfo(backing);
      if (req.disk !== undefined && req.disk < info.virtualSize) {
        throw new InvalidArgumentError(`Invalid disk size: the image needs at least ${info.virtualSize} bytes`);
      }
      await createOverlayDisk(backing, f.rootDisk, req.disk);
      if (req.cloudInit !== undefined) await fs.writeFile(f.cloudInit, userDataScript(req.cloudInit), { mode: 0o600 });
      const config: VmConfig = {
        image: req.image ?? req.rootDisk ?? '',
        imageId: image?.id ?? '',
        vcpus: req.vcpus ?? 1,
        topology: req.topology ?? null,
        memory: req.memory ?? 512 * 1024 ** 2,
        disk: req.disk ?? null,
        nics,
        cpuWeight: req.cpuWeight ?? null,
        cpuCap: req.cpuCap ?? null,
        hostname: req.name.replace(/[^a-zA-Z0-9-]/g, '-').slice(0, 63),
        machineId: randomBytes(16).toString('hex'),
        disks: [],
        cloudInit: req.cloudInit !== undefined ? f.cloudInit : null,
        loadSnapshot: null,
      };
      const vm: VmRecord = { id, name: req.name, created: new Date().toISOString(), config, state: { ...NEW_STATE } };
      leased = true;
      for (const nic of nics) {
        const ep = this.options.networks.leaseVm(id, nic.network, { mac: nic.mac, ip: nic.ip ?? null, aliases: [req.name] });
        nic.ip = ep.ip;
      }
      this.store.insert(vm);
      log.info('vm created', { id: id.slice(0, 12), name: req.name });
      return vm;
    } catch (e) {
      if (leased) await this.options.networks.releaseVm(id).catch(() => {});
      await fs.rm(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** Removes a stopped VM's record, disks, leases and files; `kill` must have happened first. */
  async destroy(vm: VmRecord): Promise<void> {
    await this.options.networks.releaseVm(vm.id);
    await fs.rm(this.dirOf(vm), { recursive: true, force: true });
    this.store.remove(vm.id);
    log.info('vm removed', { id: vm.id.slice(0, 12), name: vm.name });
  }
}
