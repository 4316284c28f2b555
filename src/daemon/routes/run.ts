/** `POST /vessel/run`: create, attach, start, wait (and auto-remove) in one hijacked request; see api/run-stream.ts. */
import { HEADER_CONTAINER_ID, HEADER_WARNINGS, RUN_PATH, STATUS_FRAME, type RunStatus } from '../../api/run-stream.js';
import { encodeFrame, STDERR, STDOUT, SYSTEMERR } from '../../api/stdcopy.js';
import { errorMessage, InvalidArgumentError } from '../../core/errors.js';
import type { DaemonContext } from '../context.js';
import { hijack, takeUpgradeBody } from '../hijack.js';
import type { Router } from '../router.js';
import { createSpec, type CreateBody } from './containers.js';

export function runRoutes(r: Router, ctx: DaemonContext): void {
  const { manager } = ctx;

  r.add('POST', RUN_PATH, async (rc) => {
    if (!rc.upgrade) throw new InvalidArgumentError(`${RUN_PATH} needs Connection: Upgrade`);
    const raw = await takeUpgradeBody(rc);
    let body: CreateBody;
    try {
      body = (raw.length ? JSON.parse(raw.toString('utf8')) : {}) as CreateBody;
    } catch {
      throw new InvalidArgumentError('invalid JSON in the request body');
    }
    const spec = createSpec(body);
    if (spec.Config.Tty) throw new InvalidArgumentError(`${RUN_PATH} does not support TTY containers`);
    const { Id: id, Warnings: warnings } = await manager.create(rc.query.get('name') || null, spec);

    // Waiter and attach session exist before the start, so neither the exit nor any output is missed.
    const result = manager.wait(id, spec.HostConfig.AutoRemove ? 'removed' : 'next-exit');
    const headers: Record<string, string> = { [HEADER_CONTAINER_ID]: id };
    if (warnings.length) headers[HEADER_WARNINGS] = encodeURIComponent(JSON.stringify(warnings));
    const conn = hijack(rc, false, headers);
    const session = manager.attach(id, {
      stdin: !!spec.Config.OpenStdin,
      stdout: true,
      stderr: true,
      onOutput: (s, data) => conn.write(encodeFrame(s === 'stderr' ? STDERR : STDOUT, data)),
    });
    conn.onData((d) => session.writeStdin(d));
    conn.onEnd(() => session.endStdin());
    conn.onClose(() => session.finish());
    try {
      await manager.start(id);
    } catch (e) {
      // The client maps the message to 125/126/127 as for a failed POST /start.
      conn.write(encodeFrame(SYSTEMERR, Buffer.from(errorMessage(e))));
      session.finish();
      conn.end();
      return;
    }
    // Output first, then the status. conmon closes the attach stream when the
    // container exits; should it stay open, the exit still ends the request.
    await Promise.race([session.done, result.then(() => new Promise((r) => setTimeout(r, 2000).unref()))]);
    const status: RunStatus = await result;
    conn.write(encodeFrame(STATUS_FRAME, Buffer.from(JSON.stringify(status))));
    conn.end();
  });
}
