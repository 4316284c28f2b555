/**
 * `bench/density [--count N] [--json]`
 *
 * Starts N `vessel run -d busybox sleep 3600` containers on a private daemon
 * and measures what each costs the host beyond the workload itself:
 *
 *   per container = ((MemTotal − MemAvailable) after − before − Σ PSS of the
 *                    containers' own processes) / N
 *
 * plus Σ conmon PSS / N, the kernel-side growth (unreclaimable slab, kernel
 * stacks, page tables, per-cpu) / N, and the daemon's RSS before and after.
 * Then removes them all with one `vessel rm -f`, times it, and checks that no
 * conmon, mount, cgroup or runtime state is left. Caches are not dropped:
 * MemAvailable already discounts reclaimable page cache.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  BenchDaemon,
  loadAverage,
  machineLine,
  meminfo,
  MiB,
  note,
  procStatusKb,
  r1,
  r2,
  requireRoot,
  parseBenchFlags,
  runMain,
  sleep,
  smapsRollup,
  summarize,
  toolVersion,
} from './lib.js';

const USAGE = `Usage: bench/density [--count N] [--json]

  --count N   containers to start (default 100)
  --json      print a machine-readable summary on stdout (progress goes to stderr)
`;

const GOAL_MIB = 2;

function parseArgs(argv: string[]): { count: number; json: boolean } {
  const count = { key: 'count', int: [1, 10_000] } as const;
  return parseBenchFlags(argv, USAGE, { count: 100, json: false }, { '--count': count, '-n': count, '--json': { key: 'json', set: true } });
}

/** Fields sampled from /proc/meminfo (KiB). `Used` = MemTotal − MemAvailable. */
const FIELDS = ['Used', 'SUnreclaim', 'SReclaimable', 'KernelStack', 'PageTables', 'Percpu', 'Shmem', 'AnonPages'] as const;
type Mem = Record<(typeof FIELDS)[number], number>;

interface Probe extends Mem {
  /** Σ Anonymous of the processes that are ours to count: the daemon, its conmons, the containers' processes. */
  ourAnon: number;
  /**
   * Used, minus what other processes on a shared machine changed in the
   * meantime: their anonymous memory (AnonPages − ourAnon) and all shmem
   * (the containers' /dev and /dev/shm tmpfs hold no data here).
   */
  U: number;
}

/** Medians of several /proc/meminfo samples (damping short spikes), plus our own anonymous memory. */
async function probe(ours: () => number[], samples: number, gapMs = 120): Promise<Probe> {
  const rows: Mem[] = [];
  let ourAnon = 0;
  for (let i = 0; i < samples; i++) {
    const m = meminfo();
    rows.push({
      Used: (m.MemTotal ?? 0) - (m.MemAvailable ?? 0),
      SUnreclaim: m.SUnreclaim ?? 0,
      SReclaimable: m.SReclaimable ?? 0,
      KernelStack: m.KernelStack ?? 0,
      PageTables: m.PageTables ?? 0,
      Percpu: m.Percpu ?? 0,
      Shmem: m.Shmem ?? 0,
      AnonPages: m.AnonPages ?? 0,
    });
    if (i === Math.floor(samples / 2)) ourAnon = ours().reduce((a, p) => a + smapsRollup(p, 'Anonymous'), 0);
    if (i < samples - 1) await sleep(gapMs);
  }
  const out = {} as Probe;
  for (const f of FIELDS) out[f] = summarize(rows.map((r) => r[f])).median;
  out.ourAnon = ourAnon;
  out.U = out.Used - (out.AnonPages - ourAnon) - out.Shmem;
  return out;
}

/** Bytes held by each slab cache (active objects × object size), from /proc/slabinfo; empty if unreadable. */
function slabBytes(): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const line of readFileSync('/proc/slabinfo', 'utf8').split('\n').slice(2)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4) continue;
      out.set(f[0]!, Number(f[1]) * Number(f[3]));
    }
  } catch {
    /* not readable */
  }
  return out;
}

/** The caches that grew most between two slabBytes() readings, KiB per container. */
function topSlabGrowth(a: Map<string, number>, b: Map<string, number>, n: number, top = 6): Array<{ cache: string; kibPerContainer: number }> {
  return [...b.entries()]
    .map(([k, v]) => ({ cache: k, d: v - (a.get(k) ?? 0) }))
    .sort((x, y) => y.d - x.d)
    .slice(0, top)
    .map((x) => ({ cache: x.cache, kibPerContainer: Math.round((x.d / 1024 / n) * 10) / 10 }));
}

/** Least-squares slope of y over x. */
function slope(points: Array<[number, number]>): number {
  const n = points.length;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den ? num / den : NaN;
}

/** Every pid whose cgroup (memory or pids controller) path lies under `parent`. */
function pidsInCgroupParent(parent: string): number[] {
  const out: number[] = [];
  for (const base of ['/sys/fs/cgroup/pids', '/sys/fs/cgroup/memory', '/sys/fs/cgroup']) {
    const dir = path.join(base, parent);
    let subdirs: string[];
    try {
      subdirs = readdirSync(dir);
    } catch {
      continue;
    }
    for (const s of subdirs) {
      try {
        for (const p of readFileSync(path.join(dir, s, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) out.push(Number(p));
      } catch {
        /* not a cgroup dir */
      }
    }
    if (out.length) break;
  }
  return [...new Set(out)];
}

/** Σ of a memory-cgroup file over the containers' cgroups under `parent` (v1), bytes; null if absent. */
function sumCgroupFile(parent: string, file: string): number | null {
  const dir = path.join('/sys/fs/cgroup/memory', parent);
  let total = 0;
  let seen = false;
  try {
    for (const s of readdirSync(dir)) {
      try {
        total += Number(readFileSync(path.join(dir, s, file), 'utf8').trim());
        seen = true;
      } catch {
        /* not a cgroup */
      }
    }
  } catch {
    return null;
  }
  return seen ? total : null;
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  requireRoot();
  const N = opts.count;
  const loadStart = loadAverage();
  note(`density: ${N} × vessel run -d busybox sleep 3600`);
  note(`machine: ${machineLine()}; load average ${loadStart}`);

  const d = new BenchDaemon();
  note('starting a private vesseld');
  await d.start();
  note('bootstrapping busybox into it');
  await d.bootstrapBusybox();

  // Warm the daemon's code paths (first container start, first removal) before the baseline.
  for (let i = 0; i < 2; i++) {
    const id = (await d.ok(['run', '-d', 'busybox', 'sleep', '3600'])).trim();
    await d.ok(['rm', '-f', id]);
  }
  await sleep(500);

  const ours = () => [d.pid, ...d.conmonPids(), ...pidsInCgroupParent(d.cgroupParent)];
  const daemonRssBefore = procStatusKb(d.pid, 'VmRSS');
  const daemonPssBefore = smapsRollup(d.pid, 'Pss');
  const slabBefore = slabBytes();
  const before = await probe(ours, 9);
  note(`baseline: used ${r1(before.Used / MiB)} MiB, daemon RSS ${r1(daemonRssBefore / MiB)} MiB`);
  const step = Math.max(1, Math.round(N / 10));
  const checkpoints: Array<[number, number]> = [[0, before.U]];

  // ---- start N ------------------------------------------------------------------
  const ids: string[] = [];
  const runMs: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const r = await d.cli(['run', '-d', 'busybox', 'sleep', '3600']);
    if (r.code !== 0) throw new Error(`vessel run -d (container ${i + 1}) exited ${r.code}: ${r.stderr.trim()}`);
    ids.push(r.stdout.trim());
    runMs.push(r.ms);
    if ((i + 1) % step === 0 && i + 1 < N) {
      const cp = await probe(ours, 3, 80);
      checkpoints.push([i + 1, cp.U]);
      note(`started ${i + 1}/${N} (last run -d ${r.ms.toFixed(0)} ms; adjusted used +${r1((cp.U - before.U) / MiB)} MiB)`);
    }
  }
  const startAllMs = performance.now() - t0;
  await sleep(2000); // let conmon and the daemon settle
  const after = await probe(ours, 9);
  const slabAfter = slabBytes();
  checkpoints.push([N, after.U]);
  const daemonRssAfter = procStatusKb(d.pid, 'VmRSS');
  const daemonPssAfter = smapsRollup(d.pid, 'Pss');

  // ---- per-process accounting -------------------------------------------------------
  const workloadPids: number[] = [];
  let notRunning = 0;
  for (const id of ids) {
    const info = await d.api.ok<{ State: { Pid: number; Running: boolean } }>('GET', `/containers/${id}/json`);
    if (!info.State.Running || !info.State.Pid) notRunning++;
    else workloadPids.push(info.State.Pid);
  }
  // Anything else living in the containers' cgroups (there should be nothing but sleep).
  const cgPids = pidsInCgroupParent(d.cgroupParent);
  const allWorkload = [...new Set([...workloadPids, ...cgPids])];
  const workloadPss = allWorkload.reduce((a, p) => a + smapsRollup(p, 'Pss'), 0);
  const workloadRss = allWorkload.reduce((a, p) => a + smapsRollup(p, 'Rss'), 0);
  const conmons = d.conmonPids();
  const conmonPss = conmons.reduce((a, p) => a + smapsRollup(p, 'Pss'), 0);
  const conmonRss = conmons.reduce((a, p) => a + smapsRollup(p, 'Rss'), 0);
  const kmemCharged = sumCgroupFile(d.cgroupParent, 'memory.kmem.usage_in_bytes');
  const memCharged = sumCgroupFile(d.cgroupParent, 'memory.usage_in_bytes');

  const delta = (f: keyof Probe) => after[f] - before[f];
  const perBeyondRaw = (delta('Used') - workloadPss) / N; // KiB, the plain formula
  const perBeyond = (delta('U') - workloadPss) / N; // KiB, others' anon/shmem churn taken out
  const perBeyondSlope = slope(checkpoints) - workloadPss / N;
  const othersChurn = delta('Used') - delta('U');
  const kernel = delta('SUnreclaim') + delta('KernelStack') + delta('PageTables') + delta('Percpu');
  const accounted = conmonPss + kernel + (daemonPssAfter - daemonPssBefore);

  // ---- remove them all ------------------------------------------------------------------
  note(`removing ${ids.length} containers with one vessel rm -f`);
  const rm = await d.cli(['rm', '-f', ...ids], { timeoutMs: 600_000 });
  if (rm.code !== 0) note(`vessel rm -f exited ${rm.code}: ${rm.stderr.trim().slice(0, 2000)}`);
  await sleep(500);
  const left = {
    containers: (await d.cli(['ps', '-aq'])).stdout.split('\n').filter(Boolean).length,
    conmons: d.conmonPids().length,
    mounts: d.mounts().filter((m) => m.includes('/containers/')).length,
    cgroups: d.cgroups().length,
    runtimeState: d.runtimeState().length,
  };
  const clean = Object.values(left).every((v) => v === 0);
  const daemonRssEnd = procStatusKb(d.pid, 'VmRSS');
  const loadEnd = loadAverage();

  const runStats = summarize(runMs);
  const mib = (kib: number) => r2(kib / MiB);
  const summary = {
    date: new Date().toISOString(),
    machine: machineLine(),
    tools: { runc: toolVersion('runc', ['--version']), conmon: toolVersion('conmon', ['--version']) },
    loadAverage: { start: loadStart, end: loadEnd },
    count: N,
    notRunning,
    unit: 'MiB',
    perContainerBeyondWorkload: mib(perBeyond),
    perContainerBeyondWorkloadRaw: mib(perBeyondRaw),
    perContainerBeyondWorkloadSlope: mib(perBeyondSlope),
    othersAnonShmemChurn: mib(othersChurn),
    checkpoints: checkpoints.map(([k, u]) => [k, mib(u - before.U)]),
    goal: GOAL_MIB,
    pass: perBeyond / MiB <= GOAL_MIB,
    crossCheckPass: accounted / N / MiB <= GOAL_MIB,
    noisy: Math.abs(perBeyond - accounted / N) / MiB > 0.5,
    breakdownPerContainer: {
      conmonPss: mib(conmonPss / N),
      conmonRss: mib(conmonRss / N),
      kernel: mib(kernel / N),
      topSlabGrowthKiB: topSlabGrowth(slabBefore, slabAfter, N),
      kernelParts: {
        SUnreclaim: mib(delta('SUnreclaim') / N),
        KernelStack: mib(delta('KernelStack') / N),
        PageTables: mib(delta('PageTables') / N),
        Percpu: mib(delta('Percpu') / N),
      },
      daemonPssGrowth: mib((daemonPssAfter - daemonPssBefore) / N),
      accounted: mib(accounted / N),
      reclaimableSlab: mib(delta('SReclaimable') / N),
      shmem: mib(delta('Shmem') / N),
      memcgKmemCharged: kmemCharged === null ? null : mib(kmemCharged / 1024 / N),
      memcgUsageCharged: memCharged === null ? null : mib(memCharged / 1024 / N),
    },
    workload: { processes: allWorkload.length, pssPerContainer: mib(workloadPss / N), rssPerContainer: mib(workloadRss / N) },
    hostUsed: { before: mib(before.Used), after: mib(after.Used), delta: mib(delta('Used')), adjustedDelta: mib(delta('U')) },
    daemonRss: { before: mib(daemonRssBefore), after: mib(daemonRssAfter), afterRemoval: mib(daemonRssEnd) },
    timing: {
      runDetachedMs: { median: r1(runStats.median), p10: r1(runStats.p10), p90: r1(runStats.p90) },
      startAllMs: Math.round(startAllMs),
      rmForceAllMs: Math.round(rm.ms),
      rmForcePerContainerMs: r1(rm.ms / N),
      rmExit: rm.code,
    },
    leftovers: left,
    clean,
  };

  if (opts.json) {
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    return clean ? 0 : 1;
  }
  const b = summary.breakdownPerContainer;
  const o: string[] = [];
  o.push('');
  o.push(`Vessel density: ${N} × vessel run -d busybox sleep 3600${notRunning ? ` (${notRunning} not running!)` : ''}`);
  o.push(`machine: ${summary.machine}; load average ${loadStart} → ${loadEnd}`);
  o.push('');
  o.push(`host used (MemTotal − MemAvailable): ${summary.hostUsed.before} → ${summary.hostUsed.after} MiB (Δ ${summary.hostUsed.delta} MiB)`);
  o.push(
    `other processes' anonymous memory + shmem changed by ${summary.othersAnonShmemChurn} MiB meanwhile; without it Δ ${summary.hostUsed.adjustedDelta} MiB`,
  );
  o.push(`workload (${allWorkload.length} processes in the containers' cgroups): PSS ${summary.workload.pssPerContainer} MiB/container (RSS ${summary.workload.rssPerContainer})`);
  o.push('');
  o.push(
    `per container beyond the workload: ${summary.perContainerBeyondWorkload.toFixed(2)} MiB   goal ≤ ${GOAL_MIB} MiB: ${summary.pass ? 'PASS' : 'MISS'}` +
      `   (cross-check, sum of parts ${b.accounted.toFixed(2)} MiB: ${b.accounted <= GOAL_MIB ? 'PASS' : 'MISS'})`,
  );
  o.push(`  (MemAvailable Δ less the others' churn, less the workload's PSS, / ${N}; plain formula without the churn correction: ${summary.perContainerBeyondWorkloadRaw.toFixed(2)} MiB;`);
  o.push(`   slope over ${checkpoints.length} checkpoints: ${summary.perContainerBeyondWorkloadSlope.toFixed(2)} MiB)`);
  const disagreement = Math.abs(summary.perContainerBeyondWorkload - b.accounted);
  if (disagreement > 0.5) {
    o.push(
      `  WARNING: noisy: the MemAvailable figure and the sum of parts differ by ${disagreement.toFixed(2)} MiB/container; other processes moved host memory. Rerun with a larger --count or on a quieter machine.`,
    );
  }
  o.push(`  conmon PSS            ${b.conmonPss.toFixed(2)} MiB/container (RSS ${b.conmonRss.toFixed(2)})`);
  o.push(
    `  kernel (estimate)     ${b.kernel.toFixed(2)} MiB/container = unreclaimable slab ${b.kernelParts.SUnreclaim} + kernel stacks ${b.kernelParts.KernelStack} + page tables ${b.kernelParts.PageTables} + per-cpu ${b.kernelParts.Percpu}`,
  );
  if (b.topSlabGrowthKiB.length) {
    o.push(`    slab caches that grew most, reclaimable or not (KiB/container): ${b.topSlabGrowthKiB.map((x) => `${x.cache} ${x.kibPerContainer}`).join(', ')}`);
  }
  o.push(`  daemon PSS growth     ${b.daemonPssGrowth.toFixed(2)} MiB/container`);
  o.push(`  sum of the above      ${b.accounted.toFixed(2)} MiB/container (cross-check of the MemAvailable figure, which also moves with other processes)`);
  o.push(
    `  not counted above: reclaimable slab Δ ${b.reclaimableSlab} MiB/container (dentries/inodes), shmem Δ ${b.shmem}` +
      (b.memcgKmemCharged !== null ? `; memcg kmem charged ${b.memcgKmemCharged}, memcg usage ${b.memcgUsageCharged} MiB/container` : ''),
  );
  o.push(`daemon RSS: ${summary.daemonRss.before} MiB before → ${summary.daemonRss.after} MiB with ${N} containers → ${summary.daemonRss.afterRemoval} MiB after removal`);
  o.push('');
  o.push(
    `vessel run -d: median ${summary.timing.runDetachedMs.median} ms (p10 ${summary.timing.runDetachedMs.p10}, p90 ${summary.timing.runDetachedMs.p90}); all ${N}: ${(startAllMs / 1000).toFixed(1)} s`,
  );
  o.push(`vessel rm -f (all ${N} in one call): ${(rm.ms / 1000).toFixed(2)} s = ${summary.timing.rmForcePerContainerMs} ms/container${rm.code ? ` (exit ${rm.code})` : ''}`);
  o.push(
    `leftovers after rm -f: containers ${left.containers}, conmon ${left.conmons}, mounts ${left.mounts}, cgroups ${left.cgroups}, runtime state ${left.runtimeState}: ${clean ? 'CLEAN' : 'NOT CLEAN'}`,
  );
  o.push('note: caches are not dropped; MemAvailable discounts reclaimable page cache, and each figure is the median of 9 samples. Other processes on a shared machine move it too: compare with the "sum of the above" line.');
  process.stdout.write(`${o.join('\n')}\n`);
  return clean ? 0 : 1;
}

runMain(main);
