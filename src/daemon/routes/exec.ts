/** Docker Engine API: /exec/... */
import { encodeFrame, STDERR, STDOUT } from '../../api/stdcopy.js';
import type { DaemonContext } from '../context.js';
import { sendEmpty, sendJson } from '../context.js';
import { hijack, takeUpgradeBody, type RawStream } from '../hijack.js';
import { readJson, type Router } from '../router.js';

export function execRoutes(r: Router, ctx: DaemonContext): void {
  r.add('POST', '/exec/([^/]+)/start', async (rc) => {
    const id = rc.params[0]!;
    const raw = rc.upgrade ? await takeUpgradeBody(rc) : null;
    const body = raw ? (raw.length ? (JSON.parse(raw.toString('utf8')) as { Detach?: boolean }) : {}) : await readJson<{ Detach?: boolean }>(rc.req);
    const exec = ctx.execs.get(id);
    const tty = !!exec.config.Tty;
    if (body.Detach) {
      const { session, exitCode } = await ctx.execs.start(id, { stdout: false, stderr: false, onOutput: () => {} });
      session.endStdin();
      void exitCode.catch(() => {});
      sendEmpty(rc.res, 200);
      return;
    }
    // Start before switching protocols, so a failure still reaches the client
    // as an HTTP error; output produced meanwhile is held until the switch.
    let conn: RawStream | null = null;
    const early: Buffer[] = [];
    const emit = (b: Buffer) => (conn ? conn.write(b) : early.push(b));
    const ref = await ctx.execs.start(id, {
      stdout: exec.config.AttachStdout !== false,
      stderr: exec.config.AttachStderr !== false,
      onOutput: (s, data) => emit(tty ? data : encodeFrame(s === 'stderr' ? STDERR : STDOUT, data)),
    });
    conn = hijack(rc, tty);
    for (const b of early.splice(0)) conn.write(b);
    conn.onData((d) => ref.session.writeStdin(d));
    conn.onEnd(() => ref.session.endStdin());
    conn.onClose(() => ref.session.finish());
    await ref.exitCode.catch(() => {});
    conn.end();
  });

  r.add('POST', '/exec/([^/]+)/resize', async ({ res, params, query }) => {
    await ctx.execs.resize(params[0]!, Number(query.get('h') ?? 24), Number(query.get('w') ?? 80));
    sendEmpty(res, 200);
  });

  r.add('GET', '/exec/([^/]+)/json', ({ res, params }) => {
    sendJson(res, 200, ctx.execs.inspect(params[0]!));
  });
}
