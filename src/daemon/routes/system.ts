/** Docker Engine API: /_ping, /version, /info, /events. */
import os from 'node:os';
import { readFileSync } from 'node:fs';
import type { ContainerEvent } from '../../container/manager.js';
import { ksmStats } from '../../vm/host.js';
import type { DaemonContext } from '../context.js';
import { sendJson } from '../context.js';
import type { Router } from '../router.js';
import { VERSION, API_VERSION } from '../../version.js';

function osName(): string {
  try {
    return /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'Linux';
  } catch {
    return 'Linux';
  }
}

export function systemRoutes(r: Router, ctx: DaemonContext): void {
  r.add('GET', '/_ping', ({ res }) => {
    res.writeHead(200, {
      'Content-Type': 'text/plain; charset=utf-8',
      'Api-Version': API_VERSION,
      Ostype: 'linux',
      'Docker-Experimental': 'false',
      'Builder-Version': '1',
      Swarm: 'inactive',
      'Cache-Control': 'no-cache, no-store, must-revalidate',
      Pragma: 'no-cache',
    });
    res.end('OK');
  });

  r.add('GET', '/version', ({ res }) => {
    sendJson(res, 200, {
      Platform: { Name: 'Vessel' },
      Components: [
        {
          Name: 'Engine',
          Version: VERSION,
          Details: {
            ApiVersion: API_VERSION,
            MinAPIVersion: '1.24',
            Arch: process.arch === 'x64' ? 'amd64' : process.arch,
            Os: 'linux',
            KernelVersion: os.release(),
            GoVersion: `node ${process.version}`,
            GitCommit: '',
            BuildTime: '',
            Experimental: 'false',
          },
        },
        { Name: 'runc', Version: ctx.config.runtime, Details: { GitCommit: '' } },
        { Name: 'conmon', Version: 'conmon', Details: { GitCommit: '' } },
      ],
      Version: VERSION,
      ApiVersion: API_VERSION,
      MinAPIVersion: '1.24',
      Os: 'linux',
      Arch: process.arch === 'x64' ? 'amd64' : process.arch,
      KernelVersion: os.release(),
      GoVersion: `node ${process.version}`,
      BuildTime: '',
    });
  });

  r.add('GET', '/info', async ({ res }) => {
    const accel = await ctx.vms.runner.accelerator().catch((e: unknown) => ({ accel: 'none', reason: String((e as Error).message ?? e) }));
    const vmList = ctx.vms.list();
    const list = ctx.manager.list();
    const count = (s: string) => list.filter((c) => c.state.Status === s).length;
    const runtime = ctx.manager.runtimeFor(null);
    sendJson(res, 200, {
      ID: ctx.paths.cgroupParent.slice(1),
      Containers: list.length,
      ContainersRunning: count('running'),
      ContainersPaused: count('paused'),
      ContainersStopped: list.length - count('running') - count('paused'),
      Images: ctx.images.list().length,
      Driver: 'overlay',
      DockerRootDir: ctx.paths.root,
      CgroupDriver: 'cgroupfs',
      CgroupVersion: String(ctx.cgroupVersion),
      KernelVersion: os.release(),
      OperatingSystem: osName(),
      OSType: 'linux',
      Architecture: os.machine(),
      NCPU: os.cpus().length,
      MemTotal: os.totalmem(),
      Name: os.hostname(),
      ServerVersion: VERSION,
      DefaultRuntime: runtime.name,
      Runtimes: { [runtime.name]: { path: runtime.binary } },
      SecurityOptions: ['name=seccomp,profile=builtin', 'name=no-new-privileges'],
      LoggingDriver: 'k8s-file',
      Vessel: {
        Socket: ctx.config.host,
        CgroupParent: ctx.paths.cgroupParent,
        DefaultBridge: ctx.config.bridge,
        DefaultSubnet: ctx.config.subnet,
        Monitor: 'conmon',
        VMs: vmList.length,
        VMsRunning: vmList.filter((v) => v.state.status === 'running' || v.state.status === 'paused').length,
        VMAccelerator: accel.accel,
        VMAcceleratorReason: accel.reason,
        KSM: ksmStats(),
      },
    });
  });

  r.add('GET', '/events', ({ res }) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.flushHeaders();
    const onEvent = (e: ContainerEvent) => {
      const now = Date.now();
      res.write(
        JSON.stringify({
          status: e.action,
          id: e.id,
          from: e.attributes.image ?? '',
          Type: 'container',
          Action: e.action,
          Actor: { ID: e.id, Attributes: e.attributes },
          scope: 'local',
          time: Math.floor(now / 1000),
          timeNano: now * 1e6,
        }) + '\n',
      );
    };
    ctx.manager.on('event', onEvent);
    res.on('close', () => ctx.manager.off('event', onEvent));
  });
}
