/**
 * QmpClient: the QMP connection plus typed helpers for the commands Vessel's
 * VM manager uses (lifecycle, balloon, migration, snapshots, hotplug).
 *
 * Every helper has a timeout (the connection's default unless stated).
 * Long operations (migration, snapshot jobs) take their own `timeoutMs`.
 */
import { FailedPreconditionError, InternalError, UnavailableError } from '../../core/errors.js';
import { u64OrNull, type JsonObject, type JsonValue } from '../json.js';
import { connectUnix } from '../unix-socket.js';
import { QmpConnection, unexpectedReply, type QmpConnectOptions } from './connection.js';
import type {
  BalloonInfo,
  BlockDeviceInfo,
  BlockNodeInfo,
  CpuInfoFast,
  GuestMemoryStats,
  JobInfo,
  MigrationCapability,
  MigrationInfo,
  MigrationParameters,
  StatusInfo,
} from './types.js';

export { QmpError, type QmpConnectOptions, type QmpEventListener } from './connection.js';
export type * from './types.js';

/** A `human-monitor-command` whose output text reports an error (HMP has no error channel). */
export class HmpError extends FailedPreconditionError {
  override name = 'HmpError';
}

/** A block job (snapshot-save/load/delete) that concluded with an error. */
export class QmpJobError extends FailedPreconditionError {
  override name = 'QmpJobError';
}

const num = (v: JsonValue | undefined): number => (typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : 0);
const optNum = (v: JsonValue | undefined): number | undefined => (v === undefined || v === null ? undefined : num(v));
const str = (v: JsonValue | undefined): string => (typeof v === 'string' ? v : '');
const obj = (v: JsonValue | undefined): JsonObject => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as JsonObject) : {});
const arr = (v: JsonValue | undefined): JsonValue[] => (Array.isArray(v) ? v : []);

/** u64 stat → number, or null for "not available". Values above 2^53 (not real byte counts) are rounded. */
function stat(v: JsonValue | undefined): number | null {
  const x = u64OrNull(v);
  return x === null ? null : Number(x);
}

/** Lines QEMU's HMP prints instead of raising an error. */
const HMP_ERROR = /^(Error:|unknown command|Unknown command|Could not|Failed to|Parameter '|No block device|Device '.*' not found)/m;

export class QmpClient extends QmpConnection {
  static override async connect(socketPath: string, options: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeout = options.connectTimeoutMs ?? 5000;
    const c = new QmpClient(await connectUnix(socketPath, timeout, 'QMP socket'), socketPath, options);
    try {
      await c.handshake(timeout);
    } catch (e) {
      await c.close();
      throw e;
    }
    return c;
  }

  // ---- lifecycle ----

  async queryStatus(): Promise<StatusInfo> {
    const r = obj(await this.execute('query-status'));
    if (typeof r['status'] !== 'string') throw unexpectedReply('query-status', 'no status');
    return { status: r['status'] as StatusInfo['status'], running: r['running'] === true };
  }

  async stop(): Promise<void> {
    await this.execute('stop');
  }

  async cont(): Promise<void> {
    await this.execute('cont');
  }

  /** ACPI power button; the guest decides whether to shut down. */
  async systemPowerdown(): Promise<void> {
    await this.execute('system_powerdown');
  }

  async systemReset(): Promise<void> {
    await this.execute('system_reset');
  }

  /** Ask QEMU to exit; resolves once the connection has closed (or after `timeoutMs`). */
  async quit(timeoutMs = 5000): Promise<void> {
    try {
      await this.execute('quit', {}, { timeoutMs });
    } catch (e) {
      if (!this.isClosed) throw e; // QEMU may close before the reply arrives
    }
    await Promise.race([this.closed, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
  }

  // ---- balloon ----

  /** Set the balloon target: the guest RAM size in bytes QEMU asks the driver to leave to the guest. */
  async balloon(bytes: number): Promise<void> {
    if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new FailedPreconditionError(`Invalid balloon target: ${bytes}`);
    await this.execute('balloon', { value: bytes });
  }

  async queryBalloon(): Promise<BalloonInfo> {
    return { actual: num(obj(await this.execute('query-balloon'))['actual']) };
  }

  async qomGet<T = JsonValue>(path: string, property: string): Promise<T> {
    return this.execute<T>('qom-get', { path, property });
  }

  async qomSet(path: string, property: string, value: JsonValue): Promise<void> {
    await this.execute('qom-set', { path, property, value });
  }

  /** Ask the balloon driver to report stats every `seconds` (0 disables). `device` is the balloon's id. */
  async setGuestStatsInterval(seconds: number, device = 'balloon0'): Promise<void> {
    await this.qomSet(`/machine/peripheral/${device}`, 'guest-stats-polling-interval', seconds);
  }

  async guestStats(device = 'balloon0'): Promise<GuestMemoryStats> {
    const r = obj(await this.qomGet(`/machine/peripheral/${device}`, 'guest-stats'));
    const s = obj(r['stats']);
    return {
      lastUpdate: num(r['last-update']),
      swapIn: stat(s['stat-swap-in']),
      swapOut: stat(s['stat-swap-out']),
      majorFaults: stat(s['stat-major-faults']),
      minorFaults: stat(s['stat-minor-faults']),
      freeMemory: stat(s['stat-free-memory']),
      totalMemory: stat(s['stat-total-memory']),
      availableMemory: stat(s['stat-available-memory']),
      diskCaches: stat(s['stat-disk-caches']),
      hugetlbAllocations: stat(s['stat-htlb-pgalloc']),
      hugetlbFailures: stat(s['stat-htlb-pgfail']),
    };
  }

  // ---- migration ----

  async migrateSetCapabilities(caps: Partial<Record<MigrationCapability, boolean>>): Promise<void> {
    const capabilities = Object.entries(caps).map(([capability, state]) => ({ capability, state: state === true }));
    if (capabilities.length > 0) await this.execute('migrate-set-capabilities', { capabilities });
  }

  async migrateSetParameters(p: MigrationParameters): Promise<void> {
    const args: Record<string, number> = {};
    const map: [keyof MigrationParameters, string][] = [
      ['downtimeLimitMs', 'downtime-limit'],
      ['maxBandwidth', 'max-bandwidth'],
      ['multifdChannels', 'multifd-channels'],
      ['cpuThrottleInitial', 'cpu-throttle-initial'],
      ['cpuThrottleIncrement', 'cpu-throttle-increment'],
      ['maxCpuThrottle', 'max-cpu-throttle'],
    ];
    for (const [k, q] of map) if (p[k] !== undefined) args[q] = p[k];
    if (Object.keys(args).length > 0) await this.execute('migrate-set-parameters', args);
  }

  /**
   * Start a migration. QEMU 7.2 has no `file:` URI: save to a file with
   * `exec:cat > /abs/path` (needs `-sandbox spawn=allow`). Returns at once; see waitMigration.
   */
  async migrate(uri: string): Promise<void> {
    await this.execute('migrate', { uri });
  }

  async migrateCancel(): Promise<void> {
    await this.execute('migrate_cancel');
  }

  async queryMigrate(): Promise<MigrationInfo> {
    const r = obj(await this.execute('query-migrate'));
    const info: MigrationInfo = { status: (str(r['status']) || 'none') as MigrationInfo['status'] };
    const t = optNum(r['total-time']);
    if (t !== undefined) info.totalTimeMs = t;
    const d = optNum(r['downtime']);
    if (d !== undefined) info.downtimeMs = d;
    const ed = optNum(r['expected-downtime']);
    if (ed !== undefined) info.expectedDowntimeMs = ed;
    const st = optNum(r['setup-time']);
    if (st !== undefined) info.setupTimeMs = st;
    if (typeof r['error-desc'] === 'string') info.errorDesc = r['error-desc'];
    if (r['ram'] !== undefined) {
      const ram = obj(r['ram']);
      info.ram = {
        transferred: num(ram['transferred']),
        remaining: num(ram['remaining']),
        total: num(ram['total']),
        mbps: num(ram['mbps']),
        dirtySyncCount: num(ram['dirty-sync-count']),
      };
    }
    return info;
  }

  /** Poll query-migrate until completed (resolve) or failed/cancelled (throw). */
  async waitMigration(timeoutMs = 60_000, pollMs = 50): Promise<MigrationInfo> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const info = await this.queryMigrate();
      if (info.status === 'completed') return info;
      if (info.status === 'failed' || info.status === 'cancelled') {
        throw new FailedPreconditionError(`Migration ${info.status}${info.errorDesc ? `: ${info.errorDesc}` : ''}`);
      }
      if (Date.now() >= deadline) throw new UnavailableError(`Migration not complete within ${timeoutMs} ms (status ${info.status})`);
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  // ---- block ----

  async queryBlock(): Promise<BlockDeviceInfo[]> {
    return arr(await this.execute('query-block')).map((v) => {
      const b = obj(v);
      const info: BlockDeviceInfo = { device: str(b['device']), locked: b['locked'] === true, removable: b['removable'] === true };
      if (typeof b['qdev'] === 'string') info.qdev = b['qdev'];
      if (b['inserted'] !== undefined) {
        const i = obj(b['inserted']);
        const img = obj(i['image']);
        info.inserted = {
          nodeName: str(i['node-name']),
          file: str(i['file']),
          driver: str(i['drv']),
          ro: i['ro'] === true,
          snapshots: arr(img['snapshots']).map((sv) => {
            const s = obj(sv);
            return { id: str(s['id']), name: str(s['name']), vmStateSize: num(s['vm-state-size']), dateSec: num(s['date-sec']) };
          }),
        };
        if (typeof i['backing_file'] === 'string') info.inserted.backingFile = i['backing_file'];
      }
      return info;
    });
  }

  async queryNamedBlockNodes(): Promise<BlockNodeInfo[]> {
    return arr(await this.execute('query-named-block-nodes', { flat: true })).map((v) => {
      const n = obj(v);
      const info: BlockNodeInfo = { nodeName: str(n['node-name']), driver: str(n['drv']), file: str(n['file']), ro: n['ro'] === true };
      if (typeof n['backing_file'] === 'string') info.backingFile = n['backing_file'];
      return info;
    });
  }

  /** External snapshot: create `snapshotFile` (absolute path) as a qcow2 overlay over node `nodeName` and switch the disk to it. */
  async blockdevSnapshotSync(nodeName: string, snapshotFile: string, snapshotNodeName: string): Promise<void> {
    if (!snapshotFile.startsWith('/')) throw new FailedPreconditionError(`Snapshot file must be an absolute path: ${snapshotFile}`);
    await this.execute('blockdev-snapshot-sync', {
      'node-name': nodeName,
      'snapshot-file': snapshotFile,
      'snapshot-node-name': snapshotNodeName,
      format: 'qcow2',
    });
  }

  /** `blockdev-add` with QEMU's own argument names, e.g. {driver:'qcow2', 'node-name':'d1', file:{driver:'file', filename}}. */
  async blockdevAdd(options: JsonObject): Promise<void> {
    await this.execute('blockdev-add', options);
  }

  async blockdevDel(nodeName: string): Promise<void> {
    await this.execute('blockdev-del', { 'node-name': nodeName });
  }

  /** `device_add` with QEMU's property names, e.g. {driver:'virtio-blk-pci', id:'vdb', drive:'d1'}. */
  async deviceAdd(options: { driver: string; id: string } & JsonObject): Promise<void> {
    await this.execute('device_add', options);
  }

  /**
   * Request device removal. PCI unplug needs the guest's cooperation: with
   * `waitMs` the call waits for DEVICE_DELETED and throws if it does not come.
   */
  async deviceDel(id: string, waitMs = 0): Promise<void> {
    const w = waitMs > 0 ? this.watchEvent('DEVICE_DELETED', (e) => e.data['device'] === id, waitMs) : null;
    try {
      await this.execute('device_del', { id });
    } catch (e) {
      w?.cancel();
      throw e;
    }
    if (w) await w.promise;
  }

  /** vCPU threads (host thread ids), e.g. to move them into a cgroup or pin them. */
  async queryCpusFast(): Promise<CpuInfoFast[]> {
    return arr(await this.execute('query-cpus-fast')).map((v) => {
      const c = obj(v);
      return { cpuIndex: num(c['cpu-index']), threadId: num(c['thread-id']), qomPath: str(c['qom-path']), target: str(c['target']) };
    });
  }

  // ---- HMP and snapshot jobs ----

  /** Run an HMP command; by default output that reads as an error throws HmpError. */
  async humanMonitorCommand(commandLine: string, options: { allowErrorText?: boolean; timeoutMs?: number } = {}): Promise<string> {
    const out = await this.execute('human-monitor-command', { 'command-line': commandLine }, options.timeoutMs ? { timeoutMs: options.timeoutMs } : {});
    const text = typeof out === 'string' ? out : '';
    if (!options.allowErrorText) {
      const m = HMP_ERROR.exec(text);
      if (m) {
        const line = text.slice(m.index).split('\n')[0]?.trim().replace(/^Error:\s*/, '') ?? text.trim();
        throw new HmpError(`HMP ${commandLine.split(' ')[0]} failed: ${line}`);
      }
    }
    return text;
  }

  async queryJobs(): Promise<JobInfo[]> {
    return arr(await this.execute('query-jobs')).map((v) => {
      const j = obj(v);
      const info: JobInfo = {
        id: str(j['id']),
        type: str(j['type']),
        status: str(j['status']) as JobInfo['status'],
        currentProgress: num(j['current-progress']),
        totalProgress: num(j['total-progress']),
      };
      if (typeof j['error'] === 'string') info.error = j['error'];
      return info;
    });
  }

  /**
   * Internal snapshot of RAM + all listed disks into qcow2 (QEMU's snapshot-save job).
   * `vmstateNode` holds the RAM; `devices` are block node names (Vessel uses the disk id).
   */
  async snapshotSave(tag: string, vmstateNode: string, devices: string[], timeoutMs = 120_000): Promise<void> {
    await this.#runJob('snapshot-save', { tag, vmstate: vmstateNode, devices }, timeoutMs);
  }

  async snapshotLoad(tag: string, vmstateNode: string, devices: string[], timeoutMs = 120_000): Promise<void> {
    await this.#runJob('snapshot-load', { tag, vmstate: vmstateNode, devices }, timeoutMs);
  }

  async snapshotDelete(tag: string, devices: string[], timeoutMs = 60_000): Promise<void> {
    await this.#runJob('snapshot-delete', { tag, devices }, timeoutMs);
  }

  /** Start a job, follow JOB_STATUS_CHANGE to `concluded`, read its error, dismiss it. */
  async #runJob(command: string, args: JsonObject, timeoutMs: number): Promise<void> {
    const jobId = `${command}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
    const w = this.watchEvent('JOB_STATUS_CHANGE', (e) => e.data['id'] === jobId && e.data['status'] === 'concluded', timeoutMs);
    try {
      await this.execute(command, { 'job-id': jobId, ...args });
    } catch (e) {
      w.cancel();
      throw e;
    }
    try {
      await w.promise;
    } catch (e) {
      // Timed out: leave no job behind.
      await this.execute('job-cancel', { id: jobId }).catch(() => {});
      throw new UnavailableError(`${command} ${String(args['tag'])}: job did not conclude within ${timeoutMs} ms`, { cause: e });
    }
    const job = (await this.queryJobs()).find((j) => j.id === jobId);
    await this.execute('job-dismiss', { id: jobId });
    if (!job) throw new InternalError(`${command}: job ${jobId} vanished`);
    if (job.error) throw new QmpJobError(`${command} ${String(args['tag'])} failed: ${job.error}`);
  }
}
