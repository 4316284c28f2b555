/**
 * `vesseld`: start-up and shutdown of one daemon.
 *
 * Containers are not stopped when the daemon exits (or dies): conmon keeps
 * them, and the next daemon on the same root re-attaches (manager.init).
 */
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { errorMessage, UnavailableError } from '../core/errors.js';
import { log, setLogLevel } from '../core/log.js';
import { detectCgroupVersion } from '../container/cgroups.js';
import { ExecManager } from '../container/exec-manager.js';
import { ContainerManager } from '../container/manager.js';
import { daemonPaths } from '../container/paths.js';
import { ImageStore } from '../image/image-store.js';
import { NetworkManager } from '../network/network-manager.js';
import { openDb } from '../store/db.js';
import { VERSION } from '../version.js';
import { DAEMON_USAGE, parseDaemonArgs, type DaemonConfig } from './config.js';
import type { DaemonContext } from './context.js';
import { containerRoutes } from './routes/containers.js';
import { runRoutes } from './routes/run.js';
import { execRoutes } from './routes/exec.js';
import { imageRoutes } from './routes/images.js';
import { imageArchiveRoutes } from './routes/image-archive.js';
import { distributionRoutes } from './routes/distribution.js';
import { networkRoutes } from './routes/networks.js';
import { buildRoutes } from './routes/build.js';
import { BuildExecutor } from '../build/executor.js';
import { BuildCache } from '../build/build-cache.js';
import { systemRoutes } from './routes/system.js';
import { archiveRoutes } from './routes/archive.js';
import { volumeRoutes } from './routes/volumes.js';
import { vmRoutes } from './routes/vms.js';
import { VmService } from '../vm/vms.js';
import { hostPathsFor } from '../vm/vm-paths.js';
import { enableKsm, ensureSystemUser } from '../vm/host.js';
import { ContainerArchiver } from '../volume/container-archive.js';
import { registerVolumeService, unregisterVolumeService } from '../volume/registry.js';
import { VolumeService } from '../volume/volume-service.js';
import { RegistryServer } from '../registry/server/server.js';
import { Router } from './router.js';
import { ApiServer, socketPathOf } from './server.js';

/** The daemon's own hard limits: containers may not ask for more (runc would fail setrlimit). */
export function hostRlimits(): { nofile: { soft: number; hard: number }; nproc: { soft: number; hard: number } } {
  const text = readFileSync('/proc/self/limits', 'utf8');
  const read = (label: string) => {
    const line = text.split('\n').find((l) => l.startsWith(label)) ?? '';
    const [soft, hard] = line.slice(label.length).trim().split(/\s+/);
    const n = (v: string | undefined) => (v === 'unlimited' || v === undefined ? 4294967295 : Number(v));
    return { soft: n(soft), hard: n(hard) };
  };
  return { nofile: read('Max open files'), nproc: read('Max processes') };
}

async function lockRoot(root: string): Promise<string> {
  const pidFile = path.join(root, 'vesseld.pid');
  const old = Number((await fs.readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (old && old !== process.pid) {
    let alive = false;
    try {
      process.kill(old, 0);
      const cmd = await fs.readFile(`/proc/${old}/cmdline`, 'utf8').catch(() => '');
      alive = cmd.includes('vesseld') || cmd.includes('daemon/main');
    } catch {
      alive = false;
    }
    if (alive) throw new UnavailableError(`Another vesseld (pid ${old}) is using ${root}`);
  }
  await fs.writeFile(pidFile, String(process.pid));
  return pidFile;
}

/**
 * Makes `dir` (the exec root) if missing and checks it is ours alone: it may
 * sit in a world-writable directory such as /dev/shm, where someone else could
 * have made it first.
 */
async function ownPrivateDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await fs.lstat(dir);
  if (!st.isDirectory() || st.uid !== process.getuid?.() || (st.mode & 0o022) !== 0) {
    throw new UnavailableError(`${dir} is not a private directory of this user: remove it, or pick another with --exec-root`);
  }
}

export async function startDaemon(config: DaemonConfig): Promise<{ stop: () => Promise<void>; ctx: DaemonContext }> {
  setLogLevel(config.logLevel);
  const paths = daemonPaths(config.root, config.execRoot ?? undefined);
  await ownPrivateDir(paths.run);
  await fs.mkdir(paths.root, { recursive: true, mode: 0o711 });
  const pidFile = await lockRoot(paths.root);
  // runc's pid files matter only while a create runs, and none runs now.
  await fs.rm(paths.pids, { recursive: true, force: true });
  await fs.mkdir(paths.pids, { recursive: true, mode: 0o700 });
  // Scratch left by a daemon that was killed mid-build belongs to nobody now.
  for (const d of [paths.tmp, paths.runTmp]) {
    await fs.rm(d, { recursive: true, force: true });
    await fs.mkdir(d, { recursive: true, mode: 0o700 });
  }
  const db = openDb(paths.db);
  const images = new ImageStore(paths.images, db);
  await images.init();
  const cgroupVersion = detectCgroupVersion();
  const networks = new NetworkManager({
    db,
    tag: paths.cgroupParent.replace(/^\/vessel-/, ''),
    defaultBridge: config.bridge,
    defaultSubnet: config.subnet,
  });
  await networks.init();
  // Before the manager starts anything (restart policies): containers mount volumes.
  const volumes = new VolumeService(db, paths);
  await volumes.init();
  registerVolumeService(volumes);
  const manager = new ContainerManager({
    networks,
    paths,
    db,
    images,
    defaultRuntime: config.runtime,
    hostRlimits: hostRlimits(),
    cgroupVersion,
  });
  await manager.init();
  const archiver = new ContainerArchiver({ manager, images, paths, volumes });
  if (config.ksm) await enableKsm();
  if (config.vmUser) await ensureSystemUser(config.vmUser);
  const vms = new VmService({
    db,
    images,
    networks,
    paths: hostPathsFor(paths.root, paths.cache, paths.cgroupParent),
    ...(config.vmUser ? { qemuUser: config.vmUser } : {}),
  });
  // VMs re-attach before the network reconcile, which keeps only the taps of running VMs.
  await vms.recover();
  await networks.reconcile(manager.runningNetworkInfos());
  const execs = new ExecManager(manager);
  const ctx: DaemonContext = { config, paths, images, manager, execs, cgroupVersion, networks, volumes, archiver, vms };
  const router = new Router();
  systemRoutes(router, ctx);
  containerRoutes(router, ctx);
  runRoutes(router, ctx);
  execRoutes(router, ctx);
  imageRoutes(router, ctx);
  imageArchiveRoutes(router, ctx);
  distributionRoutes(router, ctx);
  networkRoutes(router, ctx);
  buildRoutes(router, ctx, new BuildExecutor(images, manager, new BuildCache(db), paths.tmp));
  volumeRoutes(router, ctx);
  archiveRoutes(router, ctx);
  vmRoutes(router, vms);
  const server = new ApiServer(router);
  const registry = config.registryAddr ? new RegistryServer({ root: path.join(paths.root, 'registry') }) : undefined;
  if (registry && config.registryAddr) log.info('registry listening', await registry.listen(config.registryAddr));
  await server.listen(config.host, config.socketGroup);
  log.info('vesseld ready', { version: VERSION, root: paths.root, host: config.host, runtime: config.runtime, cgroup: cgroupVersion });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await server.close();
    await registry?.close();
    await manager.close();
    vms.close();
    await images.close();
    await networks.close();
    unregisterVolumeService(volumes);
    db.close();
    await fs.rm(socketPathOf(config.host), { force: true });
    await fs.rm(pidFile, { force: true });
    // Runtime state of containers that outlive the daemon stays; empty directories go.
    for (const d of [paths.pids, paths.runTmp, paths.exits, paths.sockets, `${paths.runtimeRoot}/runc`, `${paths.runtimeRoot}/crun`, paths.runtimeRoot, paths.bundles, paths.run]) {
      await fs.rmdir(d).catch(() => {});
    }
  };
  return { stop, ctx };
}

export async function main(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseDaemonArgs(argv);
  } catch (e) {
    process.stderr.write(`vesseld: ${errorMessage(e)}\n`);
    process.exit(2);
  }
  if (parsed === 'help') {
    process.stdout.write(DAEMON_USAGE);
    return;
  }
  if (parsed === 'version') {
    process.stdout.write(`vesseld ${VERSION}\n`);
    return;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('vesseld: must run as root\n');
    process.exit(1);
  }
  try {
    const { stop } = await startDaemon(parsed);
    const onSignal = (sig: string) => {
      log.info('shutting down', { signal: sig });
      void stop().then(() => process.exit(0));
    };
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    process.on('SIGINT', () => onSignal('SIGINT'));
  } catch (e) {
    process.stderr.write(`vesseld: ${errorMessage(e)}\n`);
    process.exit(1);
  }
}

await main(process.argv.slice(2));
