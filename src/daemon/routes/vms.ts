/** Vessel's VM API: /vessel/vms/... (no Docker equivalent). */
import { createReadStream, existsSync, statSync, watch } from 'node:fs';
import net from 'node:net';
import { errorMessage, NotFoundError, UnavailableError } from '../../core/errors.js';
import type { VmRecord } from '../../vm/model.js';
import type { VmService } from '../../vm/vms.js';
import type { VmCreateRequest } from '../../vm/vm-manager.js';
import { sendEmpty, sendJson } from '../context.js';
import { hijack } from '../hijack.js';
import { boolParam, readJson, type Router } from '../router.js';

const REF = '([^/]+)';

export function vmSummary(vm: VmRecord, ips: Array<{ ip: string }>): Record<string, unknown> {
  return {
    Id: vm.id,
    Name: vm.name,
    Image: vm.config.image,
    Status: vm.state.status,
    Vcpus: vm.config.vcpus,
    Memory: vm.config.memory,
    IPs: ips.map((i) => i.ip),
    Created: vm.created,
    StartedAt: vm.state.startedAt,
    Reason: vm.state.reason,
  };
}

export function vmRoutes(r: Router, vms: VmService): void {
  r.add('GET', '/vessel/vms/json', ({ res }) => {
    sendJson(res, 200, vms.list().map((vm) => vmSummary(vm, vms.ip(vm.id))));
  });

  // Creating may fetch the guest kernel and build a base disk: progress as JSON lines, errors as a final `error` line.
  r.add('POST', '/vessel/vms/create', async ({ req, res }) => {
    const body = await readJson<VmCreateRequest & { start?: boolean }>(req);
    vms.manager.validate(body);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    const send = (m: object) => {
      if (!res.destroyed) res.write(JSON.stringify(m) + '\n');
    };
    try {
      const vm = await vms.create(body, (line) => send({ status: line }));
      send({ aux: vmSummary(vm, vms.ip(vm.id)) });
    } catch (e) {
      send({ error: errorMessage(e), errorDetail: { message: errorMessage(e) } });
    }
    res.end();
  });

  r.add('GET', `/vessel/vms/${REF}/json`, async ({ res, params }) => sendJson(res, 200, await vms.inspect(params[0]!)));

  const action = (name: string, fn: (ref: string, q: URLSearchParams) => Promise<void>) =>
    r.add('POST', `/vessel/vms/${REF}/${name}`, async ({ res, params, query }) => {
      await fn(params[0]!, query);
      sendEmpty(res, 204);
    });
  const timeout = (q: URLSearchParams) => (q.get('t') !== null ? Number(q.get('t')) : undefined);
  action('start', (ref) => vms.start(ref));
  action('stop', (ref, q) => vms.stop(ref, timeout(q)));
  action('restart', (ref, q) => vms.restart(ref, timeout(q)));
  action('kill', (ref) => vms.kill(ref));
  action('pause', (ref) => vms.pause(ref));
  action('resume', (ref) => vms.resume(ref));

  r.add('DELETE', `/vessel/vms/${REF}`, async ({ res, params, query }) => {
    await vms.rm(params[0]!, boolParam(query, 'force'));
    sendEmpty(res, 204);
  });

  r.add('POST', `/vessel/vms/${REF}/exec`, async ({ req, res, params }) => {
    const body = await readJson<{ Cmd?: string[]; Env?: string[]; Stdin?: string; TimeoutMs?: number }>(req);
    const out = await vms.exec(params[0]!, body.Cmd ?? [], {
      ...(body.TimeoutMs ? { timeoutMs: body.TimeoutMs } : {}),
      ...(body.Env ? { env: body.Env } : {}),
      ...(body.Stdin !== undefined ? { input: body.Stdin } : {}),
    });
    sendJson(res, 200, { ExitCode: out.exitCode, Signal: out.signal ?? null, Stdout: out.stdout, Stderr: out.stderr });
  });

  r.add('GET', `/vessel/vms/${REF}/ip`, ({ res, params }) => sendJson(res, 200, vms.ip(params[0]!)));

  r.add('GET', `/vessel/vms/${REF}/logs`, async ({ req, res, params, query }) => {
    const vm = vms.manager.resolve(params[0]!);
    const file = vms.manager.files(vm).serialLog;
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
    let offset = 0;
    const pump = () =>
      new Promise<void>((resolve) => {
        if (!existsSync(file)) return resolve();
        const size = statSync(file).size;
        if (size <= offset) return resolve();
        const s = createReadStream(file, { start: offset, end: size - 1 });
        offset = size;
        s.on('data', (d) => res.write(d));
        s.on('end', resolve);
        s.on('error', () => resolve());
      });
    await pump();
    if (!boolParam(query, 'follow')) return void res.end();
    const timer = setInterval(() => void pump(), 250);
    const w = existsSync(file) ? watch(file, () => void pump()) : null;
    req.socket.once('close', () => {
      clearInterval(timer);
      w?.close();
    });
  });

  // Interactive serial console: an Upgrade connection joined to QEMU's console socket.
  r.add('POST', `/vessel/vms/${REF}/console`, async (rc) => {
    const vm = vms.manager.resolve(rc.params[0]!);
    if (!vms.runner.isLive(vm.id)) throw new UnavailableError(`VM ${vm.name} is not running`);
    const path = vms.manager.files(vm).console;
    const sock = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(path);
      s.once('connect', () => resolve(s));
      s.once('error', (e) => reject(new UnavailableError(`Console of VM ${vm.name} is busy or gone: ${e.message}`)));
    });
    const conn = hijack(rc, true);
    sock.on('data', (d) => conn.write(d));
    sock.on('close', () => conn.end());
    sock.on('error', () => conn.end());
    conn.onData((d) => sock.write(d));
    conn.onClose(() => sock.destroy());
  });

  r.add('POST', `/vessel/vms/${REF}/memory`, async ({ req, res, params }) => {
    const body = await readJson<{ Bytes?: number }>(req);
    await vms.setMemory(params[0]!, Number(body.Bytes));
    sendEmpty(res, 204);
  });

  r.add('GET', `/vessel/vms/${REF}/snapshots`, ({ res, params }) => sendJson(res, 200, vms.snapshots.list(vms.manager.resolve(params[0]!))));
  r.add('POST', `/vessel/vms/${REF}/snapshots`, async ({ req, res, params }) => {
    const body = await readJson<{ Name?: string }>(req);
    sendJson(res, 201, await vms.snapshotCreate(params[0]!, body.Name ?? ''));
  });
  r.add('POST', `/vessel/vms/${REF}/snapshots/${REF}/restore`, async ({ res, params }) => {
    await vms.snapshotRestore(params[0]!, params[1]!);
    sendEmpty(res, 204);
  });
  r.add('DELETE', `/vessel/vms/${REF}/snapshots/${REF}`, async ({ res, params }) => {
    await vms.snapshotRemove(params[0]!, params[1]!);
    sendEmpty(res, 204);
  });
  r.add('POST', `/vessel/vms/${REF}/clone`, async ({ req, res, params }) => {
    const body = await readJson<{ Name?: string; Snapshot?: string }>(req);
    if (!body.Snapshot) throw new NotFoundError('A snapshot is needed: vm clone --from-snapshot SNAP SOURCE NEW');
    const vm = await vms.clone(params[0]!, body.Snapshot, body.Name ?? '');
    sendJson(res, 201, vmSummary(vm, vms.ip(vm.id)));
  });

  r.add('GET', `/vessel/vms/${REF}/disks`, async ({ res, params }) => sendJson(res, 200, await vms.disks(params[0]!)));
  r.add('POST', `/vessel/vms/${REF}/disks`, async ({ req, res, params }) => {
    const body = await readJson<{ Name?: string; Size?: number; File?: string }>(req);
    if (body.File) await vms.diskAttach(params[0]!, body.Name ?? '', body.File);
    else await vms.diskCreate(params[0]!, body.Name ?? '', Number(body.Size));
    sendEmpty(res, 201);
  });
  r.add('POST', `/vessel/vms/${REF}/disks/${REF}/resize`, async ({ req, res, params }) => {
    const body = await readJson<{ Size?: number }>(req);
    await vms.diskResize(params[0]!, params[1]!, Number(body.Size));
    sendEmpty(res, 204);
  });
  r.add('DELETE', `/vessel/vms/${REF}/disks/${REF}`, async ({ res, params }) => {
    await vms.diskDetach(params[0]!, params[1]!);
    sendEmpty(res, 204);
  });
}
