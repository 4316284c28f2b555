/**
 * `bench/build-cache [--runs N] [--json]`
 *
 * How long a fully cached rebuild takes with `vessel build` against
 * `buildah build --layers` (Debian's buildah, installed with apt-get when
 * missing), on the same Dockerfile and the same context, in one run:
 *
 *   1. a private vesseld (temp root and socket) with debian:bookworm
 *      bootstrapped into it;
 *   2. the same base image exported with `vessel image save` and pulled into a
 *      private buildah storage (graph root and run root under the bench's
 *      temp dir, a private storage.conf, registries.conf and signature
 *      policy: nothing global is read or touched);
 *   3. one build with each tool to warm its cache (RUN steps that need the
 *      network go through vessel's NAT and, with buildah's chroot isolation,
 *      through the host's network);
 *   4. N rebuilds with each, interleaved round-robin (the first tool
 *      alternates each round), timed from spawn to exit of the CLI; each must
 *      report every step as cached, or the bench fails.
 *
 * Each round also times two diagnostics that split vessel's figure: the
 * daemon's share (`POST /build` with the same context as a tar made once
 * beforehand, over the socket, until the response ends) and the CLI's floor
 * (`vessel --version`: node start-up and module loading).
 *
 * Prints medians (p10–p90) and the ratio vessel/buildah (goal ≤ 1.0), then
 * removes everything: the daemon, buildah's images, containers, mounts and
 * storage, and the temp dirs (also on Ctrl-C or failure).
 */
import { spawnSync } from 'node:child_process';
import { createReadStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {
  BenchDaemon,
  ensureTool,
  execOk,
  execTimed,
  loadAverage,
  machineLine,
  note,
  onCleanup,
  r1,
  r2,
  requireRoot,
  parseBenchFlags,
  runMain,
  summarize,
  toolVersion,
  which,
  VESSEL,
  type Summary,
} from './lib.js';

const USAGE = `Usage: bench/build-cache [--runs N] [--json]

  --runs N   timed cached rebuilds per tool (default 10, 1–200)
  --json     print a machine-readable summary on stdout (progress goes to stderr)
`;

const GOAL = 1.0;
const TAG = 'bench-app:latest';

function parseArgs(argv: string[]): { runs: number; json: boolean } {
  const runs = { key: 'runs', int: [1, 200] } as const;
  return parseBenchFlags(argv, USAGE, { runs: 10, json: false }, { '--runs': runs, '-n': runs, '--json': { key: 'json', set: true } });
}

// ---- the build context ----------------------------------------------------------

export const DOCKERFILE = `FROM debian:bookworm
ARG APP_VERSION=1.4.2
ENV APP_HOME=/opt/app LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive
LABEL org.example.app="build-cache-bench" org.example.version=$APP_VERSION
# Two steps that need the network (the Debian mirror).
RUN apt-get update && apt-get install -y --no-install-recommends jq && rm -rf /var/lib/apt/lists/*
RUN apt-get update && apt-get install -y --no-install-recommends xz-utils && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 1000 app
WORKDIR /opt/app
COPY requirements.txt ./
RUN mkdir -p data logs && for i in $(seq 1 200); do echo "row $i"; done > data/rows.txt
COPY src/ ./src/
COPY assets/ ./assets/
COPY config.json /etc/app/config.json
RUN chown -R app:app /opt/app && ls -R /opt/app | wc -l > /opt/app/filecount
ENV PATH=/opt/app/bin:$PATH
EXPOSE 8000
USER app
HEALTHCHECK --interval=30s CMD test -f /opt/app/filecount
CMD ["sh", "-c", "cat /opt/app/filecount; jq . /etc/app/config.json"]
`;

/**
 * A context with the shape of a small application: 120 source files in a
 * few directories, a 4 MiB binary asset, a config, a requirements file, plus
 * a .dockerignore that leaves out a local build directory.
 */
export function writeContext(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  const put = (rel: string, data: string | Buffer) => {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), data);
    files += 1;
    bytes += Buffer.byteLength(data);
  };
  put('Dockerfile', DOCKERFILE);
  put('.dockerignore', 'build/\n*.log\n');
  put('requirements.txt', 'fastapi==0.92\nuvicorn==0.17\n');
  put('config.json', JSON.stringify({ name: 'bench', workers: 4, features: ['a', 'b', 'c'] }, null, 2));
  for (let m = 0; m < 6; m++) {
    for (let f = 0; f < 20; f++) {
      const body = Array.from({ length: 60 }, (_, i) => `export const v${i} = ${m * 1000 + f * 60 + i}; // module ${m} file ${f}`).join('\n');
      put(`src/mod${m}/file${f}.ts`, `${body}\n`);
    }
  }
  // Deterministic pseudo-random bytes (xorshift), so the asset does not compress to nothing.
  const asset = Buffer.alloc(4 * 1024 * 1024);
  let x = 0x12345678;
  for (let i = 0; i < asset.length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    asset.writeUInt32LE(x >>> 0, i);
  }
  put('assets/model.bin', asset);
  put('assets/logo.svg', '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>\n');
  put('build/ignored.o', Buffer.alloc(1024 * 1024));
  put('debug.log', 'ignored\n');
  return { files, bytes };
}

// ---- buildah ----------------------------------------------------------------------

/** buildah confined to a private storage and private configuration under `dir`. */
class PrivateBuildah {
  readonly root: string;
  readonly runroot: string;
  readonly env: NodeJS.ProcessEnv;
  readonly #policy: string;

  constructor(
    readonly bin: string,
    readonly dir: string,
  ) {
    this.root = path.join(dir, 'storage');
    this.runroot = path.join(dir, 'runroot');
    mkdirSync(this.root, { recursive: true });
    mkdirSync(this.runroot, { recursive: true });
    const storageConf = path.join(dir, 'storage.conf');
    writeFileSync(storageConf, `[storage]\ndriver = "overlay"\ngraphroot = "${this.root}"\nrunroot = "${this.runroot}"\n`);
    const registries = path.join(dir, 'registries.conf');
    writeFileSync(registries, 'unqualified-search-registries = []\nshort-name-mode = "disabled"\n');
    this.#policy = path.join(dir, 'policy.json');
    writeFileSync(this.#policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    this.env = {
      ...process.env,
      CONTAINERS_STORAGE_CONF: storageConf,
      CONTAINERS_REGISTRIES_CONF: registries,
      // buildah's own containers.conf lookups stay away from the user's.
      CONTAINERS_CONF: path.join(dir, 'containers.conf'),
      XDG_RUNTIME_DIR: path.join(dir, 'xdg'),
      TMPDIR: path.join(dir, 'tmp'),
    };
    writeFileSync(path.join(dir, 'containers.conf'), '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "none"\n');
    mkdirSync(path.join(dir, 'xdg'), { recursive: true });
    mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  }

  /** Global flags first: the storage is named on every call, whatever the config files say. */
  args(rest: string[]): string[] {
    return ['--root', this.root, '--runroot', this.runroot, '--storage-driver', 'overlay', ...rest];
  }

  ok(rest: string[], timeoutMs = 600_000) {
    return execOk(this.bin, this.args(rest), { env: this.env, timeoutMs });
  }

  async pullArchive(file: string): Promise<void> {
    await this.ok(['pull', '--signature-policy', this.#policy, `docker-archive:${file}`]);
  }

  buildArgs(context: string): string[] {
    return this.args(['build', '--layers', '--isolation', 'chroot', '--pull-never', '--signature-policy', this.#policy, '-t', TAG, '-f', path.join(context, 'Dockerfile'), context]);
  }

  /** Removes containers and images, unmounts whatever is left under the storage, deletes the dir. */
  destroy(): void {
    const quiet = (rest: string[]) => spawnSync(this.bin, this.args(rest), { env: this.env, stdio: 'ignore', timeout: 120_000 });
    quiet(['rm', '--all']);
    quiet(['rmi', '--all', '--force']);
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => (l.split(' ')[4] ?? '').replace(/\\(\d{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))))
      .filter((m) => m === this.dir || m.startsWith(`${this.dir}/`))
      .reverse();
    for (const m of mounts) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
  }
}

// ---- checks on build output ------------------------------------------------------

/** Step numbers of vessel's output that ran instead of coming from the cache (FROM excluded). */
export function vesselUncached(out: string): string[] {
  return out
    .split(/(?=^Step \d+\/\d+ : )/m)
    .filter((s) => /^Step \d+\/\d+ : /.test(s) && !/^Step \d+\/\d+ : FROM /.test(s) && !/\n ---> CACHED\n/.test(s))
    .map((s) => s.split('\n')[0]!);
}

/** buildah's steps (`STEP n/m: ...`) that were not followed by `--> Using cache` (FROM excluded). */
export function buildahUncached(out: string): string[] {
  return out
    .split(/(?=^STEP \d+\/\d+: )/m)
    .filter((s) => /^STEP \d+\/\d+: /.test(s) && !/^STEP \d+\/\d+: FROM /.test(s) && !/^--> Using cache /m.test(s))
    .map((s) => s.split('\n')[0]!);
}

// ---- the daemon's share ------------------------------------------------------------

/** `POST /build?t=TAG` with a prepared context tar; resolves when the response ends. */
function apiBuild(socketPath: string, tarFile: string): Promise<{ ms: number; status: number; stream: string; error: string | null }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath, method: 'POST', path: `/v1.41/build?t=${encodeURIComponent(TAG)}`, headers: { Host: 'localhost', 'Content-Type': 'application/x-tar' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const ms = performance.now() - t0;
          let stream = '';
          let error: string | null = null;
          for (const line of Buffer.concat(chunks).toString('utf8').split('\n')) {
            if (!line.trim()) continue;
            const m = JSON.parse(line) as { stream?: string; error?: string };
            if (m.stream) stream += m.stream;
            if (m.error) error = m.error;
          }
          resolve({ ms, status: res.statusCode ?? 0, stream, error });
        });
      },
    );
    req.on('error', reject);
    createReadStream(tarFile).on('error', reject).pipe(req);
  });
}

// ---- main -----------------------------------------------------------------------------

interface Result {
  vessel: Summary;
  buildah: Summary;
  /** Diagnostics: the daemon's share (POST /build with a ready tar) and `vessel --version`. */
  daemonApi: Summary;
  cliFloor: Summary;
  ratio: number;
  pass: boolean;
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  requireRoot();
  const loadStart = loadAverage();
  note(`build-cache: ${opts.runs} fully cached rebuilds each with vessel build and buildah build --layers`);
  note(`machine: ${machineLine()}; load average ${loadStart}`);
  const buildahBin = ensureTool('buildah');

  const d = new BenchDaemon('vessel-bench-build-');
  note('starting a private vesseld');
  await d.start();
  note('bootstrapping debian:bookworm into it');
  if ((await d.cli(['image', 'inspect', 'debian:bookworm'])).code !== 0) {
    await d.ok(['image', 'bootstrap', 'debian:bookworm', '--quiet'], { timeoutMs: 900_000 });
  }

  // Everything else lives under the daemon's temp dir, so its removal takes it too;
  // buildah's storage gets its own cleanup step first (its overlay mounts).
  const context = path.join(d.dir, 'context');
  const shape = writeContext(context);
  note(`context: ${shape.files} files, ${r1(shape.bytes / 2 ** 20)} MiB (1 MiB of it .dockerignored)`);
  const bah = new PrivateBuildah(buildahBin, path.join(d.dir, 'buildah'));
  onCleanup('buildah storage', () => bah.destroy());

  note('exporting debian:bookworm with vessel image save and pulling it into buildah');
  const archive = path.join(d.dir, 'debian.tar');
  await d.ok(['image', 'save', '-o', archive, 'debian:bookworm'], { timeoutMs: 300_000 });
  await bah.pullArchive(archive);

  const vesselArgs = ['--host', d.host, 'build', '-t', TAG, context];
  const runVessel = () => execTimed(VESSEL, vesselArgs, { capture: true, timeoutMs: 1_800_000 });
  const runBuildah = () => execTimed(buildahBin, bah.buildArgs(context), { capture: true, env: bah.env, timeoutMs: 1_800_000 });

  note('warm-up build with vessel (downloads packages)');
  const w1 = await runVessel();
  if (w1.code !== 0) throw new Error(`vessel build failed:\n${w1.stdout.slice(-4000)}\n${w1.stderr}`);
  note(`  ${r1(w1.ms / 1000)} s`);
  note('warm-up build with buildah (downloads packages)');
  const w2 = await runBuildah();
  if (w2.code !== 0) throw new Error(`buildah build failed:\n${w2.stdout.slice(-4000)}\n${w2.stderr.slice(-4000)}`);
  note(`  ${r1(w2.ms / 1000)} s`);

  // The same files the CLI sends (the .dockerignored ones left out), owned by 0:0 as the CLI records them.
  const contextTar = path.join(d.dir, 'context.tar');
  await execOk('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', context, '-cf', contextTar, 'Dockerfile', '.dockerignore', 'requirements.txt', 'config.json', 'src', 'assets']);
  const runApi = async () => {
    const r = await apiBuild(d.socket, contextTar);
    if (r.status !== 200 || r.error) throw new Error(`POST /build failed (HTTP ${r.status}): ${r.error ?? ''}\n${r.stream.slice(-4000)}`);
    return r;
  };
  await runApi(); // its COPY keys may differ from the CLI's (mtimes): warm them too

  const times = { vessel: [] as number[], buildah: [] as number[], api: [] as number[], floor: [] as number[] };
  for (let i = 0; i < opts.runs; i++) {
    const order = i % 2 === 0 ? (['vessel', 'buildah'] as const) : (['buildah', 'vessel'] as const);
    for (const tool of order) {
      const r = tool === 'vessel' ? await runVessel() : await runBuildah();
      if (r.code !== 0) throw new Error(`${tool} rebuild failed:\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
      const missed = tool === 'vessel' ? vesselUncached(r.stdout) : buildahUncached(r.stdout);
      if (missed.length) throw new Error(`${tool} rebuild ${i + 1} was not fully cached: ${missed.join('; ')}\n${r.stdout.slice(-4000)}`);
      times[tool].push(r.ms);
    }
    const api = await runApi();
    const missed = vesselUncached(api.stream);
    if (missed.length) throw new Error(`POST /build ${i + 1} was not fully cached: ${missed.join('; ')}`);
    times.api.push(api.ms);
    const floor = await execTimed(VESSEL, ['--version'], { capture: true });
    if (floor.code !== 0) throw new Error(`vessel --version exited ${floor.code}: ${floor.stderr}`);
    times.floor.push(floor.ms);
    note(
      `round ${i + 1}/${opts.runs}: vessel ${r1(times.vessel.at(-1)!)} ms, buildah ${r1(times.buildah.at(-1)!)} ms` +
        ` (POST /build ${r1(api.ms)} ms, vessel --version ${r1(floor.ms)} ms)`,
    );
  }

  const v = summarize(times.vessel);
  const b = summarize(times.buildah);
  const result: Result = { vessel: v, buildah: b, daemonApi: summarize(times.api), cliFloor: summarize(times.floor), ratio: v.median / b.median, pass: v.median / b.median <= GOAL };
  const loadEnd = loadAverage();
  const fmt = (s: Summary) => `${r1(s.median)} ms (p10 ${r1(s.p10)}, p90 ${r1(s.p90)}, min ${r1(s.min)})`;
  if (opts.json) {
    process.stdout.write(
      `${JSON.stringify({ machine: machineLine(), load: { start: loadStart, end: loadEnd }, buildahVersion: toolVersion(buildahBin), runs: opts.runs, steps: DOCKERFILE.split('\n').filter((l) => /^[A-Z]/.test(l)).length, context: shape, ...result }, null, 2)}\n`,
    );
  } else {
    const out = [
      '',
      `build-cache: ${opts.runs} fully cached rebuilds each (load average ${loadStart} → ${loadEnd})`,
      `  buildah: ${toolVersion(buildahBin)}`,
      `  vessel build -t ${TAG} CONTEXT                           ${fmt(v)}`,
      `  buildah build --layers --isolation chroot -t ${TAG}   ${fmt(b)}`,
      `  vessel/buildah (medians), goal ≤ ${GOAL}: ${r2(result.ratio)} ${result.pass ? 'PASS' : 'MISS'}`,
      '  where vessel\'s time goes (diagnostics, same rounds):',
      `    POST /build with a ready context tar (daemon's share)       ${fmt(result.daemonApi)}`,
      `    vessel --version (CLI start-up floor)                       ${fmt(result.cliFloor)}`,
      '',
    ];
    process.stdout.write(out.join('\n'));
  }
  return 0;
}

runMain(main);
