/**
 * The everyday `vessel run` / lifecycle surface, checked against a real
 * vesseld + runc through the real CLI, with Docker's behaviour as reference.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { TestDaemon } from '../framework/daemon.js';
import { assertId, inspectF, inspectJson, leftoversFor, sleep, status, waitFor } from '../framework/helpers.js';

let d: TestDaemon;

before(async () => {
  d = new TestDaemon();
  await d.start();
  await d.ensureBusybox();
});

after(async () => {
  await d?.destroy();
});

/** `run -d` a long sleeper and return its id. */
async function sleeper(...flags: string[]): Promise<string> {
  return assertId(await d.ok(['run', '-d', ...flags, 'busybox', 'sleep', '1000']));
}

test('run --rm: stdout and stderr are kept apart and the exit code is the container’s', async () => {
  const r = await d.cli(['run', '--rm', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
  assert.equal(r.stdout, 'out\n');
  assert.equal(r.stderr, 'err\n');
  assert.equal(r.code, 3);
});

/** One Docker API request to the test daemon; resolves to status and parsed body. */
function api(method: string, urlPath: string, body?: unknown): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: d.socket, method, path: urlPath, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

test('120 concurrent unnamed creates all succeed with distinct generated names', async () => {
  const results = await Promise.all(
    Array.from({ length: 120 }, () => api('POST', '/containers/create', { Image: 'busybox', Cmd: ['true'] })),
  );
  const failed = results.filter((r) => r.status !== 201);
  assert.deepEqual(failed, []);
  const ids: string[] = results.map((r) => r.body.Id);
  const names = await Promise.all(ids.map(async (id) => (await api('GET', `/containers/${id}/json`)).body.Name));
  assert.equal(new Set(names).size, 120);
  await Promise.all(ids.map((id) => api('DELETE', `/containers/${id}`)));
});

test('run --rm leaves no container behind', async () => {
  const before = (await d.ok(['ps', '-aq'])).trim();
  await d.ok(['run', '--rm', 'busybox', 'true']);
  // --rm removal happens in the daemon after the exit; allow it a moment.
  await waitFor('the --rm container to be removed', async () => (await d.ok(['ps', '-aq'])).trim() === before, 20_000);
});

test('run -i pipes stdin to the container', async () => {
  const r = await d.cli(['run', '-i', '--rm', 'busybox', 'cat'], { input: 'hi\n', timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'hi\n');
});

test('run -d prints a 64-hex id; ps and ps -q show the container', async () => {
  const id = await sleeper('--name', 'detached1');
  const ps = await d.ok(['ps']);
  assert.match(ps, /detached1/);
  assert.ok(ps.includes(id.slice(0, 12)), `ps should show the short id ${id.slice(0, 12)}:\n${ps}`);
  const q = (await d.ok(['ps', '-q'])).split('\n').filter(Boolean);
  assert.ok(q.includes(id.slice(0, 12)), `ps -q should list ${id.slice(0, 12)}: ${q}`);
  for (const line of q) assert.match(line, /^[0-9a-f]{12}$/);
  const full = (await d.ok(['ps', '-q', '--no-trunc'])).split('\n').filter(Boolean);
  assert.ok(full.includes(id));
  await d.ok(['rm', '-f', id]);
});

test('ps -a --filter status=exited lists exited containers only', async () => {
  const running = await sleeper('--name', 'filt-running');
  await d.ok(['run', '--name', 'filt-exited', 'busybox', 'true']);
  const out = await d.ok(['ps', '-a', '--filter', 'status=exited', '--format', '{{.Names}}']);
  const names = out.split('\n').filter(Boolean);
  assert.ok(names.includes('filt-exited'), `exited container missing: ${names}`);
  assert.ok(!names.includes('filt-running'), `running container listed as exited: ${names}`);
  // Without -a, the exited container is not shown.
  const plain = await d.ok(['ps', '--format', '{{.Names}}']);
  assert.ok(!plain.split('\n').includes('filt-exited'));
  assert.ok(plain.split('\n').includes('filt-running'));
  await d.ok(['rm', '-f', running, 'filt-exited']);
});

test('--name names the container; inspect and rm accept the name', async () => {
  await d.ok(['run', '-d', '--name', 'named-one', 'busybox', 'sleep', '1000']);
  assert.equal(await inspectF(d, 'named-one', '{{.Name}}'), '/named-one');
  await d.ok(['rm', '-f', 'named-one']);
  const r = await d.cli(['inspect', 'named-one']);
  assert.notEqual(r.code, 0);
});

test('-e K=V and --env-file set the environment', async () => {
  const envFile = path.join(d.root, 'test.env');
  writeFileSync(envFile, '# a comment\nFROM_FILE=file value\n\nOTHER=2\n');
  const out = await d.ok([
    'run', '--rm', '-e', 'K=V', '-e', 'SPACED=a b', '--env-file', envFile, 'busybox',
    'sh', '-c', 'echo "$K|$SPACED|$FROM_FILE|$OTHER"',
  ]);
  assert.equal(out, 'V|a b|file value|2\n');
});

test('-w sets the working directory', async () => {
  assert.equal(await d.ok(['run', '--rm', '-w', '/tmp', 'busybox', 'pwd']), '/tmp\n');
  // A directory that does not exist yet is created, as in Docker.
  assert.equal(await d.ok(['run', '--rm', '-w', '/new/dir', 'busybox', 'pwd']), '/new/dir\n');
});

test('--entrypoint replaces the image entrypoint; the rest are its arguments', async () => {
  assert.equal(await d.ok(['run', '--rm', '--entrypoint', 'echo', 'busybox', 'a', 'b']), 'a b\n');
  assert.equal(await d.ok(['run', '--rm', '--entrypoint', '/bin/echo', 'busybox']), '\n');
});

test('--hostname sets the hostname', async () => {
  assert.equal(await d.ok(['run', '--rm', '--hostname', 'myhost', 'busybox', 'hostname']), 'myhost\n');
});

test('--label is visible in inspect and usable in ps --filter label=', async () => {
  const a = await sleeper('--label', 'team=blue', '--label', 'flag');
  const b = await sleeper('--label', 'team=red');
  const labels = JSON.parse(await inspectF(d, a, '{{json .Config.Labels}}'));
  assert.deepEqual(labels, { team: 'blue', flag: '' });
  const blue = (await d.ok(['ps', '-q', '--no-trunc', '--filter', 'label=team=blue'])).split('\n').filter(Boolean);
  assert.deepEqual(blue, [a]);
  const anyTeam = (await d.ok(['ps', '-q', '--no-trunc', '--filter', 'label=team'])).split('\n').filter(Boolean).sort();
  assert.deepEqual(anyTeam, [a, b].sort());
  await d.ok(['rm', '-f', a, b]);
});

test('-u 1000:1000 runs the process as that uid and gid', async () => {
  assert.equal(await d.ok(['run', '--rm', '-u', '1000:1000', 'busybox', 'sh', '-c', 'id -u; id -g']), '1000\n1000\n');
  assert.equal(await d.ok(['run', '--rm', '-u', 'nobody', 'busybox', 'id', '-u']), '65534\n');
});

test('logs, logs --tail 1 and logs --timestamps', async () => {
  await d.ok(['run', '--name', 'logger', 'busybox', 'sh', '-c', 'echo one; sleep 0.2; echo two >&2; sleep 0.2; echo three']);
  const all = await d.cli(['logs', 'logger']);
  assert.equal(all.code, 0);
  assert.equal(all.stdout, 'one\nthree\n');
  assert.equal(all.stderr, 'two\n');
  const tail = await d.cli(['logs', '--tail', '1', 'logger']);
  assert.equal(tail.stdout + tail.stderr, 'three\n');
  const ts = await d.cli(['logs', '--timestamps', 'logger']);
  const lines = (ts.stdout + ts.stderr).split('\n').filter(Boolean);
  assert.equal(lines.length, 3);
  for (const l of lines) {
    assert.match(l, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2}) (one|two|three)$/);
  }
  await d.ok(['rm', 'logger']);
});

test('logs -f follows until the container exits and returns every line', async () => {
  const id = assertId(
    await d.ok(['run', '-d', 'busybox', 'sh', '-c', 'for i in 1 2 3 4 5; do echo line$i; sleep 0.3; done']),
  );
  const r = await d.cli(['logs', '-f', id], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'line1\nline2\nline3\nline4\nline5\n');
  await d.ok(['rm', id]);
});

test('wait prints the exit code', async () => {
  const id = assertId(await d.ok(['run', '-d', 'busybox', 'sh', '-c', 'sleep 0.5; exit 7']));
  assert.equal(await d.ok(['wait', id], { timeoutMs: 60_000 }), '7\n');
  assert.equal(await inspectF(d, id, '{{.State.ExitCode}}'), '7');
  await d.ok(['rm', id]);
});

test('stop -t 1 of a process ignoring SIGTERM kills it: exit 137/143, status exited', async () => {
  const id = await sleeper();
  const r = await d.cli(['stop', '-t', '1', id], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await status(d, id), 'exited');
  const code = Number(await inspectF(d, id, '{{.State.ExitCode}}'));
  assert.ok(code === 137 || code === 143, `exit code ${code}`);
  assert.equal(await inspectF(d, id, '{{.State.Running}}'), 'false');
  await d.ok(['rm', id]);
});

test('kill -s USR1 delivers a trapped signal and the container keeps running', async () => {
  const id = assertId(
    await d.ok(['run', '-d', 'busybox', 'sh', '-c', "trap 'echo got' USR1; echo ready; while true; do sleep 0.2; done"]),
  );
  await waitFor('the trap to be installed', async () => (await d.ok(['logs', id])).includes('ready'));
  await d.ok(['kill', '-s', 'USR1', id]);
  await waitFor('the trap to run', async () => (await d.ok(['logs', id])).includes('got'), 20_000);
  assert.equal(await status(d, id), 'running');
  // Plain kill defaults to SIGKILL.
  await d.ok(['kill', id]);
  await waitFor('the container to exit', async () => (await status(d, id)) === 'exited');
  assert.equal(await inspectF(d, id, '{{.State.ExitCode}}'), '137');
  await d.ok(['rm', id]);
});

test('restart starts the container again with a new process', async () => {
  const id = await sleeper();
  const pid1 = await inspectF(d, id, '{{.State.Pid}}');
  const started1 = await inspectF(d, id, '{{.State.StartedAt}}');
  await d.ok(['restart', '-t', '1', id], { timeoutMs: 60_000 });
  assert.equal(await status(d, id), 'running');
  const pid2 = await inspectF(d, id, '{{.State.Pid}}');
  assert.notEqual(pid2, pid1);
  assert.notEqual(pid2, '0');
  assert.notEqual(await inspectF(d, id, '{{.State.StartedAt}}'), started1);
  await d.ok(['rm', '-f', id]);
});

test('restart of a --rm container keeps it, as Docker does; its exit after that removes it', async () => {
  const id = assertId(await d.ok(['run', '-d', '--rm', 'busybox', 'sleep', '1000']));
  const pid1 = await inspectF(d, id, '{{.State.Pid}}');
  await d.ok(['restart', '-t', '1', id], { timeoutMs: 60_000 });
  assert.equal(await status(d, id), 'running');
  assert.notEqual(await inspectF(d, id, '{{.State.Pid}}'), pid1);
  await d.ok(['stop', '-t', '1', id], { timeoutMs: 60_000 });
  await waitFor('the --rm container to be removed after its stop', async () => (await d.cli(['inspect', id])).code !== 0);
  assert.deepEqual(leftoversFor(d, id), []);
});

test('pause and unpause: status paused, then running again', async () => {
  const id = await sleeper();
  await d.ok(['pause', id]);
  assert.equal(await status(d, id), 'paused');
  assert.equal(await inspectF(d, id, '{{.State.Paused}}'), 'true');
  assert.match(await d.ok(['ps', '--filter', `id=${id}`]), /Paused/);
  await d.ok(['unpause', id]);
  assert.equal(await status(d, id), 'running');
  assert.equal(await inspectF(d, id, '{{.State.Paused}}'), 'false');
  // The process still works after unpause.
  assert.equal(await d.ok(['exec', id, 'echo', 'alive']), 'alive\n');
  await d.ok(['rm', '-f', id]);
});

test('rename changes the name; the old name no longer resolves', async () => {
  const id = await sleeper('--name', 'before-rename');
  await d.ok(['rename', 'before-rename', 'after-rename']);
  assert.equal(await inspectF(d, 'after-rename', '{{.Id}}'), id);
  assert.equal(await inspectF(d, id, '{{.Name}}'), '/after-rename');
  assert.notEqual((await d.cli(['inspect', 'before-rename'])).code, 0);
  await d.ok(['rm', '-f', id]);
});

test('top lists the container’s process', async () => {
  const id = await sleeper();
  const out = await d.ok(['top', id]);
  const lines = out.split('\n').filter(Boolean);
  assert.match(lines[0]!, /PID/);
  assert.ok(lines.slice(1).some((l) => /sleep 1000/.test(l)), `top output:\n${out}`);
  await d.ok(['rm', '-f', id]);
});

test('stats --no-stream shows the running container', async () => {
  const id = await sleeper('--name', 'statted');
  const out = await d.ok(['stats', '--no-stream'], { timeoutMs: 60_000 });
  const lines = out.split('\n').filter(Boolean);
  assert.match(lines[0]!, /CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE \/ LIMIT/);
  const row = lines.find((l) => l.includes('statted'));
  assert.ok(row, `stats output lacks the container:\n${out}`);
  assert.ok(row.startsWith(id.slice(0, 12)));
  assert.match(row, /\d+(\.\d+)?%/);
  const one = await d.ok(['stats', '--no-stream', id], { timeoutMs: 60_000 });
  assert.match(one, /statted/);
  await d.ok(['rm', '-f', id]);
});

test('inspect JSON has Docker’s State, Config, HostConfig and Mounts shape', async () => {
  const id = assertId(
    await d.ok([
      'run', '-d', '--name', 'inspected', '-e', 'A=1', '--tmpfs', '/scratch', '--memory', '64m',
      'busybox', 'sleep', '1000',
    ]),
  );
  const j = await inspectJson(d, id);
  assert.equal(j.Id, id);
  assert.equal(j.Name, '/inspected');
  assert.equal(j.Path, 'sleep');
  assert.deepEqual(j.Args, ['1000']);
  assert.match(j.Image, /^sha256:[0-9a-f]{64}$/);
  for (const k of ['Status', 'Running', 'Paused', 'Restarting', 'OOMKilled', 'Dead', 'Pid', 'ExitCode', 'Error', 'StartedAt', 'FinishedAt']) {
    assert.ok(k in j.State, `State.${k} missing`);
  }
  assert.equal(j.State.Status, 'running');
  assert.equal(j.State.Running, true);
  assert.equal(j.State.OOMKilled, false);
  assert.equal(j.State.ExitCode, 0);
  assert.ok(j.State.Pid > 0);
  assert.ok(!('Health' in j.State), 'State.Health is only present with a health check (as Docker)');
  assert.equal(j.Config.Image, 'busybox');
  assert.deepEqual(j.Config.Cmd, ['sleep', '1000']);
  assert.ok(j.Config.Env.includes('A=1'));
  assert.equal(j.HostConfig.Memory, 64 * 1024 * 1024);
  assert.ok(j.HostConfig.RestartPolicy && typeof j.HostConfig.RestartPolicy.Name === 'string');
  assert.ok(Array.isArray(j.Mounts));
  assert.ok(j.Mounts.some((m: { Type: string; Destination: string }) => m.Type === 'tmpfs' && m.Destination === '/scratch'));
  assert.equal(j.RestartCount, 0);
  assert.ok(j.LogPath);

  const h = assertId(await d.ok(['run', '-d', '--health-cmd', 'true', '--health-interval', '1s', 'busybox', 'sleep', '1000']));
  const hj = await inspectJson(d, h);
  assert.ok(hj.State.Health, 'State.Health present with a health check');
  assert.ok(['starting', 'healthy'].includes(hj.State.Health.Status));
  assert.ok('FailingStreak' in hj.State.Health && Array.isArray(hj.State.Health.Log));
  await d.ok(['rm', '-f', id, h]);
});

test('inspect Config shows the image defaults merged in (Env PATH, Cmd), as Docker does', async () => {
  const id = assertId(await d.ok(['create', '-e', 'A=1', 'busybox']));
  const j = await inspectJson(d, id);
  assert.ok(j.Config.Env.includes('A=1'));
  assert.ok(
    j.Config.Env.some((e: string) => e.startsWith('PATH=')),
    `image Env (PATH) should be merged into Config.Env: ${JSON.stringify(j.Config.Env)}`,
  );
  assert.deepEqual(j.Config.Cmd, ['sh'], 'the image Cmd should show in Config.Cmd when none was given');
  await d.ok(['rm', id]);
});

test('exec runs in the container and propagates the exit code', async () => {
  const id = await sleeper();
  assert.equal(await d.ok(['exec', id, 'echo', 'hi']), 'hi\n');
  const r = await d.cli(['exec', id, 'sh', '-c', 'exit 5']);
  assert.equal(r.code, 5);
  const err = await d.cli(['exec', id, 'sh', '-c', 'echo e >&2']);
  assert.equal(err.stderr, 'e\n');
  assert.equal(err.stdout, '');
  await d.ok(['rm', '-f', id]);
});

test('concurrent execs in one container each succeed with their own output and exit code', async () => {
  const id = await sleeper();
  const failures: string[] = [];
  for (let round = 0; round < 12; round++) {
    const results = await Promise.all(
      [0, 1, 2, 3].map((k) => d.cli(['exec', id, 'sh', '-c', `echo r${round}k${k}; exit ${10 + k}`], { timeoutMs: 60_000 })),
    );
    results.forEach((r, k) => {
      if (r.code !== 10 + k || r.stdout !== `r${round}k${k}\n` || r.stderr !== '') {
        failures.push(`round ${round} exec ${k}: code ${r.code}, stdout ${JSON.stringify(r.stdout)}, stderr ${JSON.stringify(r.stderr)}`);
      }
    });
  }
  assert.deepEqual(failures, []);
  await d.ok(['rm', '-f', id]);
});

test('exec -u, -e and -w', async () => {
  const id = await sleeper('-e', 'FROM_RUN=r');
  assert.equal(await d.ok(['exec', '-u', '1000', id, 'id', '-u']), '1000\n');
  assert.equal(await d.ok(['exec', '-e', 'A=b', id, 'sh', '-c', 'echo $A $FROM_RUN']), 'b r\n');
  assert.equal(await d.ok(['exec', '-w', '/tmp', id, 'pwd']), '/tmp\n');
  await d.ok(['rm', '-f', id]);
});

test('exec -i feeds exactly the piped stdin to the process', async () => {
  const id = await sleeper();
  const r = await d.cli(['exec', '-i', id, 'cat'], { input: 'piped in\n', timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'piped in\n');
  await d.ok(['rm', '-f', id]);
});

test('create then start runs the container', async () => {
  const id = assertId(await d.ok(['create', '--name', 'made', 'busybox', 'sh', '-c', 'echo created-then-started']));
  assert.equal(await status(d, id), 'created');
  assert.match(await d.ok(['ps', '-a', '--filter', 'status=created', '--format', '{{.Names}}']), /made/);
  await d.ok(['start', id]);
  assert.equal(await d.ok(['wait', id], { timeoutMs: 60_000 }), '0\n');
  assert.equal(await d.ok(['logs', id]), 'created-then-started\n');
  assert.equal(await status(d, id), 'exited');
  await d.ok(['rm', id]);
});

test('run -t without a terminal either works or fails with one clear line, and never hangs', async () => {
  const r = await d.cli(['run', '--rm', '-t', 'busybox', 'echo', 'tty'], { timeoutMs: 60_000 });
  if (r.code === 0) {
    assert.match(r.stdout, /tty\r?\n/);
  } else {
    const lines = r.stderr.split('\n').filter(Boolean);
    assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
    assert.ok(!r.stderr.includes('    at '));
  }
  const ri = await d.cli(['run', '--rm', '-it', 'busybox', 'echo', 'tty'], { input: '', timeoutMs: 60_000 });
  if (ri.code !== 0) {
    const lines = ri.stderr.split('\n').filter(Boolean);
    assert.equal(lines.length, 1, `expected one line, got:\n${ri.stderr}`);
    assert.match(lines[0]!, /tty|terminal/i);
  }
  await sleep(0);
});

test('the daemon and its conmons write nothing into vesseld’s working directory (after runs and execs)', async () => {
  // conmon writes `pidfile-<id>` (exec sessions without a pid file) and `oom`
  // relative to its cwd unless it is told where to; nothing may land there.
  assert.deepEqual(readdirSync(d.workDir), []);
});
