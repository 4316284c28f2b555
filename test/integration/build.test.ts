/**
 * `vessel build` end to end: a multi-stage Dockerfile with most instructions,
 * the layer cache (everything CACHED on a rebuild; only the steps after the
 * COPY of a changed file re-run), and failures that name the Dockerfile line
 * and leave nothing half made.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TestDaemon } from '../framework/daemon.js';
import { assertOneLineError, inspectF } from '../framework/helpers.js';

let d: TestDaemon;
let ctx: string;

const DOCKERFILE = `# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM \${BASE} AS builder
WORKDIR /src
COPY app.txt ./
RUN echo "built: $(cat app.txt)" > out.txt && \\
    echo compiled

FROM busybox
ARG GREETING=hello
ENV GREETING=$GREETING APP_HOME=/app
LABEL org.example.name="demo app"
RUN echo "app:x:1000:1000::/app:/bin/sh" >> /etc/passwd && echo "app:x:1000:" >> /etc/group
WORKDIR /app
COPY --from=builder /src/out.txt .
COPY --chown=1000:1000 --chmod=640 app.txt data/
ADD bundle.tar /app/unpacked/
EXPOSE 8080
VOLUME /app/state
USER app
HEALTHCHECK --interval=2s --retries=2 CMD test -f /app/out.txt
STOPSIGNAL SIGINT
ENTRYPOINT ["sh", "-c"]
CMD ["echo $GREETING; cat /app/out.txt; id -u; stat -c '%u %g %a' /app/data/app.txt; cat /app/unpacked/inside.txt"]
`;

before(async () => {
  d = new TestDaemon();
  await d.start();
  await d.ensureBusybox();
  ctx = mkdtempSync(path.join(os.tmpdir(), 'vt-build-'));
  writeFileSync(path.join(ctx, 'Dockerfile'), DOCKERFILE);
  writeFileSync(path.join(ctx, 'app.txt'), 'v1\n');
  writeFileSync(path.join(ctx, '.dockerignore'), 'secret.txt\n');
  writeFileSync(path.join(ctx, 'secret.txt'), 'do not send\n');
  const bundle = path.join(ctx, 'b');
  mkdirSync(bundle);
  writeFileSync(path.join(bundle, 'inside.txt'), 'from the tar\n');
  const { spawnSync } = await import('node:child_process');
  spawnSync('tar', ['-C', bundle, '-cf', path.join(ctx, 'bundle.tar'), 'inside.txt']);
  rmSync(bundle, { recursive: true });
});

after(async () => {
  await d?.destroy();
  if (ctx) rmSync(ctx, { recursive: true, force: true });
});

test('a multi-stage Dockerfile builds and the image runs with its user, workdir, env, entrypoint and files', async () => {
  const out = await d.ok(['build', '-t', 'demo:1', '--label', 'built.by=test', ctx], { timeoutMs: 300_000 });
  assert.match(out, /Step 1\/20 : FROM \$\{BASE\} AS builder/);
  assert.match(out, /compiled/);
  assert.match(out, /Successfully tagged demo:1/);
  const run = await d.ok(['run', '--rm', 'demo:1']);
  assert.equal(run, 'hello\nbuilt: v1\n1000\n1000 1000 640\nfrom the tar\n');
  assert.equal(await inspectF(d, 'demo:1', '{{.Config.User}} {{.Config.WorkingDir}} {{.Config.StopSignal}}'), 'app /app SIGINT');
  assert.equal(await inspectF(d, 'demo:1', '{{json .Config.ExposedPorts}}'), '{"8080/tcp":{}}');
  assert.equal(await inspectF(d, 'demo:1', '{{json .Config.Volumes}}'), '{"/app/state":{}}');
  assert.match(await inspectF(d, 'demo:1', '{{json .Config.Labels}}'), /"org.example.name":"demo app".*"built.by":"test"|"built.by":"test".*"org.example.name":"demo app"/);
  assert.match(await inspectF(d, 'demo:1', '{{json .Config.Env}}'), /GREETING=hello/);
  const secret = await d.cli(['run', '--rm', '--entrypoint', 'ls', 'demo:1', '/app']);
  assert.doesNotMatch(secret.stdout, /secret/);
  // The health check from the image applies.
  const id = (await d.ok(['run', '-d', 'demo:1', 'sleep 60'])).trim();
  for (let i = 0; i < 40 && (await inspectF(d, id, '{{.State.Health.Status}}')) !== 'healthy'; i++) await new Promise((r) => setTimeout(r, 500));
  assert.equal(await inspectF(d, id, '{{.State.Health.Status}}'), 'healthy');
  await d.ok(['rm', '-f', id]);
});

test('a rebuild with nothing changed is all CACHED; touching the app file re-runs only what follows its COPY', async () => {
  const again = await d.ok(['build', '-t', 'demo:1', ctx], { timeoutMs: 300_000 });
  const steps = again.split('Step ').slice(1);
  const nonFrom = steps.filter((s) => !/^\d+\/\d+ : FROM /.test(s));
  assert.ok(nonFrom.every((s) => s.includes('CACHED')), `every non-FROM step must be CACHED:\n${again}`);
  writeFileSync(path.join(ctx, 'app.txt'), 'v2\n');
  const changed = await d.ok(['build', '-t', 'demo:2', ctx], { timeoutMs: 300_000 });
  const cachedOf = (n: number) => new RegExp(`Step ${n}/20 : [^\\n]*\\n ---> CACHED`).test(changed);
  assert.ok(cachedOf(2), 'WORKDIR before the COPY stays cached');
  assert.ok(!cachedOf(3), 'the COPY of the changed file re-runs');
  assert.ok(!cachedOf(4), 'the RUN after it re-runs');
  assert.ok(cachedOf(6) && cachedOf(7) && cachedOf(8) && cachedOf(9), 'the second stage up to its first dependent step stays cached');
  assert.match(await d.ok(['run', '--rm', 'demo:2']), /built: v2/);
});

test('a failing RUN names the Dockerfile line, exits non-zero and leaves no container or tag', async () => {
  const bad = mkdtempSync(path.join(os.tmpdir(), 'vt-build-bad-'));
  try {
    writeFileSync(path.join(bad, 'Dockerfile'), 'FROM busybox\nRUN echo before\nRUN echo failing-output; exit 3\n');
    const before = (await d.ok(['ps', '-aq'])).trim();
    const r = await d.cli(['build', '-t', 'bad:1', bad]);
    assert.notEqual(r.code, 0);
    assert.match(r.stdout, /failing-output/);
    assertOneLineError(r, 'failing RUN', /Dockerfile:3: .*non-zero code: 3/);
    assert.equal((await d.ok(['ps', '-aq'])).trim(), before);
    assert.notEqual((await d.cli(['image', 'inspect', 'bad:1'])).code, 0);
    writeFileSync(path.join(bad, 'Dockerfile'), 'FROM busybox\nRUNN echo typo\n');
    assertOneLineError(await d.cli(['build', bad]), 'syntax error', /Dockerfile:2: unknown instruction: RUNN/i);
    writeFileSync(path.join(bad, 'Dockerfile'), 'FROM busybox\nCOPY missing.txt /x\n');
    assertOneLineError(await d.cli(['build', bad]), 'missing COPY source', /Dockerfile:2: .*missing\.txt/);
    writeFileSync(path.join(bad, 'Dockerfile'), 'FROM nosuchbase:1\n');
    assertOneLineError(await d.cli(['build', bad]), 'unknown base', /No such image: nosuchbase:1/);
  } finally {
    rmSync(bad, { recursive: true, force: true });
  }
});

test('builder prune empties the cache: the next build runs every step', async () => {
  await d.ok(['builder', 'prune', '-f']);
  const out = await d.ok(['build', '-t', 'demo:3', ctx], { timeoutMs: 300_000 });
  assert.doesNotMatch(out, /CACHED/);
  assert.ok(readdirSync(ctx).includes('Dockerfile'));
});

test('build scratch (context, COPY staging) lives under the daemon root, is removed after each build and emptied at start-up', async () => {
  const scratch = path.join(d.stateRoot, 'tmp');
  writeFileSync(path.join(ctx, 'app.txt'), 'v3\n');
  await d.ok(['build', '-t', 'demo:4', ctx], { timeoutMs: 300_000 });
  assert.deepEqual(readdirSync(scratch), [], 'nothing is left in the scratch dir after a build');
  // What a daemon killed mid-build would leave: the next start removes it.
  mkdirSync(path.join(scratch, 'build-stale', 'sub'), { recursive: true });
  writeFileSync(path.join(scratch, 'build-stale', 'sub', 'f'), 'x');
  await d.kill9();
  await d.restart();
  assert.deepEqual(readdirSync(scratch), []);
});
