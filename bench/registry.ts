/**
 * `bench/registry [--rounds N] [--server docker|vessel|both] [--json]`
 *
 * Push and pull throughput of `vessel push` / `vessel pull` against skopeo
 * 1.9 (Debian's, installed with apt-get when missing), same image, same
 * registry, same compression, in one run:
 *
 *   1. a private vesseld with debian:bookworm bootstrapped into it (one
 *      gzip layer); `vessel image save` writes it out, and that archive (an
 *      OCI layout that is also a docker-archive) is unpacked once into an
 *      `oci:` directory for skopeo, so skopeo reads the very blobs vessel
 *      pushes (same gzip bytes: skopeo keeps a compressed layer as it is,
 *      vessel pushes its stored blob as it is; `--preserve-digests` makes
 *      skopeo fail rather than change them);
 *   2. each round starts a fresh registry (Debian's `docker-registry`, or
 *      `vessel registry serve`) on a new loopback port with an empty root,
 *      so no blob is "already there" and no cross-repository mount is
 *      possible for either tool, and then, in alternating order:
 *        - vessel push:  `vessel push R/vessel/rN:1`
 *        - skopeo push:  `skopeo copy oci:DIR docker://R/skopeo/rN:1`
 *        - vessel pull:  `vessel rmi` of every name of the image (so the
 *                        layer leaves the store; untimed), then
 *                        `vessel pull R/vessel/rN:1`, timed until it
 *                        returns: download, verify, store, record the image
 *                        (the unpack goes on in the daemon)
 *        - skopeo pull:  `skopeo copy docker://R/skopeo/rN:1 oci:FRESH`
 *                        (download and verify; skopeo does not unpack)
 *      plus a like-for-like pair, "until the image's files are on disk":
 *        - vessel: the pull above followed at once by
 *                  `vessel run --rm R/vessel/rN:1 true`, which waits for the
 *                  layer unpack (and also pays one container start);
 *        - skopeo: its pull followed by `tar -xf` of its layer blob(s) into
 *                  a fresh directory;
 *   3. MB/s = (layer + config bytes) / wall time of the CLI process(es), and
 *      the ratios vessel/skopeo of median throughputs: the headline pull
 *      ratio is vessel pull / skopeo copy (goal ≥ 1.0); the files-on-disk
 *      ratio is reported beside it.
 *
 * Everything (daemon, registries, temp dirs) is removed at the end, also on
 * Ctrl-C or failure.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  BenchDaemon,
  execOk,
  execTimed,
  loadAverage,
  machineLine,
  note,
  onCleanup,
  r1,
  r2,
  requireRoot,
  ensureTool,
  parseBenchFlags,
  runMain,
  summarize,
  toolVersion,
  which,
  VESSEL,
  type Summary,
} from './lib.js';

const USAGE = `Usage: bench/registry [--rounds N] [--server docker|vessel|both] [--json]

  --rounds N   timed rounds (default 3, 1–50); each pushes and pulls the image once per tool
  --server S   registry to measure against: docker (Debian's docker-registry, default),
               vessel (vessel registry serve) or both
  --json       print a machine-readable summary on stdout (progress goes to stderr)
`;

const GOAL = 1.0;
const IMAGE = 'debian:bookworm';
type ServerKind = 'docker' | 'vessel';

function parseArgs(argv: string[]): { rounds: number; servers: ServerKind[]; json: boolean } {
  const rounds = { key: 'rounds', int: [1, 50] } as const;
  const o = parseBenchFlags(argv, USAGE, { rounds: 3, server: 'docker', json: false }, {
    '--rounds': rounds,
    '-n': rounds,
    '--server': { key: 'server', oneOf: ['docker', 'vessel', 'both'] },
    '--json': { key: 'json', set: true },
  });
  return { rounds: o.rounds, json: o.json, servers: o.server === 'both' ? ['docker', 'vessel'] : [o.server as ServerKind] };
}

function layoutIndex(dir: string): { manifests: Array<{ digest: string; annotations?: Record<string, string> }> } {
  return JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** One registry process on a fresh port and an empty root. */
class Registry {
  proc: ChildProcess | null = null;
  host = '';
  log = '';
  constructor(
    readonly kind: ServerKind,
    readonly bin: string,
    readonly dir: string,
  ) {}

  async start(): Promise<void> {
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true });
    const port = await freePort();
    this.host = `127.0.0.1:${port}`;
    let args: string[];
    let cmd = this.bin;
    if (this.kind === 'docker') {
      const cfg = path.join(this.dir, 'config.yml');
      writeFileSync(
        cfg,
        `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${path.join(this.dir, 'storage')}\nhttp:\n  addr: ${this.host}\n`,
      );
      args = ['serve', cfg];
    } else {
      cmd = VESSEL;
      args = ['registry', 'serve', '--quiet', '--root', path.join(this.dir, 'root'), '--addr', this.host];
    }
    const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.proc = proc;
    proc.stdout?.on('data', (d: Buffer) => (this.log += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (this.log += d.toString()));
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`${this.kind} registry exited early:\n${this.log}`);
      const up = await fetch(`http://${this.host}/v2/`).then((r) => r.status === 200, () => false);
      if (up) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${this.kind} registry did not come up:\n${this.log}`);
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    this.proc = null;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

type Op = 'vesselPush' | 'skopeoPush' | 'vesselPull' | 'skopeoPull' | 'vesselPullRun' | 'skopeoPullUnpack';
const OPS: Op[] = ['vesselPush', 'skopeoPush', 'vesselPull', 'skopeoPull', 'vesselPullRun', 'skopeoPullUnpack'];
/** Measured as a tail of another operation, not on their own. */
type Derived = 'vesselPullRun' | 'skopeoPullUnpack';

interface ServerResult {
  server: ServerKind;
  /** MB/s per operation (10^6 bytes per second). */
  mbps: Record<Op, Summary>;
  seconds: Record<Op, Summary>;
  pushRatio: number;
  pullRatio: number;
  /** vessel pull + run (waits for the unpack) against skopeo pull + tar -x: both end with the files on disk. */
  filesOnDiskRatio: number;
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  requireRoot();
  const loadStart = loadAverage();
  note(`registry: ${opts.rounds} rounds of push and pull with vessel and skopeo against ${opts.servers.join(' and ')}`);
  note(`machine: ${machineLine()}; load average ${loadStart}`);
  const skopeo = ensureTool('skopeo', 'skopeo');
  const dockerRegistry = opts.servers.includes('docker') ? ensureTool('docker-registry', 'docker-registry') : '';
  // skopeo's blob-info cache and signature policy stay private to the bench.
  const d = new BenchDaemon('vessel-bench-registry-');
  await d.start();
  note(`bootstrapping ${IMAGE} into the private daemon`);
  if ((await d.cli(['image', 'inspect', IMAGE])).code !== 0) {
    await d.ok(['image', 'bootstrap', IMAGE, '--quiet'], { timeoutMs: 900_000 });
  }
  const policy = path.join(d.dir, 'policy.json');
  writeFileSync(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  const skopeoEnv = { ...process.env, HOME: path.join(d.dir, 'home'), TMPDIR: path.join(d.dir, 'tmp') };
  mkdirSync(skopeoEnv.HOME, { recursive: true });
  mkdirSync(skopeoEnv.TMPDIR, { recursive: true });
  const sk = (args: string[]) => execTimed(skopeo, ['--policy', policy, ...args], { capture: true, env: skopeoEnv, timeoutMs: 1_800_000 });

  note(`exporting ${IMAGE} with vessel image save for skopeo (oci: layout)`);
  const archive = path.join(d.dir, 'image.tar');
  await d.ok(['image', 'save', '-o', archive, IMAGE], { timeoutMs: 600_000 });
  const layout = path.join(d.dir, 'layout');
  mkdirSync(layout);
  await execOk('tar', ['-xf', archive, '-C', layout]);
  rmSync(archive);
  const index = layoutIndex(layout);
  const top = index.manifests[0]!;
  const refName = top.annotations?.['org.opencontainers.image.ref.name'] ?? 'latest';
  const manifest = JSON.parse(readFileSync(path.join(layout, 'blobs', 'sha256', top.digest.slice(7)), 'utf8')) as {
    config: { size: number };
    layers: Array<{ size: number; mediaType: string }>;
  };
  const bytes = manifest.config.size + manifest.layers.reduce((a, l) => a + l.size, 0);
  const compression = [...new Set(manifest.layers.map((l) => l.mediaType.replace(/^.*\.tar\+?/, '') || 'none'))].join(',');
  note(`image: ${manifest.layers.length} layer(s), ${r1(bytes / 1e6)} MB to transfer, layer compression ${compression}`);
  const imageId = (await d.ok(['image', 'inspect', '-f', '{{.Id}}', IMAGE])).trim();

  const results: ServerResult[] = [];
  let local = IMAGE; // the name the image currently has in the daemon
  for (const server of opts.servers) {
    const times: Record<Op, number[]> = { vesselPush: [], skopeoPush: [], vesselPull: [], skopeoPull: [], vesselPullRun: [], skopeoPullUnpack: [] };
    const reg = new Registry(server, dockerRegistry, path.join(d.dir, `registry-${server}`));
    onCleanup(`${server} registry`, () => reg.stop());
    for (let i = 0; i < opts.rounds; i++) {
      await reg.start();
      const vref = `${reg.host}/vessel/r${i}:1`;
      const sref = `${reg.host}/skopeo/r${i}:1`;
      const run: Record<Exclude<Op, Derived>, () => Promise<number>> = {
        vesselPush: async () => {
          await d.ok(['tag', local, vref]);
          const r = await d.cli(['push', '-q', vref], { timeoutMs: 1_800_000 });
          if (r.code !== 0) throw new Error(`vessel push failed: ${r.stderr}`);
          return r.ms;
        },
        skopeoPush: async () => {
          const r = await sk(['copy', '-q', '--preserve-digests', '--dest-tls-verify=false', `oci:${layout}:${refName}`, `docker://${sref}`]);
          if (r.code !== 0) throw new Error(`skopeo push failed: ${r.stderr}`);
          return r.ms;
        },
        vesselPull: async () => {
          // Every name goes, so the layer leaves the store and is downloaded again.
          const names = JSON.parse(await d.ok(['image', 'inspect', '-f', '{{json .RepoTags}}', imageId])) as string[];
          await d.ok(['rmi', ...names]);
          const r = await d.cli(['pull', '-q', vref], { timeoutMs: 1_800_000 });
          if (r.code !== 0) throw new Error(`vessel pull failed: ${r.stderr}`);
          local = vref;
          // Files on disk: a run needs the layer unpacked, so it waits for the unpack the pull left going.
          const run = await d.cli(['run', '--rm', vref, 'true'], { timeoutMs: 1_800_000 });
          if (run.code !== 0) throw new Error(`vessel run after the pull failed: ${run.stderr}`);
          times.vesselPullRun.push(r.ms + run.ms);
          return r.ms;
        },
        skopeoPull: async () => {
          const out = path.join(d.dir, `pulled-${i}`);
          const r = await sk(['copy', '-q', '--src-tls-verify=false', `docker://${sref}`, `oci:${out}:x`]);
          if (r.code !== 0) throw new Error(`skopeo pull failed: ${r.stderr}`);
          // The diagnostic: unpack what skopeo pulled, as vessel's pull does.
          const mf = JSON.parse(readFileSync(path.join(out, 'blobs', 'sha256', layoutIndex(out).manifests[0]!.digest.slice(7)), 'utf8')) as {
            layers: Array<{ digest: string; mediaType: string }>;
          };
          const rootfs = path.join(out, 'rootfs');
          mkdirSync(rootfs);
          let tarMs = 0;
          for (const l of mf.layers) {
            const t = await execTimed('tar', [/gzip/.test(l.mediaType) ? '-xzf' : '-xf', path.join(out, 'blobs', 'sha256', l.digest.slice(7)), '-C', rootfs], { timeoutMs: 1_800_000 });
            if (t.code !== 0) throw new Error(`tar -x of ${l.digest} failed: ${t.stderr}`);
            tarMs += t.ms;
          }
          times.skopeoPullUnpack.push(r.ms + tarMs);
          rmSync(out, { recursive: true, force: true });
          return r.ms;
        },
      };
      // Push before pull (the pull reads what the push stored); who goes first alternates.
      const pairs: Array<[Exclude<Op, Derived>, Exclude<Op, Derived>]> = i % 2 === 0 ? [['vesselPush', 'skopeoPush'], ['vesselPull', 'skopeoPull']] : [['skopeoPush', 'vesselPush'], ['skopeoPull', 'vesselPull']];
      for (const pair of pairs) for (const op of pair) times[op].push(await run[op]());
      if (times.skopeoPullUnpack.length !== i + 1 || times.vesselPullRun.length !== i + 1) throw new Error('internal: a files-on-disk time is missing');
      note(
        `${server} round ${i + 1}/${opts.rounds}: ` +
          OPS.map((op) => `${op} ${r1(times[op].at(-1)! / 1000)} s (${r1(bytes / 1e6 / (times[op].at(-1)! / 1000))} MB/s)`).join(', '),
      );
      await reg.stop();
    }
    const mbps = Object.fromEntries(OPS.map((op) => [op, summarize(times[op].map((ms) => bytes / 1e6 / (ms / 1000)))])) as Record<Op, Summary>;
    const seconds = Object.fromEntries(OPS.map((op) => [op, summarize(times[op].map((ms) => ms / 1000))])) as Record<Op, Summary>;
    results.push({ server, mbps, seconds, pushRatio: mbps.vesselPush.median / mbps.skopeoPush.median, pullRatio: mbps.vesselPull.median / mbps.skopeoPull.median, filesOnDiskRatio: mbps.vesselPullRun.median / mbps.skopeoPullUnpack.median });
  }

  const loadEnd = loadAverage();
  if (opts.json) {
    const summary = { machine: machineLine(), load: { start: loadStart, end: loadEnd }, skopeo: toolVersion(skopeo), image: IMAGE, bytes, compression, rounds: opts.rounds, results };
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    return 0;
  }
  const fmt = (s: Summary, t: Summary) => `${r1(s.median).toString().padStart(6)} MB/s (min ${r1(s.min)}, max ${r1(s.max)}; ${r2(t.median)} s)`;
  const out = ['', `registry: ${opts.rounds} rounds, ${IMAGE}, ${r1(bytes / 1e6)} MB per image (load average ${loadStart} → ${loadEnd})`];
  out.push(`  compression: the same ${compression} layer blob on both sides (vessel pushes its stored blob, skopeo copies it with --preserve-digests)`);
  out.push(`  skopeo: ${toolVersion(skopeo)}`);
  for (const r of results) {
    out.push(`  registry: ${r.server === 'docker' ? `docker-registry (${toolVersion(dockerRegistry, ['--version'])})` : 'vessel registry serve'}`);
    out.push(`    vessel push                          ${fmt(r.mbps.vesselPush, r.seconds.vesselPush)}`);
    out.push(`    skopeo copy oci: → docker://         ${fmt(r.mbps.skopeoPush, r.seconds.skopeoPush)}`);
    out.push(`    pull, timed until the content is verified and stored (vessel's unpack continues in the daemon):`);
    out.push(`    vessel pull (after rmi)              ${fmt(r.mbps.vesselPull, r.seconds.vesselPull)}`);
    out.push(`    skopeo copy docker:// → oci:         ${fmt(r.mbps.skopeoPull, r.seconds.skopeoPull)}`);
    out.push(`    pull until the image's files are on disk:`);
    out.push(`    vessel pull + run --rm IMAGE true    ${fmt(r.mbps.vesselPullRun, r.seconds.vesselPullRun)}  (the run waits for the unpack; includes one container start)`);
    out.push(`    skopeo copy + tar -x                 ${fmt(r.mbps.skopeoPullUnpack, r.seconds.skopeoPullUnpack)}`);
    out.push(`    vessel/skopeo push throughput, goal ≥ ${GOAL}: ${r2(r.pushRatio)} ${r.pushRatio >= GOAL ? 'PASS' : 'MISS'}`);
    out.push(`    vessel/skopeo pull throughput (verified and stored), goal ≥ ${GOAL}: ${r2(r.pullRatio)} ${r.pullRatio >= GOAL ? 'PASS' : 'MISS'}`);
    out.push(`    vessel/skopeo pull until files are on disk (pull + run vs copy + tar -x): ${r2(r.filesOnDiskRatio)}`);
  }
  out.push('');
  process.stdout.write(out.join('\n'));
  return 0;
}

runMain(main);
