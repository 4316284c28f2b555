/**
 * bench/vm-boot: `vessel vm start` until the guest agent answers, against a
 * bare `qemu-system-x86_64` boot of the same kernel, initramfs and disk (a
 * fresh overlay on the same base) with the same command line, to the same
 * point. Rounds alternate which goes first. Also prints QEMU's RSS for an idle
 * 512 MiB VM.
 *
 *   bench/vm-boot [--runs N] [--json]
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { QgaClient } from '../src/vm/qga/client.js';
import { BenchDaemon, execTimed, loadAverage, machineLine, note, onCleanup, r2, requireRoot, parseBenchFlags, runMain, sleep, summarize, VESSEL } from './lib.js';

const USAGE = 'usage: bench/vm-boot [--runs N (1-100, default 5)] [--json]\n';

function parseArgs(argv: string[]): { runs: number; json: boolean } {
  return parseBenchFlags(argv, USAGE, { runs: 5, json: false }, { '--runs': { key: 'runs', int: [1, 100] }, '--json': { key: 'json', set: true } });
}

/** Milliseconds until the guest agent at `socket` answers a ping. */
async function agentUp(socket: string, t0: number): Promise<number> {
  const deadline = Date.now() + 300_000;
  while (!existsSync(socket)) {
    if (Date.now() > deadline) throw new Error(`no agent socket ${socket}`);
    await sleep(5);
  }
  const qga = new QgaClient(socket);
  try {
    await qga.waitReady(300_000);
  } finally {
    qga.close();
  }
  return Date.now() - t0;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  requireRoot();
  note(`vm-boot: ${opts.runs} rounds of vessel vm start vs bare qemu, each until the guest agent answers`);
  note(`machine: ${machineLine()}; load average ${loadAverage()}`);
  const d = new BenchDaemon('vessel-bench-vm-');
  await d.start();
  if ((await d.cli(['image', 'inspect', 'debian:bookworm'])).code !== 0) {
    note('bootstrapping debian:bookworm');
    await d.ok(['image', 'bootstrap', 'debian:bookworm', '--quiet'], { timeoutMs: 900_000 });
  }
  note('creating the VM (512 MiB, 1 vCPU)');
  const id = (await d.ok(['vm', 'create', 'bench', '--image', 'debian:bookworm', '--memory', '512m', '--quiet'], { timeoutMs: 900_000 })).trim();
  const vmDir = path.join(d.stateRoot, 'vms', id.slice(0, 12));
  const inspect = async () => JSON.parse(await d.ok(['vm', 'inspect', 'bench']))[0];

  // A warm-up boot (kernel, initramfs and page cache), which also gives us vessel's exact QEMU command line.
  await d.ok(['vm', 'start', 'bench'], { timeoutMs: 300_000 });
  await agentUp(path.join(vmDir, 'qga.sock'), Date.now());
  const pid = (await inspect()).State.pid as number;
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  const accel = (await inspect()).Accelerator?.Name ?? '?';
  await d.ok(['vm', 'stop', 'bench', '--timeout', '60'], { timeoutMs: 120_000 });

  // The bare run: the same argv, its own directory, tap and a fresh overlay on the same base each round.
  const bareDir = path.join(d.dir, 'bare');
  mkdirSync(bareDir, { recursive: true });
  const base = JSON.parse(spawnSync('qemu-img', ['info', '--output=json', '--force-share', path.join(vmDir, 'root.qcow2')], { encoding: 'utf8' }).stdout)['backing-filename'] as string;
  const vmTap = argv.find((a) => a.includes('ifname='))?.match(/ifname=([^,]+)/)?.[1];
  const bareTap = `bvm${process.pid.toString(16)}`.slice(0, 15);
  if (vmTap) {
    spawnSync('ip', ['tuntap', 'add', 'dev', bareTap, 'mode', 'tap', 'vnet_hdr']);
    spawnSync('ip', ['link', 'set', bareTap, 'up']);
    onCleanup(`tap ${bareTap}`, () => void spawnSync('ip', ['link', 'del', bareTap]));
  }
  const bareArgv = argv.slice(1).map((a) => {
    let x = a.split(vmDir).join(bareDir);
    if (vmTap) x = x.split(`ifname=${vmTap}`).join(`ifname=${bareTap}`);
    return x;
  });
  const bareBoot = async (): Promise<number> => {
    for (const f of ['root.qcow2', 'qga.sock', 'qmp.sock', 'console.sock', 'qemu.pid']) rmSync(path.join(bareDir, f), { force: true });
    spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', path.join(bareDir, 'root.qcow2')]);
    const t0 = Date.now();
    const q = spawn(argv[0] as string, bareArgv, { stdio: 'ignore' });
    const exited = new Promise((r) => q.once('exit', r));
    try {
      return await agentUp(path.join(bareDir, 'qga.sock'), t0);
    } finally {
      q.kill('SIGKILL');
      await exited;
    }
  };
  const vesselBoot = async (): Promise<number> => {
    const t0 = Date.now();
    const r = await execTimed(VESSEL, ['--host', d.host, 'vm', 'start', 'bench'], { capture: true, timeoutMs: 300_000 });
    if (r.code !== 0) throw new Error(`vessel vm start failed: ${r.stderr.trim()}`);
    return agentUp(path.join(vmDir, 'qga.sock'), t0);
  };

  const vessel: number[] = [];
  const bare: number[] = [];
  let rss = NaN;
  for (let i = 0; i < opts.runs; i++) {
    const order = i % 2 === 0 ? ['vessel', 'bare'] : ['bare', 'vessel'];
    for (const which of order) {
      if (which === 'bare') {
        bare.push(await bareBoot());
      } else {
        vessel.push(await vesselBoot());
        if (i === opts.runs - 1) {
          await sleep(5000); // idle
          rss = rssMiB((await inspect()).State.pid);
        }
        await d.ok(['vm', 'stop', 'bench', '--timeout', '60'], { timeoutMs: 120_000 });
      }
    }
    note(`round ${i + 1}: vessel ${vessel.at(-1)} ms, bare ${bare.at(-1)} ms`);
  }
  const sv = summarize(vessel);
  const sb = summarize(bare);
  const ratio = sv.median / sb.median;
  const result = {
    accelerator: accel,
    runs: opts.runs,
    vesselMs: sv,
    bareMs: sb,
    ratio: r2(ratio),
    goal: 1.2,
    pass: ratio <= 1.2,
    idleRssMiB: Math.round(rss),
    load: loadAverage(),
  };
  if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    process.stdout.write(
      `vm start → guest agent answers (${accel}, 512 MiB, 1 vCPU, ${opts.runs} rounds)\n` +
        `  vessel vm start   median ${sv.median} ms  (p10 ${sv.p10}, p90 ${sv.p90})\n` +
        `  bare qemu         median ${sb.median} ms  (p10 ${sb.p10}, p90 ${sb.p90})\n` +
        `  ratio vessel/bare ${r2(ratio)}  (goal ≤ 1.2: ${ratio <= 1.2 ? 'PASS' : 'FAIL'})\n` +
        `  QEMU RSS of an idle 512 MiB VM: ${Math.round(rss)} MiB\n` +
        `  load average ${loadAverage()}\n`,
    );
  }
  return 0;
}

runMain(main);
