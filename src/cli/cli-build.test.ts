/** `vessel build` end to end (the built CLI) against a recording stand-in daemon. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { extract } from 'tar-stream';
import { runCli, withDaemon, type Handler } from './testing.js';
import { tempDir } from '../core/test-temp-dirs.js';


const IMAGE_ID = `sha256:${'5'.repeat(64)}`;
const LINES = [
  { stream: 'Step 1/2 : FROM busybox\n' },
  { stream: ' ---> 0123456789ab\n' },
  { stream: 'Step 2/2 : RUN echo hi\n' },
  { stream: ' ---> Running in c0ffee000000\n' },
  { stream: 'hi\n' },
  { stream: ' ---> 555555555555\n' },
  { aux: { ID: IMAGE_ID } },
  { stream: 'Successfully built 555555555555\n' },
  { stream: 'Successfully tagged app:1\n' },
];
const RAW = LINES.map((l) => JSON.stringify(l)).join('\n') + '\n';

/** Entry names of a tar body (the recorder keeps it as a string; the test files are ASCII). */
async function tarNames(body: string): Promise<Map<string, string>> {
  const ex = extract();
  Readable.from([Buffer.from(body)]).pipe(ex);
  const out = new Map<string, string>();
  for await (const entry of ex) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    out.set(entry.header.name, Buffer.concat(chunks).toString());
  }
  return out;
}

function context(): string {
  const dir = tempDir('vessel-build-');
  writeFileSync(join(dir, 'Dockerfile'), 'FROM busybox\nRUN echo hi\n');
  writeFileSync(join(dir, '.dockerignore'), 'secret*\n*.tmp\n');
  writeFileSync(join(dir, 'app.js'), 'console.log(1)\n');
  writeFileSync(join(dir, 'secret.key'), 'hunter2\n');
  writeFileSync(join(dir, 'x.tmp'), 'tmp\n');
  mkdirSync(join(dir, 'lib'));
  writeFileSync(join(dir, 'lib', 'util.js'), 'u\n');
  return dir;
}

const ok: Handler = (_req, res) => {
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.end(RAW);
};

test('build: query, content type, tar body; plain output is the stream text', { timeout: 20000 }, async () => {
  const dir = context();
  process.env.VESSEL_TEST_BUILD_ARG = 'from-env';
  await withDaemon(ok, undefined, async (d, host) => {
    const r = await runCli(host, [
      'build', '-t', 'app:1', '-t', 'registry.local:5000/team/app', '--build-arg', 'A=1', '--build-arg', 'VESSEL_TEST_BUILD_ARG',
      '--build-arg', 'VESSEL_TEST_UNSET_ARG', '--label', 'org.x=y', '--target', 'final', '--no-cache', '--pull=false', dir,
    ]);
    assert.deepEqual([r.stderr, r.code], ['', 0]);
    assert.equal(r.stdout, LINES.map((l) => l.stream ?? '').join(''));
    const req = d.requests[0]!;
    const url = new URL(req.url, 'http://x');
    assert.equal(url.pathname, '/v1.41/build');
    assert.equal(req.method, 'POST');
    assert.deepEqual(url.searchParams.getAll('t'), ['app:1', 'registry.local:5000/team/app']);
    assert.equal(url.searchParams.get('dockerfile'), 'Dockerfile');
    assert.deepEqual(JSON.parse(url.searchParams.get('buildargs')!), { A: '1', VESSEL_TEST_BUILD_ARG: 'from-env' });
    assert.deepEqual(JSON.parse(url.searchParams.get('labels')!), { 'org.x': 'y' });
    assert.equal(url.searchParams.get('target'), 'final');
    assert.equal(url.searchParams.get('nocache'), '1');
    assert.equal(url.searchParams.get('pull'), '0');
    assert.equal(url.searchParams.get('q'), null);
    assert.equal(req.headers['content-type'], 'application/x-tar');
    assert.equal(req.headers['transfer-encoding'], 'chunked');
    const tar = await tarNames(req.body);
    assert.deepEqual([...tar.keys()].sort(), ['.dockerignore', 'Dockerfile', 'app.js', 'lib', 'lib/util.js']);
    assert.equal(tar.get('Dockerfile'), 'FROM busybox\nRUN echo hi\n');
  });
  delete process.env.VESSEL_TEST_BUILD_ARG;
});

test('build: -q and --progress quiet print only the image ID; --progress json the raw lines', { timeout: 20000 }, async () => {
  const dir = context();
  await withDaemon(ok, undefined, async (d, host) => {
    let r = await runCli(host, ['build', '-q', dir]);
    assert.deepEqual([r.stdout, r.stderr, r.code], [`${IMAGE_ID}\n`, '', 0]);
    assert.equal(new URL(d.requests[0]!.url, 'http://x').searchParams.get('q'), '1');
    r = await runCli(host, ['image', 'build', '--progress', 'quiet', dir]);
    assert.deepEqual([r.stdout, r.code], [`${IMAGE_ID}\n`, 0]);
    r = await runCli(host, ['build', '--progress=json', dir]);
    assert.deepEqual([r.stdout, r.stderr, r.code], [RAW, '', 0]);
  });
});

test('build: -f outside the context adds it under a generated name', { timeout: 20000 }, async () => {
  const dir = context();
  const other = tempDir('vessel-df-');
  writeFileSync(join(other, 'Dockerfile.other'), 'FROM scratch\n');
  await withDaemon(ok, undefined, async (d, host) => {
    const r = await runCli(host, ['build', '-f', join(other, 'Dockerfile.other'), dir]);
    assert.equal(r.code, 0);
    const name = new URL(d.requests[0]!.url, 'http://x').searchParams.get('dockerfile')!;
    assert.match(name, /^\.vessel-dockerfile-[0-9a-f]{20}$/);
    const tar = await tarNames(d.requests[0]!.body);
    assert.equal(tar.get(name), 'FROM scratch\n');
    assert.equal(tar.get('.dockerignore'), `secret*\n*.tmp\n${name}\n`);
    // `-f -` reads the Dockerfile from stdin.
    const r2 = await runCli(host, ['build', '-f', '-', dir], { stdin: 'FROM busybox\nRUN echo stdin\n' });
    assert.equal(r2.code, 0);
    const name2 = new URL(d.requests[1]!.url, 'http://x').searchParams.get('dockerfile')!;
    assert.match(name2, /^\.vessel-dockerfile-[0-9a-f]{20}$/);
    assert.equal((await tarNames(d.requests[1]!.body)).get(name2), 'FROM busybox\nRUN echo stdin\n');
  });
});

test('build: an error in the stream is one stderr line and exit 1', { timeout: 20000 }, async () => {
  const dir = context();
  const handler: Handler = (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(
      `{"stream":"Step 1/2 : FROM busybox\\n"}\n{"stream":"Step 2/2 : RUN exit 3\\n"}\n` +
        `{"errorDetail":{"code":3,"message":"The command '/bin/sh -c exit 3' returned a non-zero code: 3"},"error":"The command '/bin/sh -c exit 3' returned a non-zero code: 3"}\n`,
    );
  };
  await withDaemon(handler, undefined, async (_d, host) => {
    const r = await runCli(host, ['build', dir]);
    assert.deepEqual(
      [r.stdout, r.stderr, r.code],
      ['Step 1/2 : FROM busybox\nStep 2/2 : RUN exit 3\n', "vessel: The command '/bin/sh -c exit 3' returned a non-zero code: 3\n", 1],
    );
  });
});

test('build: bad tags, build args and contexts fail before any request', { timeout: 20000 }, async () => {
  const dir = context();
  await withDaemon(ok, undefined, async (d, host) => {
    let r = await runCli(host, ['build', '-t', 'Bad:Tag', dir]);
    assert.deepEqual([r.stdout, r.stderr, r.code], ['', 'vessel: invalid argument "Bad:Tag" for "-t, --tag" flag: invalid reference format\n', 1]);
    r = await runCli(host, ['build', '--build-arg', '=x', dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^vessel: invalid argument "=x" for "--build-arg" flag: [^\n]*\n$/);
    r = await runCli(host, ['build', join(dir, 'missing')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^vessel: unable to prepare context: path "[^"]*missing" not found\n$/);
    r = await runCli(host, ['build', '--progress', 'fancy', dir]);
    assert.equal(r.code, 1);
    assert.equal(d.requests.length, 0);
  });
});
