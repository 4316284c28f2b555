/**
 * Runs a build plan: every step turns the current image into the next one
 * (an untagged intermediate image), reusing the cache when the step's key —
 * parent image, instruction, build args in scope and the content it copies —
 * was seen before. RUN steps run in real containers on the default bridge
 * network (so package installs work), and their changes become a layer.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, errorMessage } from '../core/errors.js';
import type { ContainerManager } from '../container/manager.js';
import { containerPaths } from '../container/paths.js';
import type { ImageRecord, ImageStore, LayerRecord } from '../image/image-store.js';
import { writeLayerFromDir, writeLayerFromUpper } from '../image/layer-diff.js';
import { DEFAULT_PATH, type ImageConfig, type ImageRunConfig } from '../image/oci.js';
import { unmountRootfs } from '../container/rootfs.js';
import { run } from '../core/exec.js';
import { BuildCache, cacheKey } from './build-cache.js';
import { hashSources, resolveSources, stageSources } from './copy.js';
import { BuildArgs, envMap, type StageArgs } from './dockerfile/args.js';
import { parseDockerfile, type Instruction } from './dockerfile/parser.js';
import { expandInstruction } from './dockerfile/resolve.js';

export interface BuildOptions {
  contextDir: string;
  dockerfile: string;
  buildArgs: Map<string, string>;
  target: string | null;
  noCache: boolean;
  labels: Record<string, string>;
  tags: string[];
  send: (m: { stream?: string; aux?: unknown }) => void;
  signal?: AbortSignal;
  /** `--pull`: fetch every FROM image from its registry even when it is present. */
  pull?: boolean;
  /** Pulls a FROM image that is missing (or every one with `pull`); none: local images only. */
  pullBase?: (name: string) => Promise<ImageRecord>;
}

interface State {
  config: ImageConfig;
  layers: LayerRecord[];
  imageId: string | null;
  shell: string[];
  /** The stage's ARG scope (RUN sees its values as environment). */
  scope: StageArgs;
  /** CMD was set in this stage (a new ENTRYPOINT otherwise drops the inherited one). */
  cmdSet: boolean;
}

const EXCLUDE_FROM_RUN_LAYER = new Set(['etc/hostname', 'etc/hosts', 'etc/resolv.conf']);

export class BuildExecutor {
  readonly cache: BuildCache;

  constructor(
    private readonly images: ImageStore,
    private readonly manager: ContainerManager,
    cache: BuildCache,
    /** Where build contexts and COPY staging live: the daemon's own scratch dir, not the host's /tmp. */
    readonly tmpDir: string = os.tmpdir(),
  ) {
    this.cache = cache;
  }

  async build(o: BuildOptions): Promise<ImageRecord> {
    const df = parseDockerfile(o.dockerfile);
    const args = new BuildArgs({ globalArgs: df.globalArgs, buildArgs: o.buildArgs, escapeChar: df.escapeChar });
    const stageImages = new Map<string, ImageRecord>();
    const lastIndex = o.target ? df.stages.findIndex((s) => s.name === o.target!.toLowerCase()) : df.stages.length - 1;
    if (lastIndex < 0) throw new InvalidArgumentError(`Target stage "${o.target}" could not be found`);
    const stages = df.stages.slice(0, lastIndex + 1);
    const total = stages.reduce((n, s) => n + 1 + s.instructions.length, 0);
    let stepNo = 0;
    let result: ImageRecord | null = null;
    for (const stage of stages) {
      let st: State | null = null;
      for (const instr of [stage.from, ...stage.instructions] as Instruction[]) {
        stepNo += 1;
        if (o.signal?.aborted) throw new FailedPreconditionError('Build cancelled');
        o.send({ stream: `Step ${stepNo}/${total} : ${instr.original}\n` });
        const started = Date.now();
        try {
          if (instr.kind === 'FROM') st = await this.#from(args.expandFrom(instr).image, stageImages, args.stage(), o);
          else st = await this.#step(instr, st!, stageImages, o, df.escapeChar);
        } catch (e) {
          const msg = errorMessage(e);
          throw new InvalidArgumentError(msg.startsWith('Dockerfile:') ? msg : `Dockerfile:${instr.line}: ${instr.kind} failed: ${msg}`, { cause: e });
        }
        o.send({ stream: ` ---> ${st.imageId ? st.imageId.slice(7, 19) : 'scratch'} (${((Date.now() - started) / 1000).toFixed(1)}s)\n` });
      }
      if (!st) continue;
      const image = await this.#ensureImage(st);
      if (stage.name) stageImages.set(stage.name, image);
      stageImages.set(String(stage.index), image);
      result = image;
    }
    const warning = args.unconsumedWarning();
    if (warning) o.send({ stream: `${warning}\n` });
    if (!result) throw new InvalidArgumentError('Dockerfile has no stages');
    if (Object.keys(o.labels).length || o.tags.length) {
      const config: ImageConfig = structuredClone(result.config);
      if (Object.keys(o.labels).length) config.config = { ...(config.config ?? {}), Labels: { ...(config.config?.Labels ?? {}), ...o.labels } };
      const layers = result.layers.map((c) => this.images.getLayer(c)!);
      result = await this.images.commitImage(config, layers, o.tags);
    }
    return result;
  }

  /** The current state as an image (scratch with only config changes gets one too). */
  async #ensureImage(st: State): Promise<ImageRecord> {
    if (st.imageId) return this.images.resolve(st.imageId);
    const img = await this.images.commitImage(st.config, st.layers, []);
    st.imageId = img.id;
    return img;
  }

  #env(st: State): Map<string, string> {
    return envMap(st.config.config?.Env ?? []);
  }

  async #step(raw: Instruction, st: State, stages: Map<string, ImageRecord>, o: BuildOptions, escapeChar: string): Promise<State> {
    if (raw.kind === 'ARG') {
      st.scope.declare(raw, this.#env(st));
      return this.#configStep(st, raw, o, [...st.scope.values()].map(([k, v]) => `${k}=${v}`));
    }
    const step = expandInstruction(raw, st.scope.vars(this.#env(st)), { escapeChar });
    const rc = (st.config.config ??= {});
    switch (step.kind) {
      case 'RUN':
        return this.#run(step, st, o);
      case 'COPY':
      case 'ADD':
        return this.#copy(step, st, stages, o);
      case 'ENV': {
        const env = new Map((rc.Env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e] as const));
        for (const p of step.pairs) env.set(p.key, `${p.key}=${p.value}`);
        rc.Env = [...env.values()];
        break;
      }
      case 'LABEL':
        rc.Labels = { ...(rc.Labels ?? {}) };
        for (const p of step.pairs) rc.Labels[p.key] = p.value;
        break;
      case 'WORKDIR':
        rc.WorkingDir = path.posix.resolve(rc.WorkingDir || '/', step.path);
        break;
      case 'USER':
        rc.User = step.user;
        break;
      case 'EXPOSE':
        rc.ExposedPorts = { ...(rc.ExposedPorts ?? {}) };
        for (const p of step.ports) rc.ExposedPorts[p] = {};
        break;
      case 'VOLUME':
        rc.Volumes = { ...(rc.Volumes ?? {}) };
        for (const p of step.paths) rc.Volumes[p] = {};
        break;
      case 'CMD':
        rc.Cmd = typeof step.command === 'string' ? [...st.shell, step.command] : step.command;
        st.cmdSet = true;
        break;
      case 'ENTRYPOINT':
        rc.Entrypoint = typeof step.command === 'string' ? [...st.shell, step.command] : step.command;
        // As Docker: a new ENTRYPOINT drops a CMD inherited from the base image.
        if (!st.cmdSet) rc.Cmd = null;
        break;
      case 'SHELL':
        st.shell = step.shell;
        rc.Shell = step.shell;
        break;
      case 'HEALTHCHECK':
        rc.Healthcheck = {
          Test: step.test,
          ...(step.interval !== null ? { Interval: step.interval } : {}),
          ...(step.timeout !== null ? { Timeout: step.timeout } : {}),
          ...(step.startPeriod !== null ? { StartPeriod: step.startPeriod } : {}),
          ...(step.retries !== null ? { Retries: step.retries } : {}),
        };
        break;
      case 'STOPSIGNAL':
        rc.StopSignal = step.signal;
        break;
      case 'MAINTAINER':
        st.config.author = step.maintainer;
        break;
      case 'ONBUILD':
        throw new InvalidArgumentError('ONBUILD is not supported');
      case 'FROM':
        break;
    }
    return this.#configStep(st, step, o, []);
  }

  /** A step that only changes the config: cached by key like any other, no layer. */
  async #configStep(st: State, step: Instruction, o: BuildOptions, extra: string[]): Promise<State> {
    const parent = st.imageId ?? 'scratch';
    const key = cacheKey([parent, step.original, JSON.stringify(st.config.config ?? {}), st.config.author ?? '', ...extra]);
    const hit = o.noCache ? null : this.cache.get(key);
    const cached = hit ? this.images.tryResolve(hit) : null;
    if (cached) {
      o.send({ stream: ' ---> CACHED\n' });
      return { ...st, config: structuredClone(cached.config), imageId: cached.id };
    }
    st.config.history = [...(st.config.history ?? []), { created: new Date().toISOString(), created_by: `/bin/sh -c #(nop) ${step.original}`, empty_layer: true }];
    st.config.created = new Date().toISOString();
    const img = await this.images.commitImage(st.config, st.layers, []);
    this.cache.put(key, img.id);
    return { ...st, imageId: img.id };
  }

  async #from(name: string, stages: Map<string, ImageRecord>, scope: StageArgs, o: BuildOptions): Promise<State> {
    if (name === 'scratch') {
      return {
        config: { architecture: 'amd64', os: 'linux', config: { Env: [`PATH=${DEFAULT_PATH}`] }, rootfs: { type: 'layers', diff_ids: [] }, history: [] },
        layers: [],
        imageId: null,
        shell: ['/bin/sh', '-c'],
        scope,
        cmdSet: false,
      };
    }
    // As Docker: an earlier stage wins; a missing image (or any, with --pull) comes from its registry.
    let image = stages.get(name.toLowerCase()) ?? (o.pull && o.pullBase ? null : this.images.tryResolve(name));
    const present = !!image || !!this.images.tryResolve(name);
    if (!image && o.pullBase) {
      image = await o.pullBase(name).catch((e: unknown) => {
        if (present) throw e; // --pull of an image we have: the pull's own error
        throw new NotFoundError(`No such image: ${name} (pulling it failed: ${errorMessage(e)})`, { cause: e });
      });
    }
    if (!image) throw new NotFoundError(`No such image: ${name}`);
    await this.images.ensureUnpacked(image); // a pulled base may still be unpacking
    return {
      config: structuredClone(image.config),
      layers: image.layers.map((c) => this.images.getLayer(c)!),
      imageId: image.id,
      shell: image.config.config?.Shell ?? ['/bin/sh', '-c'],
      scope,
      cmdSet: false,
    };
  }

  #commitLayer(st: State, layer: LayerRecord, createdBy: string): ImageConfig {
    const config: ImageConfig = structuredClone(st.config);
    config.rootfs = { type: 'layers', diff_ids: [...config.rootfs.diff_ids, layer.diffId] };
    config.history = [...(config.history ?? []), { created: new Date().toISOString(), created_by: createdBy }];
    config.created = new Date().toISOString();
    return config;
  }

  async #run(step: Instruction & { kind: 'RUN' }, st: State, o: BuildOptions): Promise<State> {
    const image = await this.#ensureImage(st);
    const argsEnv = [...st.scope.runArgs()].map(([k, v]) => `${k}=${v}`).sort();
    const key = cacheKey([image.id, step.original, ...argsEnv]);
    const hit = o.noCache ? null : this.cache.get(key);
    const cached = hit ? this.images.tryResolve(hit) : null;
    if (cached) {
      o.send({ stream: ' ---> CACHED\n' });
      return { ...st, config: structuredClone(cached.config), layers: cached.layers.map((c) => this.images.getLayer(c)!), imageId: cached.id };
    }
    const rc: ImageRunConfig = st.config.config ?? {};
    const cmd = typeof step.command === 'string' ? [...st.shell, step.command] : step.command;
    const { Id: cid } = await this.manager.create(null, {
      Config: {
        Image: image.id,
        Cmd: cmd,
        Entrypoint: [],
        // ENV wins over ARG values of the same name.
        Env: [...argsEnv.filter((a) => !(rc.Env ?? []).some((e) => e.startsWith(`${a.slice(0, a.indexOf('='))}=`))), ...(rc.Env ?? [])],
        WorkingDir: rc.WorkingDir ?? '',
        User: rc.User ?? '',
        Labels: { 'io.vessel.build': 'true' },
      },
      HostConfig: { NetworkMode: 'default' },
    });
    try {
      if (rc.WorkingDir) {
        // Docker creates the working directory for RUN if the image lacks it.
        await fs.mkdir(path.join(containerPaths(this.manager.paths, cid).upper, rc.WorkingDir), { recursive: true }).catch(() => {});
      }
      const tail: string[] = [];
      const session = this.manager.attach(cid, {
        stdin: false,
        stdout: true,
        stderr: true,
        onOutput: (_s, data) => {
          const text = data.toString();
          tail.push(text);
          if (tail.length > 40) tail.shift();
          o.send({ stream: text });
        },
      });
      const waited = this.manager.wait(cid, 'next-exit');
      await this.manager.start(cid);
      const { StatusCode } = await waited;
      await session.done;
      if (StatusCode !== 0) {
        throw new InvalidArgumentError(`the command ${JSON.stringify(cmd.join(' '))} returned a non-zero code: ${StatusCode}`);
      }
      const upper = containerPaths(this.manager.paths, cid).upper;
      const layer = await this.images.addLayerFromWriter(
        (out) =>
          writeLayerFromUpper(upper, out, {
            exclude: (rel, stat) => EXCLUDE_FROM_RUN_LAYER.has(rel) && stat.isFile() && stat.size === 0,
          }),
        st.layers.at(-1)?.chainId ?? null,
      );
      const config = this.#commitLayer(st, layer, `/bin/sh -c ${typeof step.command === 'string' ? step.command : JSON.stringify(step.command)}`);
      const layers = [...st.layers, layer];
      const img = await this.images.commitImage(config, layers, []);
      this.cache.put(key, img.id);
      return { ...st, config, layers, imageId: img.id };
    } finally {
      await this.manager.remove(cid, { force: true }).catch(() => {});
    }
  }

  async #copy(step: Instruction & { kind: 'COPY' | 'ADD' }, st: State, stages: Map<string, ImageRecord>, o: BuildOptions): Promise<State> {
    const x = (s: string) => s;
    let root = o.contextDir;
    let unmount: (() => Promise<void>) | null = null;
    const tmp = await fs.mkdtemp(path.join(this.tmpDir, 'copy-'));
    try {
      const fromRef = step.kind === 'COPY' ? step.from : null;
      if (fromRef) {
        const from = x(fromRef);
        const src = stages.get(from.toLowerCase()) ?? this.images.tryResolve(from) ?? (o.pullBase ? await o.pullBase(from) : null);
        if (!src) throw new NotFoundError(`COPY --from: no stage or image named ${from}`);
        await this.images.ensureUnpacked(src);
        // A read-only overlay of the source image (a second, empty lower keeps overlayfs happy with one layer).
        const empty = path.join(tmp, 'empty');
        const merged = path.join(tmp, 'src');
        await fs.mkdir(empty);
        await fs.mkdir(merged);
        const { mount } = await import('../native/native.js');
        mount('overlay', merged, 'overlay', 1 /* MS_RDONLY */, `lowerdir=${[...this.images.lowerDirs(src), empty].join(':')}`);
        root = merged;
        unmount = () => unmountRootfs(merged);
      }
      const rels: string[] = [];
      for (const s of step.sources) rels.push(...(await resolveSources(root, x(s))));
      const dest = x(step.dest);
      const wd = st.config.config?.WorkingDir || '/';
      // `.`, `..`, `x/.` and a trailing `/` name a directory (Docker's rule).
      const dirDest = dest.endsWith('/') || /(^|\/)\.\.?$/.test(dest);
      const absDest = path.posix.resolve(wd, dest).replace(/\/$/, '') + (dirDest ? '/' : '');
      const image = st.imageId ?? 'scratch';
      const key = cacheKey([image, step.original, await hashSources(root, rels), absDest]);
      const hit = o.noCache ? null : this.cache.get(key);
      const cached = hit ? this.images.tryResolve(hit) : null;
      if (cached) {
        o.send({ stream: ' ---> CACHED\n' });
        return { ...st, config: structuredClone(cached.config), layers: cached.layers.map((c) => this.images.getLayer(c)!), imageId: cached.id };
      }
      const stage = path.join(tmp, 'stage');
      await fs.mkdir(stage);
      const [uid, gid] = step.chown ? this.#owner(x(step.chown)) : [undefined, undefined];
      const mode = step.chmod ? parseInt(x(step.chmod), 8) : undefined;
      if (mode !== undefined && !(mode >= 0 && mode <= 0o7777)) throw new InvalidArgumentError(`Invalid --chmod: ${step.chmod}`);
      const copied = await stageSources({ root, rels, dest: absDest.slice(1), stage, add: step.kind === 'ADD' });
      // --chown/--chmod apply to what was copied, not to the directories above it,
      // which keep the image's own metadata.
      for (const c of copied) {
        if (uid !== undefined) await run('chown', ['-R', '--no-dereference', `${uid}:${gid}`, c]);
        if (mode !== undefined) await run('chmod', ['-R', mode.toString(8), c]);
      }
      await this.#matchParents(st, stage, path.posix.dirname(absDest.replace(/\/$/, '')) , uid, gid);
      const layer = await this.images.addLayerFromWriter((out) => writeLayerFromDir(stage, out), st.layers.at(-1)?.chainId ?? null);
      const config = this.#commitLayer(st, layer, `/bin/sh -c #(nop) ${step.original}`);
      const layers = [...st.layers, layer];
      const img = await this.images.commitImage(config, layers, []);
      this.cache.put(key, img.id);
      return { ...st, config, layers, imageId: img.id };
    } finally {
      if (unmount) await unmount().catch(() => {});
      await fs.rm(tmp, { recursive: true, force: true });
    }
  }

  /**
   * The staged tree also holds the destination's parent directories; give them
   * the image's own metadata, so a COPY into /tmp/x does not turn /tmp 0755.
   */
  async #matchParents(st: State, stage: string, parent: string, uid?: number, gid?: number): Promise<void> {
    await this.images.unpacker.ensureUnpacked(st.layers);
    const dirs = st.layers.map((l) => this.images.snapshotDir(l)).reverse();
    for (let p = parent; p !== '/' && p !== '.'; p = path.posix.dirname(p)) {
      const staged = path.join(stage, p);
      let found = false;
      for (const d of dirs) {
        const s = await fs.lstat(path.join(d, p)).catch(() => null);
        if (!s) continue;
        found = true;
        if (s.isDirectory()) {
          await fs.chmod(staged, s.mode & 0o7777);
          await fs.chown(staged, s.uid, s.gid);
          await fs.utimes(staged, s.atime, s.mtime);
        }
        break;
      }
      // The destination directory itself, when COPY creates it, belongs to --chown (as in Docker).
      if (!found && p === parent && uid !== undefined) await fs.chown(staged, uid, gid ?? uid);
    }
  }

  #owner(spec: string): [number, number] {
    const [u = '', g] = spec.split(':');
    if (!/^\d+$/.test(u) || (g !== undefined && !/^\d+$/.test(g))) {
      throw new InvalidArgumentError(`--chown needs numeric uid[:gid] for now: ${spec}`);
    }
    return [Number(u), Number(g ?? u)];
  }
}

