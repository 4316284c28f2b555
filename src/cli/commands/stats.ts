/**
 * `vessel stats`: one sample per container from GET /containers/{id}/stats
 * ?stream=0, turned into Docker's columns with Docker's arithmetic (CPU % from
 * the cpu/precpu deltas, memory without the page cache).
 */
import { connect, out, type Command, type CommandTable } from '../command.js';
import { pathName, renderListing, shortId, type Row } from '../format.js';
import { bytesSize, humanSize } from '../units.js';
import type { ContainerSummary } from './ps.js';

interface CpuStats {
  cpu_usage?: { total_usage?: number; percpu_usage?: number[] | null };
  system_cpu_usage?: number;
  online_cpus?: number;
}

export interface StatsSample {
  id?: string;
  name?: string;
  cpu_stats?: CpuStats;
  precpu_stats?: CpuStats;
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
  blkio_stats?: { io_service_bytes_recursive?: Array<{ op?: string; value?: number }> | null };
  pids_stats?: { current?: number };
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number }> | null;
}

/** (Δ container CPU / Δ system CPU) × number of CPUs × 100, or 0 without a usable previous sample. */
export function cpuPercent(s: StatsSample): number {
  const cur = s.cpu_stats ?? {};
  const pre = s.precpu_stats ?? {};
  const cpuDelta = (cur.cpu_usage?.total_usage ?? 0) - (pre.cpu_usage?.total_usage ?? 0);
  const systemDelta = (cur.system_cpu_usage ?? 0) - (pre.system_cpu_usage ?? 0);
  const cpus = cur.online_cpus || cur.cpu_usage?.percpu_usage?.length || 0;
  if (systemDelta > 0 && cpuDelta > 0) return (cpuDelta / systemDelta) * cpus * 100;
  return 0;
}

/** Usage minus inactive file cache (cgroup v1 `total_inactive_file`, v2 `inactive_file`). */
export function memoryUsage(s: StatsSample): number {
  const usage = s.memory_stats?.usage ?? 0;
  const st = s.memory_stats?.stats ?? {};
  const cache = st.total_inactive_file ?? st.inactive_file ?? 0;
  return cache < usage ? usage - cache : usage;
}

export function statsRow(s: StatsSample, fallbackName: string, noTrunc = false): Row {
  const mem = memoryUsage(s);
  const limit = s.memory_stats?.limit ?? 0;
  let rx = 0;
  let tx = 0;
  for (const n of Object.values(s.networks ?? {})) {
    rx += n.rx_bytes ?? 0;
    tx += n.tx_bytes ?? 0;
  }
  let read = 0;
  let write = 0;
  for (const e of s.blkio_stats?.io_service_bytes_recursive ?? []) {
    const op = (e.op ?? '').toLowerCase();
    if (op === 'read') read += e.value ?? 0;
    else if (op === 'write') write += e.value ?? 0;
  }
  const name = (s.name ?? '').replace(/^\//, '') || fallbackName;
  const id = s.id ?? '';
  return {
    BlockIO: `${humanSize(read)} / ${humanSize(write)}`,
    CPUPerc: `${cpuPercent(s).toFixed(2)}%`,
    Container: fallbackName,
    ID: noTrunc ? id : shortId(id),
    MemPerc: `${(limit > 0 ? (mem / limit) * 100 : 0).toFixed(2)}%`,
    MemUsage: `${bytesSize(mem)} / ${bytesSize(limit)}`,
    Name: name,
    NetIO: `${humanSize(rx)} / ${humanSize(tx)}`,
    PIDs: String(s.pids_stats?.current ?? 0),
  };
}

const COLUMNS = [
  ['CONTAINER ID', 'ID'],
  ['NAME', 'Name'],
  ['CPU %', 'CPUPerc'],
  ['MEM USAGE / LIMIT', 'MemUsage'],
  ['MEM %', 'MemPerc'],
  ['NET I/O', 'NetIO'],
  ['BLOCK I/O', 'BlockIO'],
  ['PIDS', 'PIDs'],
] as const;

const stats: Command = {
  usage: '[OPTIONS] [CONTAINER...]',
  summary: 'Display a live stream of container(s) resource usage statistics',
  flags: [
    { long: 'all', short: 'a', type: 'bool', help: 'Show all containers (default shows just running)' },
    { long: 'format', type: 'string', help: "Format output: 'table', 'json', or a Go template" },
    { long: 'no-stream', type: 'bool', help: 'Disable streaming stats and only pull the first result' },
    { long: 'no-trunc', type: 'bool', help: "Do not truncate output" },
  ],
  async run(ctx, args) {
    const client = connect(ctx);
    let names = args.positionals;
    if (names.length === 0) {
      const list = await client.json<ContainerSummary[]>('GET', '/containers/json', { query: { all: args.bool('all') || undefined } });
      names = list.map((c) => c.Id);
    }
    const sample = async (): Promise<Row[]> =>
      Promise.all(
        names.map(async (n) => {
          const s = await client.json<StatsSample>('GET', `/containers/${pathName(n)}/stats`, { query: { stream: false } });
          return statsRow(s, n, args.bool('no-trunc'));
        }),
      );
    const render = (rows: Row[]) => renderListing(rows, args.str('format'), COLUMNS);
    if (args.bool('no-stream')) {
      await out(render(await sample()));
      return 0;
    }
    // Streaming: redraw a sample at a time. Each stream=0 call takes about a
    // second on the daemon (it measures a CPU delta), which paces the loop.
    const tty = process.stdout.isTTY;
    for (;;) {
      const started = Date.now();
      const text = render(await sample());
      await out(tty ? `\x1b[2J\x1b[H${text}` : text);
      const elapsed = Date.now() - started;
      if (elapsed < 1000) await new Promise((r) => setTimeout(r, 1000 - elapsed));
    }
  },
};

export const commands: CommandTable = { stats };
