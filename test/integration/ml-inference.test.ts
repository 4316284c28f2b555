/**
 * examples/ml-inference end to end, exactly as its README says: the image is
 * built from the example directory with the real CLI (Debian packages over
 * the daemon's NAT, the model trained in a RUN step), run with
 * `--memory 1g --cpus 1.5 --read-only --tmpfs /tmp` and a published port,
 * reported healthy by the image's own HEALTHCHECK, and then asked real
 * questions over 127.0.0.1. Slow (apt downloads and a debian:bookworm
 * bootstrap on a cold cache): the timeouts are generous ceilings.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { REPO, TestDaemon } from '../framework/daemon.js';
import { inspectF, inspectJson, sleep, waitFor } from '../framework/helpers.js';

const EXAMPLE = path.join(REPO, 'examples', 'ml-inference');
const IMAGE = 'ml-inference';
const NAME = 'ml';

let d: TestDaemon;

/** Whether a TCP port can be bound on all addresses right now (what the daemon checks too). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: '0.0.0.0', exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** A port the kernel hands out as free (listen on 0), closed again before use. */
function ephemeralPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen({ port: 0, host: '0.0.0.0', exclusive: true }, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * The README publishes 8080; use it when it is free. On a shared machine
 * something else may hold it (another daemon's published port, a dev
 * server), so then fall back to a free ephemeral port — the container side
 * stays 8080 either way.
 */
async function hostPort(): Promise<number> {
  return (await portFree(8080)) ? 8080 : ephemeralPort();
}

before(async () => {
  d = new TestDaemon();
  await d.start();
  if ((await d.cli(['image', 'inspect', 'debian:bookworm'])).code !== 0) {
    // mmdebstrap from the Debian mirror; the .debs are cached in the shared test cache.
    await d.ok(['image', 'bootstrap', 'debian:bookworm', '--quiet'], { timeoutMs: 900_000 });
  }
});

after(async () => {
  if (!d) return;
  await d.cli(['rm', '-f', NAME]).catch(() => undefined);
  await d.destroy();
});

test('examples/ml-inference builds, runs read-only as a non-root user, turns healthy and serves predictions', { timeout: 2_400_000 }, async (t) => {
  const build = await d.ok(['build', '-t', IMAGE, EXAMPLE], { timeoutMs: 1_800_000 });
  assert.match(build, /held-out accuracy 0\.\d+/, 'the model is trained during the build');
  assert.match(build, /Successfully tagged ml-inference:latest/);
  assert.equal(await inspectF(d, IMAGE, '{{.Config.User}}'), 'app');
  assert.equal(await inspectF(d, IMAGE, '{{json .Config.ExposedPorts}}'), '{"8080/tcp":{}}');

  const port = await hostPort();
  t.diagnostic(`publishing on host port ${port}${port === 8080 ? '' : ' (8080 was taken)'}`);
  await d.ok(['run', '-d', '--name', NAME, '-p', `${port}:8080`, '--memory', '1g', '--cpus', '1.5', '--read-only', '--tmpfs', '/tmp', IMAGE]);

  const c = await inspectJson(d, NAME);
  assert.equal(c.HostConfig.ReadonlyRootfs, true);
  assert.equal(c.HostConfig.Memory, 1024 ** 3);
  assert.equal(c.HostConfig.NanoCpus, 1.5e9);

  // The image's HEALTHCHECK (python3 + urllib against /health inside the container).
  const health = await waitFor(
    'Health.Status healthy',
    async () => {
      const s = await inspectF(d, NAME, '{{.State.Status}} {{.State.Health.Status}}');
      if (!s.startsWith('running') || s.endsWith('unhealthy')) {
        const logs = await d.cli(['logs', NAME]);
        throw new Error(`container is ${s}; logs:\n${logs.stdout}${logs.stderr}`);
      }
      return s === 'running healthy' ? s : null;
    },
    240_000,
    1_000,
  ).catch(async (e: Error) => {
    // A container that died cannot recover: stop polling and show why.
    throw new Error(`${e.message}\ninspect State: ${JSON.stringify((await inspectJson(d, NAME)).State)}`);
  });
  assert.equal(health, 'running healthy');

  const base = `http://127.0.0.1:${port}`;
  const h = await fetch(`${base}/health`);
  assert.equal(h.status, 200);
  assert.deepEqual(await h.json(), { status: 'ok' });

  const predict = (body: unknown) =>
    fetch(`${base}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });

  // Points at the middle of each class of the bundled data set.
  const cases = [
    { reading: { temperature: 60, vibration: 2, pressure: 6, current: 10 }, condition: 'normal' },
    { reading: { temperature: 70, vibration: 4.5, pressure: 5.4, current: 12 }, condition: 'worn' },
    { reading: { temperature: 84, vibration: 8, pressure: 4.4, current: 15 }, condition: 'failing' },
  ];
  for (const { reading, condition } of cases) {
    const r = await predict(reading);
    assert.equal(r.status, 200, `POST /predict ${JSON.stringify(reading)}: ${r.status}`);
    const j = (await r.json()) as { condition: string; class_index: number; probabilities: Record<string, number>; model: { features: string[] } };
    assert.equal(j.condition, condition, JSON.stringify(j));
    assert.deepEqual(Object.keys(j.probabilities).sort(), ['failing', 'normal', 'worn']);
    const sum = Object.values(j.probabilities).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-3, `probabilities sum to ${sum}`);
    assert.ok(j.probabilities[condition]! > 0.5, `the predicted class is the likely one: ${JSON.stringify(j.probabilities)}`);
    assert.deepEqual(j.model.features, ['temperature', 'vibration', 'pressure', 'current']);
  }

  // Validation: FastAPI answers 422 with a `detail` list.
  const bad: unknown[] = [
    { temperature: 60, vibration: 2, pressure: 6 }, // missing field
    { temperature: 'hot', vibration: 2, pressure: 6, current: 10 }, // not a number
    { temperature: 60, vibration: -1, pressure: 6, current: 10 }, // out of range
    { temperature: 60, vibration: 2, pressure: 6, current: 10, colour: 'red' }, // unknown field
    [60, 2, 6, 10], // not an object
    '{"temperature": 60,', // not JSON
  ];
  for (const body of bad) {
    const r = await predict(body);
    assert.equal(r.status, 422, `POST /predict ${JSON.stringify(body)} should be 422, got ${r.status}`);
    assert.ok(Array.isArray(((await r.json()) as { detail: unknown }).detail));
  }
  assert.equal((await fetch(`${base}/predict`)).status, 405, 'GET /predict is not allowed');

  // Non-root, read-only root filesystem, writable tmpfs /tmp.
  const uid = (await d.ok(['exec', NAME, 'id', '-u'])).trim();
  assert.match(uid, /^\d+$/);
  assert.notEqual(uid, '0', 'the server must not run as root');
  assert.equal((await d.ok(['exec', NAME, 'id', '-un'])).trim(), 'app');
  assert.equal((await d.ok(['exec', NAME, 'id', '-g'])).trim(), '10001', 'the group the Dockerfile creates');
  // The server itself (the container's first process), not only what exec gets: real, effective, saved and fs uid.
  assert.match((await d.ok(['exec', NAME, 'cat', '/proc/1/cmdline'])).replace(/\0/g, ' '), /uvicorn app:app/);
  const uids = /^Uid:\s+(.*)$/m.exec(await d.ok(['exec', NAME, 'cat', '/proc/1/status']))?.[1]?.split(/\s+/);
  assert.deepEqual(uids, [uid, uid, uid, uid], 'uvicorn runs as the image user in every uid slot');
  const write = await d.cli(['exec', NAME, 'sh', '-c', 'echo x > /probe']);
  assert.notEqual(write.code, 0, 'writing to / must fail');
  assert.match(write.stderr, /Read-only file system/);
  const writeApp = await d.cli(['exec', NAME, 'sh', '-c', 'echo x > /app/probe']);
  assert.notEqual(writeApp.code, 0, 'writing to /app must fail');
  await d.ok(['exec', NAME, 'sh', '-c', 'echo x > /tmp/probe && rm /tmp/probe']);

  // Still healthy after all that, and the health log shows the real check.
  await sleep(100);
  const log = JSON.parse(await inspectF(d, NAME, '{{json .State.Health}}')) as { Status: string; Log: Array<{ ExitCode: number }> };
  assert.equal(log.Status, 'healthy');
  assert.ok(log.Log.length > 0 && log.Log.every((l) => l.ExitCode === 0), JSON.stringify(log.Log));
});
