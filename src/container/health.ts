/**
 * Health checks (Docker's HEALTHCHECK semantics), run by the daemon.
 *
 * Every `Interval` the probe runs inside the container (`runc exec`, same
 * user, environment and capabilities as the container's process). The status
 * is `starting` until the first success; `Retries` consecutive failures make
 * it `unhealthy`; failures inside `StartPeriod` do not count. The last five
 * results are kept in `State.Health.Log` and persisted, so the status
 * survives a daemon restart and checking resumes when the daemon comes back.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { HealthConfig } from '../image/oci.js';
import type { ImageRecord } from '../image/image-store.js';
import type { ContainerManager } from './manager.js';
import type { ContainerRecord, HealthLogEntry } from './model.js';
import { containerPaths } from './paths.js';

const NS = 1e6; // nanoseconds per millisecond
export const HEALTH_DEFAULTS = { Interval: 30_000, Timeout: 30_000, StartPeriod: 0, Retries: 3 };

export interface EffectiveHealth {
  test: string[];
  intervalMs: number;
  timeoutMs: number;
  startPeriodMs: number;
  retries: number;
}

/** The container's health check, falling back to the image's; null when there is none. */
export function effectiveHealth(container?: HealthConfig, image?: HealthConfig): EffectiveHealth | null {
  const merged: HealthConfig = { ...(image ?? {}), ...(container ?? {}) };
  if (container?.Test?.length === 0 && image?.Test) merged.Test = image.Test;
  const test = merged.Test ?? [];
  if (test.length === 0 || test[0] === 'NONE') return null;
  let args: string[];
  if (test[0] === 'CMD-SHELL') args = ['/bin/sh', '-c', test.slice(1).join(' ')];
  else if (test[0] === 'CMD') args = test.slice(1);
  else args = ['/bin/sh', '-c', test.join(' ')];
  if (args.length === 0) return null;
  const ms = (v: number | undefined, d: number) => (v && v > 0 ? v / NS : d);
  return {
    test: args,
    intervalMs: ms(merged.Interval, HEALTH_DEFAULTS.Interval),
    timeoutMs: ms(merged.Timeout, HEALTH_DEFAULTS.Timeout),
    startPeriodMs: ms(merged.StartPeriod, HEALTH_DEFAULTS.StartPeriod),
    retries: merged.Retries && merged.Retries > 0 ? merged.Retries : HEALTH_DEFAULTS.Retries,
  };
}

export class HealthMonitor {
  #timers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly manager: ContainerManager) {}

  /** `image`: the container's image record when the caller has it at hand (saves a lookup). */
  configFor(c: ContainerRecord, image: ImageRecord | null = this.manager.options.images.tryResolve(c.imageId)): EffectiveHealth | null {
    return effectiveHealth(c.spec.Config.Healthcheck, image?.config.config?.Healthcheck);
  }

  watch(c: ContainerRecord, cfg: EffectiveHealth | null = this.configFor(c)): void {
    if (!cfg) return;
    this.unwatch(c.id);
    const startedAt = Date.parse(c.state.StartedAt);
    const tick = async () => {
      await this.#probe(c.id, cfg, startedAt);
      if (this.#timers.has(c.id)) this.#timers.set(c.id, setTimeout(tick, cfg.intervalMs));
    };
    this.#timers.set(c.id, setTimeout(tick, cfg.intervalMs));
  }

  unwatch(id: string): void {
    const t = this.#timers.get(id);
    if (t) clearTimeout(t);
    this.#timers.delete(id);
  }

  stopAll(): void {
    for (const id of [...this.#timers.keys()]) this.unwatch(id);
  }

  async #probe(id: string, cfg: EffectiveHealth, startedAt: number): Promise<void> {
    const c = this.manager.store.get(id);
    if (!c || c.state.Status !== 'running') return;
    const p = containerPaths(this.manager.paths, id);
    const specText = await fs.readFile(p.specFile, 'utf8').catch(() => null);
    if (!specText) return;
    const process = (JSON.parse(specText) as { process: Record<string, unknown> }).process;
    const probeFile = path.join(p.dir, 'health-probe.json');
    await fs.writeFile(probeFile, JSON.stringify({ ...process, args: cfg.test, terminal: false }));
    const start = new Date();
    const r = await this.manager
      .runtimeFor(c)
      .execCapture(id, probeFile, cfg.timeoutMs)
      .catch((e: unknown) => ({ exitCode: -1, output: String(e), timedOut: false }));
    const entry: HealthLogEntry = {
      Start: start.toISOString(),
      End: new Date().toISOString(),
      ExitCode: r.timedOut ? -1 : r.exitCode,
      Output: r.timedOut ? `Health check exceeded timeout (${cfg.timeoutMs}ms)` : r.output,
    };
    const inStartPeriod = Date.now() - startedAt < cfg.startPeriodMs;
    let changed = false;
    const updated = this.manager.updateHealth(id, (s) => {
      const h = s.Health ?? { Status: 'starting', FailingStreak: 0, Log: [] };
      const before = h.Status;
      h.Log = [...h.Log, entry].slice(-5);
      if (entry.ExitCode === 0) {
        h.FailingStreak = 0;
        h.Status = 'healthy';
      } else if (!inStartPeriod || h.Status !== 'starting') {
        h.FailingStreak += 1;
        if (h.FailingStreak >= cfg.retries) h.Status = 'unhealthy';
      }
      changed = before !== h.Status;
      s.Health = h;
    });
    if (updated && changed) this.manager.emitHealth(updated);
  }
}
