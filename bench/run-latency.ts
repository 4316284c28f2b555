/**
 * `bench/run-latency [--runs N] [--warmup K] [--json] [--no-podman]`
 *
 * Side-by-side latency of starting a `busybox true` container, interleaved
 * round-robin so that drift on a noisy machine hits every variant equally:
 *
 *   (a) `vessel run --rm busybox true`: the real CLI process, wall time;
 *   (b) the daemon's share: what `docker run --rm` sends through the Docker
 *       API (create with HostConfig.AutoRemove, wait(condition=removed) issued
 *       before start, start; the wait answers once the daemon has removed the
 *       container), from one keep-alive client in this process; this is also
 *       the daemon's part of (a);
 *   (g) the same container started and removed with four requests: create,
 *       wait(next-exit), start, then DELETE once it exited;
 *   (c) `runc run` of the bundle vessel generates (same config.json: seccomp,
 *       capabilities, mounts, namespaces, a unique cgroup) on an overlay
 *       mount of the same image layer: the floor;
 *   (d) `node -e 0`: the floor of any Node CLI;
 *   (e) `podman run --rm --runtime runc --network none ...` of the same rootfs;
 *   (f) only when NODE_EXTRA_CA_CERTS is set: `node -e 0` without it, which
 *       is how bin/vessel starts node (the CLI does no TLS).
 *
 * Prints medians and p10/p90 and the ratios (b)/(c), (g)/(c), (a)/((c)+(d)), (a)/(e)
 * (and (a)/((c)+(f))) against their goals. Everything it makes is removed at the end, also on
 * Ctrl-C or failure.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  Api,
  BenchDaemon,
  execOk,
  execTimed,
  loadAverage,
  machineLine,
  note,
  onCleanup,
  r1,
  r2,
  removeCgroupTree,
  requireRoot,
  parseBenchFlags,
  runMain,
  summarize,
  toolVersion,
  VESSEL,
  tryInstallTool,
  which,
  type StartedLine,
  type Summary,
} from './lib.js';

const USAGE = `Usage: bench/run-latency [--runs N] [--warmup K] [--json] [--no-podman]

  --runs N      measured rounds (default 40; each round runs every variant once). runc alone
                moves by ±5 ms between runs here, so fewer rounds make the ratios jumpy
  --warmup K    rounds run first and discarded (default 2)
  --json        print a machine-readable summary on stdout (progress goes to stderr)
  --no-podman   skip variant (e) (podman is otherwise installed with apt-get if missing)
`;

const PODMAN_FLAGS = ['--runtime', 'runc', '--network', 'none', '--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=32768:32768'];

interface Options {
  runs: number;
  warmup: number;
  json: boolean;
  podman: boolean;
}

function parseArgs(argv: string[]): Options {
  const runs = { key: 'runs', int: [1, 10_000] } as const;
  return parseBenchFlags(argv, USAGE, { runs: 40, warmup: 2, json: false, podman: true }, {
    '--runs': runs,
    '-n': runs,
    '--warmup': { key: 'warmup', int: [0, 1000] },
    '--json': { key: 'json', set: true },
    '--no-podman': { key: 'podman', set: false },
  });
}

type Key = 'a' | 'b' | 'c' | 'd' | 'e' | 'f' | 'g';

interface Variant {
  key: Key;
  label: string;
  command: string;
  run: () => Promise<number>;
}

interface BPhases {
  create: number;
  waitHeaders: number;
  start: number;
  exit: number;
  remove: number;
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  requireRoot();
  const runc = which('runc');
  if (!runc) throw new Error('runc not found (npm run setup installs it)');
  const podman = opts.podman ? tryInstallTool('podman', 'podman', 'for variant (e)') : null;
  if (opts.podman && !podman) note('podman could not be installed: variant (e) and the (a)/(e) ratio are skipped');

  const loadStart = loadAverage();
  note(`run-latency: ${opts.runs} rounds + ${opts.warmup} warm-up, variants interleaved round-robin`);
  note(`machine: ${machineLine()}; load average ${loadStart}`);

  // ---- a private daemon with busybox --------------------------------------------
  const d = new BenchDaemon();
  note('starting a private vesseld');
  await d.start();
  note('bootstrapping busybox into it');
  await d.bootstrapBusybox();
  const api = new Api(d.socket);
  onCleanup('api agent', () => api.close());

  // ---- (c) the runc bundle, from the config.json vessel generates ----------------
  const cid = (await d.ok(['create', '--network', 'none', 'busybox', 'true'])).trim();
  await d.ok(['start', cid]);
  await d.ok(['wait', cid]);
  const bench = path.join(d.dir, 'runc');
  const bundle = path.join(bench, 'bundle');
  // runc's state where vessel keeps its own (the daemon's exec root: a tmpfs when there is
  // one, as runc's default /run/runc is on most hosts), so neither pays disk inodes for it.
  const runcRoot = mkdtempSync(path.join(path.dirname(d.execRoot), 'vessel-bench-runc-'));
  onCleanup('runc state dir', () => rmSync(runcRoot, { recursive: true, force: true }));
  mkdirSync(bundle, { recursive: true });
  const spec = JSON.parse(readFileSync(d.specFile(cid), 'utf8')) as {
    root: { path: string };
    mounts: Array<{ destination: string; source: string; type: string }>;
    linux: { cgroupsPath?: string };
  };
  const etcKept: string[] = [];
  spec.mounts = spec.mounts.filter((m) => {
    if (!['/etc/hostname', '/etc/hosts', '/etc/resolv.conf'].includes(m.destination)) return true;
    const base = path.basename(m.source);
    if (!existsSync(m.source)) return false; // source gone: drop the bind, as the brief allows
    copyFileSync(m.source, path.join(bundle, base));
    m.source = path.join(bundle, base);
    etcKept.push(m.destination);
    return true;
  });
  await d.ok(['rm', cid]);
  const inspect = JSON.parse(await d.ok(['image', 'inspect', 'busybox'])) as Array<{ GraphDriver?: { Data?: { LowerDir?: string } } }>;
  const lower = inspect[0]?.GraphDriver?.Data?.LowerDir || path.join(d.stateRoot, 'l', '1');
  const rootfs = path.join(bundle, 'rootfs');
  for (const dir of [rootfs, path.join(bench, 'upper'), path.join(bench, 'work')]) mkdirSync(dir, { recursive: true });
  // The same kind of root the daemon gives a container: overlay, image layer(s) read-only below an empty upper.
  await execOk('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${bench}/upper,workdir=${bench}/work`, rootfs]);
  onCleanup('runc bundle rootfs', () => {
    spawnSync('umount', ['-l', rootfs], { stdio: 'ignore' });
  });
  spec.root.path = rootfs;
  const runcCgroupParent = `/vessel-bench-${process.pid}`;
  onCleanup('runc containers', () => {
    const list = spawnSync(runc, ['--root', runcRoot, 'list', '-q'], { encoding: 'utf8' });
    for (const id of (list.stdout ?? '').split('\n').filter(Boolean)) {
      spawnSync(runc, ['--root', runcRoot, 'delete', '--force', id], { stdio: 'ignore' });
    }
    removeCgroupTree(runcCgroupParent);
  });
  let runcSeq = 0;

  // ---- (e) the same rootfs imported into podman -----------------------------------
  let podmanImage = '';
  const podmanLabelArgs: string[] = [];
  if (podman) {
    const tar = path.join(d.dir, 'busybox-rootfs.tar');
    await execOk('tar', ['-C', rootfs, '-cf', tar, '.']);
    podmanImage = `localhost/vessel-bench-busybox:${process.pid}`;
    const label = `vessel-bench=${process.pid}`;
    onCleanup('podman image', () => {
      const ps = spawnSync(podman, ['ps', '-aq', '--filter', `label=${label}`], { encoding: 'utf8' });
      const ids = (ps.stdout ?? '').split('\n').filter(Boolean);
      if (ids.length) spawnSync(podman, ['rm', '-f', ...ids], { stdio: 'ignore' });
      spawnSync(podman, ['rmi', '-f', podmanImage], { stdio: 'ignore' });
    });
    note(`importing the busybox rootfs into podman as ${podmanImage}`);
    await execOk(podman, ['import', '-q', tar, podmanImage], { timeoutMs: 120_000 });
    podmanLabelArgs.push('--label', label);
  }

  // ---- the variants -------------------------------------------------------------
  const bPhases: Record<'b' | 'g', BPhases[]> = { b: [], g: [] };
  const started: Record<'a' | 'b' | 'g', StartedLine[]> = { a: [], b: [], g: [] };
  let recordPhases = false;

  const fail = (what: string, r: { code: number; stderr: string; stdout: string }) =>
    new Error(`${what} exited ${r.code}\nstdout: ${r.stdout.trim()}\nstderr: ${r.stderr.trim()}`);

  const withStarted = async (key: 'a' | 'b' | 'g', fn: () => Promise<number>) => {
    const from = d.log.length;
    const ms = await fn();
    if (recordPhases) {
      // The daemon logs after runc start returns; give the log pipe a moment to deliver it.
      for (let i = 0; i < 20 && d.startedLines(from).length === 0; i++) await new Promise((r) => setTimeout(r, 5));
      started[key].push(...d.startedLines(from).slice(0, 1));
    }
    return ms;
  };

  /**
   * One `busybox true` through the API, the way a Docker client runs it: (b)
   * as `docker run --rm` (AutoRemove, wait for `removed`), (g) with a wait for
   * the exit and an explicit DELETE. Returns the milliseconds from create on.
   */
  const apiRun = async (key: 'b' | 'g'): Promise<number> => {
    const autoRemove = key === 'b';
    const t0 = performance.now();
    const created = await api.ok<{ Id: string }>('POST', '/containers/create', {
      Image: 'busybox',
      Cmd: ['true'],
      HostConfig: { NetworkMode: 'none', ...(autoRemove ? { AutoRemove: true } : {}) },
    });
    const t1 = performance.now();
    const waitRes = await api.begin('POST', `/containers/${created.Id}/wait?condition=${autoRemove ? 'removed' : 'next-exit'}`);
    const waitBody = Api.readBody(waitRes);
    waitBody.catch(() => undefined); // awaited below; do not let an early failure go unhandled
    if (waitRes.statusCode !== 200) throw new Error(`wait: HTTP ${waitRes.statusCode}: ${await waitBody}`);
    const t2 = performance.now();
    await api.ok('POST', `/containers/${created.Id}/start`);
    const t3 = performance.now();
    const status = JSON.parse(await waitBody) as { StatusCode: number; Error?: { Message?: string } | null };
    const t4 = performance.now();
    if (status.StatusCode !== 0) throw new Error(`busybox true exited ${status.StatusCode} ${status.Error?.Message ?? ''}`);
    if (!autoRemove) await api.ok('DELETE', `/containers/${created.Id}`);
    const t5 = performance.now();
    if (recordPhases) bPhases[key].push({ create: t1 - t0, waitHeaders: t2 - t1, start: t3 - t2, exit: t4 - t3, remove: t5 - t4 });
    return t5 - t0;
  };

  const variants: Variant[] = [
    {
      key: 'a',
      label: 'vessel run --rm busybox true (CLI, end to end)',
      command: `${VESSEL} --host ${d.host} run --rm busybox true`,
      run: () =>
        withStarted('a', async () => {
          const r = await execTimed(VESSEL, ['--host', d.host, 'run', '--rm', '--network', 'none', 'busybox', 'true']);
          if (r.code !== 0) throw fail('vessel run --rm busybox true', r);
          return r.ms;
        }),
    },
    {
      key: 'b',
      label: "daemon: docker run --rm's requests via API",
      command: 'POST /containers/create (HostConfig.AutoRemove); POST /wait?condition=removed; POST /start; (wait body once removed)',
      run: () => withStarted('b', () => apiRun('b')),
    },
    {
      key: 'g',
      label: 'daemon: create+wait+start+exit, then DELETE',
      command: 'POST /containers/create; POST /wait?condition=next-exit; POST /start; (wait body); DELETE /containers/{id}',
      run: () => withStarted('g', () => apiRun('g')),
    },
    {
      key: 'c',
      label: 'runc run, vessel\'s config.json (floor)',
      command: `${runc} --root ${runcRoot} run --bundle ${bundle} <unique id>  (stdin/stdout /dev/null)`,
      run: async () => {
        const id = `vbench-${process.pid}-${++runcSeq}`;
        spec.linux.cgroupsPath = `${runcCgroupParent}/${id}`;
        writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec));
        const r = await execTimed(runc, ['--root', runcRoot, 'run', '--bundle', bundle, id]);
        if (r.code !== 0) throw fail(`runc run ${id}`, r);
        return r.ms;
      },
    },
    {
      key: 'd',
      label: 'node -e 0',
      command: `${process.execPath} -e 0`,
      run: async () => {
        const r = await execTimed(process.execPath, ['-e', '0']);
        if (r.code !== 0) throw fail('node -e 0', r);
        return r.ms;
      },
    },
  ];
  // bin/vessel starts node without NODE_EXTRA_CA_CERTS (the CLI does no TLS):
  // when the variable is set here, node's own floor without it is (f).
  const caVar = process.env.NODE_EXTRA_CA_CERTS;
  if (caVar) {
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    variants.push({
      key: 'f',
      label: 'node -e 0, without NODE_EXTRA_CA_CERTS',
      command: `env -u NODE_EXTRA_CA_CERTS ${process.execPath} -e 0`,
      run: async () => {
        const r = await execTimed(process.execPath, ['-e', '0'], { env });
        if (r.code !== 0) throw fail('node -e 0', r);
        return r.ms;
      },
    });
  }
  if (podman) {
    variants.push({
      key: 'e',
      label: 'podman run --rm (runc, --network none)',
      command: `podman run --rm ${PODMAN_FLAGS.join(' ')} ${podmanImage} true`,
      run: async () => {
        const r = await execTimed(podman, ['run', '--rm', ...PODMAN_FLAGS, ...podmanLabelArgs, podmanImage, 'true']);
        if (r.code !== 0) throw fail('podman run --rm', r);
        return r.ms;
      },
    });
  }

  // ---- rounds ---------------------------------------------------------------------
  const samples: Record<string, number[]> = Object.fromEntries(variants.map((v) => [v.key, []]));
  const total = opts.warmup + opts.runs;
  for (let round = 0; round < total; round++) {
    const measured = round >= opts.warmup;
    recordPhases = measured;
    // Rotate which variant goes first so none always follows the same neighbour.
    const order = variants.map((_, i) => variants[(i + round) % variants.length]!);
    const line: string[] = [];
    for (const v of order) {
      const ms = await v.run();
      if (measured) samples[v.key]!.push(ms);
      line.push(`${v.key}=${ms.toFixed(0)}`);
    }
    note(`${measured ? `round ${round - opts.warmup + 1}/${opts.runs}` : `warm-up ${round + 1}/${opts.warmup}`}: ${line.sort().join(' ')} ms`);
  }
  const loadEnd = loadAverage();

  // ---- results ----------------------------------------------------------------------
  const stats: Record<string, Summary> = {};
  for (const v of variants) stats[v.key] = summarize(samples[v.key]!);
  const med = (k: Key) => stats[k]?.median ?? NaN;
  const ratios = [
    { name: '(b)/(c)', what: "daemon share of run --rm vs runc floor", value: med('b') / med('c'), goal: 1.3, stretch: null as number | null },
    { name: '(g)/(c)', what: 'the same with an explicit DELETE', value: med('g') / med('c'), goal: 1.3, stretch: null },
    { name: '(a)/((c)+(d))', what: 'CLI end to end vs runc + node floors', value: med('a') / (med('c') + med('d')), goal: 1.5, stretch: null },
    ...(caVar
      ? [{ name: '(a)/((c)+(f))', what: 'the same against the node floor the CLI starts from', value: med('a') / (med('c') + med('f')), goal: 1.5, stretch: null }]
      : []),
    ...(podman ? [{ name: '(a)/(e)', what: 'vessel vs podman', value: med('a') / med('e'), goal: 0.8, stretch: 0.6 as number | null }] : []),
  ].map((r) => ({ ...r, value: r2(r.value), pass: r.value <= r.goal, stretchPass: r.stretch === null ? null : r.value <= r.stretch }));

  // Each round measures every variant once, back to back: the per-round ratio
  // cancels most of the load drift that moves both medians between runs.
  const paired = (num: Key, den: Key) => {
    const xs = samples[num]!.map((v, i) => v / samples[den]![i]!).filter((x) => Number.isFinite(x));
    const st = summarize(xs);
    return { name: `(${num})/(${den})`, median: r2(st.median), p10: r2(st.p10), p90: r2(st.p90) };
  };
  const pairedRatios = [paired('b', 'c'), paired('g', 'c')];
  const phase = (v: 'b' | 'g', k: keyof BPhases) => r1(summarize(bPhases[v].map((p) => p[k])).median);
  const daemonPhase = (key: 'a' | 'b' | 'g', k: keyof StartedLine) => r1(summarize(started[key].map((s) => s[k])).median);
  const podmanNote =
    'both run with --network none (a private namespace with only loopback), so the comparison leaves out bridge networking, which both do by default.';

  const summary = {
    date: new Date().toISOString(),
    machine: machineLine(),
    tools: { runc: toolVersion(runc, ['--version']), podman: podman ? toolVersion(podman, ['--version']) : null, conmon: toolVersion('conmon', ['--version']) },
    loadAverage: { start: loadStart, end: loadEnd },
    runs: opts.runs,
    warmup: opts.warmup,
    unit: 'ms',
    variants: Object.fromEntries(
      variants.map((v) => {
        const s = stats[v.key]!;
        return [v.key, { label: v.label, command: v.command, median: r1(s.median), p10: r1(s.p10), p90: r1(s.p90), mean: r1(s.mean), min: r1(s.min), max: r1(s.max), samples: samples[v.key]!.map(r1) }];
      }),
    ),
    ratios,
    pairedRatios,
    daemonPhases: {
      apiClient: {
        b: { create: phase('b', 'create'), waitHeaders: phase('b', 'waitHeaders'), start: phase('b', 'start'), startToRemoved: phase('b', 'exit') },
        g: { create: phase('g', 'create'), waitHeaders: phase('g', 'waitHeaders'), start: phase('g', 'start'), startToExit: phase('g', 'exit'), delete: phase('g', 'remove') },
      },
      containerStartedLog: Object.fromEntries(
        (['a', 'b', 'g'] as const).map((k) => [
          k,
          { bundleMs: daemonPhase(k, 'bundleMs'), createMs: daemonPhase(k, 'createMs'), startMs: daemonPhase(k, 'startMs') },
        ]),
      ),
    },
    runcBundle: { etcBindMountsKept: etcKept, rootfs: `overlay lowerdir=${lower}`, stateDir: runcRoot },
    notes: [podmanNote],
  };

  if (opts.json) {
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    return 0;
  }
  const out: string[] = [];
  out.push('');
  out.push(`Vessel run latency: ${opts.runs} rounds (+${opts.warmup} warm-up discarded), variants interleaved round-robin`);
  out.push(`machine: ${summary.machine}`);
  out.push(`${summary.tools.runc.replace(/\n.*/s, '')}; ${summary.tools.podman ?? 'podman: skipped'}; load average ${loadStart} → ${loadEnd}`);
  out.push('');
  const w = Math.max(...variants.map((v) => v.label.length)) + 6;
  out.push(`${'variant'.padEnd(w)}${'median'.padStart(8)}${'p10'.padStart(8)}${'p90'.padStart(8)}   ms`);
  for (const v of variants) {
    const s = stats[v.key]!;
    out.push(`(${v.key}) ${v.label.padEnd(w - 4)}${s.median.toFixed(1).padStart(8)}${s.p10.toFixed(1).padStart(8)}${s.p90.toFixed(1).padStart(8)}`);
  }
  out.push('');
  const { b: pb, g: pg } = summary.daemonPhases.apiClient;
  out.push(`(b) phases, client side (median ms): create ${pb.create} | wait headers ${pb.waitHeaders} | start ${pb.start} | start→removed ${pb.startToRemoved}`);
  out.push(`(g) phases, client side (median ms): create ${pg.create} | wait headers ${pg.waitHeaders} | start ${pg.start} | start→exit ${pg.startToExit} | delete ${pg.delete}`);
  for (const k of ['a', 'b', 'g'] as const) {
    const l = summary.daemonPhases.containerStartedLog[k]!;
    out.push(`daemon log 'container started' during (${k}) (median ms): bundle ${l.bundleMs} | create (conmon + runc create) ${l.createMs} | start (runc start) ${l.startMs}`);
  }
  out.push('');
  out.push('ratios (of medians):');
  for (const r of ratios) {
    const verdict = r.pass ? 'PASS' : 'MISS';
    const stretch = r.stretch === null ? '' : `, stretch ≤ ${r.stretch}: ${r.stretchPass ? 'PASS' : 'MISS'}`;
    out.push(`  ${r.name.padEnd(15)} = ${r.value.toFixed(2).padStart(5)}   goal ≤ ${r.goal}: ${verdict}${stretch}   (${r.what})`);
  }
  out.push('per-round ratios (median, p10–p90; for information, the goals are on the ratios of medians above):');
  for (const r of pairedRatios) out.push(`  ${r.name.padEnd(15)} = ${r.median.toFixed(2).padStart(5)}   (${r.p10.toFixed(2)}–${r.p90.toFixed(2)})`);
  out.push('');
  out.push(`note: ${podmanNote}`);
  out.push(
    "note: (b) sends what `docker run --rm` sends (AutoRemove, so the daemon removes the container itself, and a wait for `removed`), which is also the daemon's share of (a); (g) is the older create/start/wait/rm sequence of four requests.",
  );
  if (caVar) {
    out.push(
      `note: NODE_EXTRA_CA_CERTS is set here; Node 20 parses that bundle at every start, which (d) includes. bin/vessel starts node without it (the CLI does no TLS), so (f), node's start without it, is the CLI's own floor.`,
    );
  }
  out.push(
    `note: (c) runs runc on vessel's own config.json (seccomp, capabilities, masked paths, namespaces incl. a new netns) over an overlay of the image layer, with its state (--root) on the file system of vessel's exec root (${runcRoot.split('/').slice(0, -1).join('/') || '/'}); /etc bind mounts kept: ${etcKept.join(', ') || 'none'}.`,
  );
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

runMain(main);
