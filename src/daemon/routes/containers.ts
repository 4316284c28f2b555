/** Docker Engine API: /containers/... */
import { encodeFrame, STDERR, STDOUT } from '../../api/stdcopy.js';
import { InvalidArgumentError, NotFoundError } from '../../core/errors.js';
import { ContainerCgroup, hostMemoryTotal, onlineCpus, systemCpuUsageNs } from '../../container/cgroups.js';
import { inspectContainer, matchesFilters, summarizeContainer, type NetView } from '../../container/inspect.js';
import type { WaitCondition } from '../../container/manager.js';
import type { ContainerRunConfig, ContainerSpec, HostConfig } from '../../container/model.js';
import { containerPaths } from '../../container/paths.js';
import { readLogs } from '../../container/logs.js';
import { top } from '../../container/top.js';
import { resizeTerminal } from '../../container/attach.js';
import type { DaemonContext } from '../context.js';
import { sendEmpty, sendJson } from '../context.js';
import { hijack, takeUpgradeBody } from '../hijack.js';
import { boolParam, parseFilters, readJson, type Router } from '../router.js';

const ID = '([^/]+)';

function intParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`Invalid value for ${name}: ${v}`);
  return n;
}

function netView(ctx: DaemonContext, ref: string): NetView {
  const id = ctx.manager.get(ref).id;
  return { endpoints: ctx.networks.store.endpoints({ containerId: id }), networks: ctx.networks.list() };
}

/** The body of `POST /containers/create`: the container config with HostConfig and NetworkingConfig inside. */
export type CreateBody = ContainerRunConfig & { HostConfig?: HostConfig; NetworkingConfig?: ContainerSpec['NetworkingConfig'] };

export function createSpec(body: CreateBody): ContainerSpec {
  const { HostConfig: hostConfig, NetworkingConfig: networking, ...config } = body;
  if (!config.Image) throw new InvalidArgumentError('Config.Image is required');
  return { Config: config, HostConfig: hostConfig ?? {}, NetworkingConfig: networking ?? null };
}

export function containerRoutes(r: Router, ctx: DaemonContext): void {
  const { manager } = ctx;

  r.add('POST', '/containers/create', async ({ req, res, query }) => {
    const created = await manager.create(query.get('name') || null, createSpec(await readJson<CreateBody>(req)));
    sendJson(res, 201, created);
    // A Docker client's start follows within a round trip or two: conmon gets going meanwhile.
    manager.prepareStart(created.Id);
  });

  r.add('GET', '/containers/json', ({ res, query }) => {
    const all = boolParam(query, 'all');
    const filters = parseFilters(query);
    const limit = intParam(query, 'limit');
    let list = manager
      .list()
      .filter((c) => all || c.state.Status === 'running' || c.state.Status === 'paused' || c.state.Status === 'restarting')
      .filter((c) => matchesFilters(c, filters));
    if (limit && limit > 0) list = list.slice(0, limit);
    sendJson(res, 200, list.map((c) => summarizeContainer(c, ctx.images, netView(ctx, c.id))));
  });

  r.add('GET', `/containers/${ID}/json`, ({ res, params }) => {
    sendJson(res, 200, inspectContainer(manager.get(params[0]!), ctx.paths, ctx.images, netView(ctx, params[0]!)));
  });

  r.add('POST', `/containers/${ID}/start`, async ({ res, params }) => {
    await manager.start(params[0]!);
    sendEmpty(res, 204);
  });

  r.add('POST', `/containers/${ID}/stop`, async ({ res, params, query }) => {
    await manager.stop(params[0]!, intParam(query, 't'), query.get('signal') ?? undefined);
    sendEmpty(res, 204);
  });

  r.add('POST', `/containers/${ID}/restart`, async ({ res, params, query }) => {
    await manager.restart(params[0]!, intParam(query, 't'));
    sendEmpty(res, 204);
  });

  r.add('POST', `/containers/${ID}/kill`, async ({ res, params, query }) => {
    await manager.kill(params[0]!, query.get('signal') || 'SIGKILL');
    sendEmpty(res, 204);
  });

  r.add('POST', `/containers/${ID}/pause`, async ({ res, params }) => {
    await manager.pause(params[0]!);
    sendEmpty(res, 204);
  });

  r.add('POST', `/containers/${ID}/unpause`, async ({ res, params }) => {
    await manager.unpause(params[0]!);
    sendEmpty(res, 204);
  });

  r.add('POST', `/containers/${ID}/rename`, async ({ res, params, query }) => {
    const name = query.get('name');
    if (!name) throw new InvalidArgumentError('A new name is needed');
    await manager.rename(params[0]!, name);
    sendEmpty(res, 204);
  });

  r.add('DELETE', `/containers/${ID}`, async ({ res, params, query }) => {
    await manager.remove(params[0]!, { force: boolParam(query, 'force'), removeVolumes: boolParam(query, 'v') });
    sendEmpty(res, 204);
  });

  r.add('POST', `/containers/${ID}/wait`, async ({ res, params, query }) => {
    const condition = (query.get('condition') || 'not-running') as WaitCondition;
    if (!['not-running', 'next-exit', 'removed'].includes(condition)) {
      throw new InvalidArgumentError(`Invalid condition: ${condition}`);
    }
    const result = manager.wait(params[0]!, condition);
    // Docker clients call wait before start and block until headers arrive.
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.flushHeaders();
    const body = await result;
    res.end(JSON.stringify(body) + '\n');
  });

  r.add('POST', `/containers/${ID}/attach`, async (rc) => {
    const { params, query } = rc;
    const c = manager.get(params[0]!);
    const tty = !!c.spec.Config.Tty;
    const stream = boolParam(query, 'stream', true);
    if (!stream && !boolParam(query, 'logs')) throw new InvalidArgumentError('Attach needs stream=1');
    await takeUpgradeBody(rc);
    const conn = hijack(rc, tty);
    const session = manager.attach(c.id, {
      stdin: boolParam(query, 'stdin'),
      stdout: boolParam(query, 'stdout'),
      stderr: boolParam(query, 'stderr'),
      onOutput: (s, data) => conn.write(tty ? data : encodeFrame(s === 'stderr' ? STDERR : STDOUT, data)),
    });
    conn.onData((d) => session.writeStdin(d));
    conn.onEnd(() => session.endStdin());
    conn.onClose(() => session.finish());
    await session.done;
    conn.end();
  });

  r.add('POST', `/containers/${ID}/resize`, async ({ res, params, query }) => {
    const c = manager.get(params[0]!);
    const h = intParam(query, 'h') ?? 24;
    const w = intParam(query, 'w') ?? 80;
    if (c.state.Status === 'running' && c.spec.Config.Tty) {
      await resizeTerminal(containerPaths(ctx.paths, c.id).bundle, h, w).catch(() => {});
    }
    sendEmpty(res, 200);
  });

  r.add('GET', `/containers/${ID}/logs`, async ({ req, res, params, query }) => {
    const c = manager.get(params[0]!);
    const stdout = boolParam(query, 'stdout');
    const stderr = boolParam(query, 'stderr');
    if (!stdout && !stderr) throw new InvalidArgumentError('You must choose at least one stream');
    const tail = query.get('tail');
    const tty = !!c.spec.Config.Tty;
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    const sinceS = query.get('since');
    const untilS = query.get('until');
    const toNs = (v: string | null) => (v && Number(v) > 0 ? BigInt(Math.floor(Number(v) * 1e9)) : undefined);
    res.writeHead(200, { 'Content-Type': tty ? 'application/vnd.docker.raw-stream' : 'application/vnd.docker.multiplexed-stream' });
    res.flushHeaders();
    const sinceNs = toNs(sinceS);
    const untilNs = toNs(untilS);
    const iter = readLogs(containerPaths(ctx.paths, c.id).log, {
      stdout,
      stderr,
      ...(tail && tail !== 'all' && Number(tail) >= 0 ? { tail: Number(tail) } : {}),
      ...(sinceNs !== undefined ? { sinceNs } : {}),
      ...(untilNs !== undefined ? { untilNs } : {}),
      follow: boolParam(query, 'follow'),
      timestamps: boolParam(query, 'timestamps'),
      signal: abort.signal,
      isRunning: () => {
        const cur = manager.store.get(c.id);
        return !!cur && (cur.state.Status === 'running' || cur.state.Status === 'paused' || cur.state.Status === 'restarting');
      },
    });
    try {
      for await (const chunk of iter) {
        if (res.destroyed) break;
        res.write(tty ? chunk.data : encodeFrame(chunk.stream === 'stderr' ? STDERR : STDOUT, chunk.data));
      }
    } catch (e) {
      if (!abort.signal.aborted) throw e;
    }
    void req;
    res.end();
  });

  r.add('GET', `/containers/${ID}/top`, async ({ res, params, query }) => {
    const c = manager.get(params[0]!);
    if (c.state.Status !== 'running' && c.state.Status !== 'paused') {
      throw new InvalidArgumentError(`Container ${c.id} is not running`);
    }
    const pids = await new ContainerCgroup(`${ctx.paths.cgroupParent}/${c.id}`).pids();
    sendJson(res, 200, await top(pids, query.get('ps_args') || undefined));
  });

  r.add('GET', `/containers/${ID}/stats`, async ({ res, params, query }) => {
    const c = manager.get(params[0]!);
    const stream = boolParam(query, 'stream', true);
    const oneShot = boolParam(query, 'one-shot');
    const cg = new ContainerCgroup(`${ctx.paths.cgroupParent}/${c.id}`);
    const running = () => manager.store.get(c.id)?.state.Status === 'running';
    const sample = async () => {
      const zero = { cpuUsageNs: 0n, memoryUsage: 0, memoryLimit: hostMemoryTotal(), memoryInactiveFile: 0, pids: 0, pidsLimit: null, blkioReadBytes: 0, blkioWriteBytes: 0, oomKillCount: 0 };
      const s = running() ? await cg.readStats().catch(() => zero) : zero;
      return { s, system: await systemCpuUsageNs(), at: new Date().toISOString() };
    };
    const view = (cur: Awaited<ReturnType<typeof sample>>, prev: Awaited<ReturnType<typeof sample>> | null) => {
      const cpu = (x: Awaited<ReturnType<typeof sample>> | null) => ({
        cpu_usage: { total_usage: Number(x?.s.cpuUsageNs ?? 0n), usage_in_kernelmode: 0, usage_in_usermode: 0 },
        system_cpu_usage: Number(x?.system ?? 0n),
        online_cpus: onlineCpus(),
        throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
      });
      const memStats: Record<string, number> =
        ctx.cgroupVersion === 1 ? { total_inactive_file: cur.s.memoryInactiveFile } : { inactive_file: cur.s.memoryInactiveFile };
      return {
        read: cur.at,
        preread: prev?.at ?? '0001-01-01T00:00:00Z',
        name: `/${c.name}`,
        id: c.id,
        num_procs: 0,
        pids_stats: { current: cur.s.pids, ...(cur.s.pidsLimit ? { limit: cur.s.pidsLimit } : {}) },
        cpu_stats: cpu(cur),
        precpu_stats: cpu(prev),
        memory_stats: { usage: cur.s.memoryUsage, limit: cur.s.memoryLimit, stats: memStats },
        blkio_stats: {
          io_service_bytes_recursive: [
            { major: 0, minor: 0, op: 'read', value: cur.s.blkioReadBytes },
            { major: 0, minor: 0, op: 'write', value: cur.s.blkioWriteBytes },
          ],
        },
        networks: {},
      };
    };
    res.writeHead(200, { 'Content-Type': 'application/json' });
    let prev = oneShot ? null : await sample();
    if (!stream) {
      if (prev) await new Promise((r) => setTimeout(r, 500));
      const cur = await sample();
      res.end(JSON.stringify(view(cur, prev)) + '\n');
      return;
    }
    let closed = false;
    res.on('close', () => (closed = true));
    while (!closed) {
      await new Promise((r) => setTimeout(r, 1000));
      const cur = await sample();
      res.write(JSON.stringify(view(cur, prev)) + '\n');
      prev = cur;
      if (!running()) break;
    }
    res.end();
  });

  r.add('POST', `/containers/${ID}/exec`, async ({ req, res, params }) => {
    const body = await readJson<Parameters<typeof ctx.execs.create>[1]>(req);
    sendJson(res, 201, { Id: ctx.execs.create(params[0]!, body) });
  });

  r.add('GET', '/containers/([^/]+)/export', () => {
    throw new NotFoundError('Container export is not supported yet');
  });
}
