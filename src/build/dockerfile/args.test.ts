import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BuildArgs, PROXY_ARGS, argsByInstruction, envMap, isProxyArg } from './args.js';
import { parseDockerfile, type ArgInstruction } from './parser.js';

function setup(text: string, buildArgs: Record<string, string> = {}, builtin: Record<string, string> = {}) {
  const df = parseDockerfile(text);
  const build = new BuildArgs({
    globalArgs: df.globalArgs,
    buildArgs: new Map(Object.entries(buildArgs)),
    builtinArgs: new Map(Object.entries(builtin)),
    escapeChar: df.escapeChar,
  });
  return { df, build };
}
const obj = (m: ReadonlyMap<string, string>) => Object.fromEntries(m);

test('global ARGs: defaults, build-arg override, expansion of earlier globals', () => {
  const { build } = setup('ARG A=1\nARG B C=$A-x\nARG D="q $C"\nFROM x', { B: 'bee' });
  assert.deepEqual(obj(build.fromVars()), { A: '1', B: 'bee', C: '1-x', D: 'q 1-x' });
  const g = build.globalValues();
  assert.equal(g.get('B'), 'bee');
});

test('a global ARG without default and without build-arg has no value', () => {
  const { build } = setup('ARG A\nFROM x');
  assert.equal(build.globalValues().has('A'), true);
  assert.equal(build.globalValues().get('A'), undefined);
  assert.equal(build.fromVars().has('A'), false);
});

test('global ARGs on one line see only earlier lines', () => {
  const { build } = setup('ARG A=1 B=$A\nFROM x');
  assert.deepEqual(obj(build.fromVars()), { A: '1', B: '' });
});

test('FROM uses global ARGs (with --build-arg override)', () => {
  const { df, build } = setup('ARG BASE=alpine\nARG TAG=3.19\nFROM ${BASE}:${TAG} AS one\nFROM $BASE', { TAG: 'edge' });
  assert.equal(build.expandFrom(df.stages[0]!.from).image, 'alpine:edge');
  assert.equal(build.expandFrom(df.stages[1]!.from).image, 'alpine');
});

test('FROM cannot see undeclared build-args or stage ARGs', () => {
  const { df, build } = setup('FROM a\nARG V=2\nFROM img:${V:-none}', { V: '9' });
  assert.equal(build.expandFrom(df.stages[1]!.from).image, 'img:none');
});

test('global ARGs are not visible in a stage until re-declared', () => {
  const { df, build } = setup('ARG VERSION=1.0\nFROM x\nRUN echo $VERSION\nARG VERSION\nRUN echo $VERSION');
  const at = argsByInstruction(build, df.stages[0]!);
  assert.deepEqual(obj(at[0]!.args), {});
  assert.deepEqual(obj(at[2]!.args), { VERSION: '1.0' });
});

test('re-declared global ARG takes the --build-arg over the global default', () => {
  const { df, build } = setup('ARG VERSION=1.0\nFROM x\nARG VERSION\nRUN x', { VERSION: '2.0' });
  const at = argsByInstruction(build, df.stages[0]!);
  assert.deepEqual(obj(at[1]!.args), { VERSION: '2.0' });
});

test('an in-stage default wins over the global default, the build-arg over both', () => {
  const text = 'ARG V=global\nFROM x\nARG V=stage\nRUN x';
  let { df, build } = setup(text);
  assert.deepEqual(obj(argsByInstruction(build, df.stages[0]!)[1]!.args), { V: 'stage' });
  ({ df, build } = setup(text, { V: 'cli' }));
  assert.deepEqual(obj(argsByInstruction(build, df.stages[0]!)[1]!.args), { V: 'cli' });
});

test('ARG scope ends with its stage; each stage starts empty', () => {
  const { df, build } = setup('FROM a AS one\nARG X=1\nRUN a\nFROM b\nRUN b\nARG X\nRUN c', { });
  assert.deepEqual(obj(argsByInstruction(build, df.stages[0]!)[1]!.args), { X: '1' });
  const two = argsByInstruction(build, df.stages[1]!);
  assert.deepEqual(obj(two[0]!.args), {});
  // Declared without a default and with no global or build-arg: no value.
  assert.deepEqual(obj(two[2]!.args), {});
});

test('ARG defaults expand with earlier ARGs and ENV; ENV overrides ARG', () => {
  const { df, build } = setup('FROM a\nARG A=1\nENV E=env-$A\nARG B=${A}-$E\nENV A=from-env\nRUN x');
  const at = argsByInstruction(build, df.stages[0]!);
  assert.deepEqual(obj(at[4]!.args), { A: '1', B: '1-env-1' });
  assert.equal(at[4]!.vars.get('A'), 'from-env');
  assert.equal(at[4]!.vars.get('E'), 'env-1');
});

test('base image environment feeds ARG defaults and overrides ARGs', () => {
  const { df, build } = setup('FROM a\nARG P=$PATH:/x\nARG HOME=/nope\nRUN x');
  const at = argsByInstruction(build, df.stages[0]!, envMap(['PATH=/bin', 'HOME=/root']));
  assert.equal(at[2]!.args.get('P'), '/bin:/x');
  assert.equal(at[2]!.args.get('HOME'), '/nope');
  assert.equal(at[2]!.vars.get('HOME'), '/root');
});

test('build-arg values are used verbatim, not expanded', () => {
  const { df, build } = setup('FROM a\nARG A=$HOME\nRUN x', { A: '$HOME' });
  assert.equal(argsByInstruction(build, df.stages[0]!)[1]!.args.get('A'), '$HOME');
});

test('StageArgs: values, runArgs and vars', () => {
  const { df, build } = setup('FROM a\nARG A=1 B\nARG C=""', { HTTP_PROXY: 'http://proxy:3128', no_proxy: 'localhost' });
  const scope = build.stage();
  for (const i of df.stages[0]!.instructions) scope.declare(i as ArgInstruction);
  assert.equal(scope.isDeclared('B'), true);
  assert.equal(scope.isDeclared('Z'), false);
  assert.deepEqual(obj(scope.values()), { A: '1', C: '' });
  assert.deepEqual(obj(scope.runArgs()), { HTTP_PROXY: 'http://proxy:3128', no_proxy: 'localhost', A: '1', C: '' });
  assert.deepEqual(obj(scope.vars(new Map([['A', 'env']]))), { HTTP_PROXY: 'http://proxy:3128', no_proxy: 'localhost', A: 'env', C: '' });
});

test('proxy args need no declaration and are never reported unused', () => {
  assert.equal(PROXY_ARGS.length, 10);
  assert.equal(isProxyArg('https_proxy'), true);
  assert.equal(isProxyArg('SOME_PROXY'), false);
  const { df, build } = setup('FROM a\nRUN x', { HTTPS_PROXY: 'p', ALL_PROXY: 'q' });
  const scope = build.stage();
  assert.deepEqual(obj(scope.runArgs()), { HTTPS_PROXY: 'p', ALL_PROXY: 'q' });
  assert.deepEqual(obj(scope.values()), {});
  build.expandFrom(df.stages[0]!.from);
  assert.deepEqual(build.unconsumed(), []);
  assert.equal(build.unconsumedWarning(), null);
});

test('unused --build-args are reported in Docker\'s words', () => {
  const { df, build } = setup('ARG BASE=a\nARG UNUSED_GLOBAL=1\nFROM $BASE\nARG USED\nRUN x', {
    BASE: 'b', USED: '1', UNUSED_GLOBAL: '2', zeta: '1', alpha: '2',
  });
  build.expandFrom(df.stages[0]!.from);
  argsByInstruction(build, df.stages[0]!);
  assert.deepEqual(build.unconsumed(), ['UNUSED_GLOBAL', 'alpha', 'zeta']);
  assert.equal(build.unconsumedWarning(), '[Warning] One or more build-args [UNUSED_GLOBAL alpha zeta] were not consumed');
});

test('a build-arg declared only in a stage that is not built is unconsumed', () => {
  const { df, build } = setup('FROM a AS skipped\nARG ONLY_HERE\nFROM b\nRUN x', { ONLY_HERE: '1' });
  argsByInstruction(build, df.stages[1]!);
  assert.deepEqual(build.unconsumed(), ['ONLY_HERE']);
  argsByInstruction(build, df.stages[0]!);
  assert.deepEqual(build.unconsumed(), []);
});

test('a global ARG re-declared in a stage consumes the build-arg', () => {
  const { df, build } = setup('ARG G\nFROM a\nARG G\nRUN x', { G: '1' });
  argsByInstruction(build, df.stages[0]!);
  assert.deepEqual(build.unconsumed(), []);
});

test('builtin args: visible to FROM, usable after ARG, overridable, never unused', () => {
  const builtin = { TARGETARCH: 'amd64', TARGETPLATFORM: 'linux/amd64' };
  const { df, build } = setup('FROM img-$TARGETARCH\nRUN a\nARG TARGETARCH\nARG TARGETPLATFORM=custom\nRUN b', {}, builtin);
  assert.equal(build.expandFrom(df.stages[0]!.from).image, 'img-amd64');
  const at = argsByInstruction(build, df.stages[0]!);
  assert.deepEqual(obj(at[0]!.args), {});
  assert.deepEqual(obj(at[3]!.args), { TARGETARCH: 'amd64', TARGETPLATFORM: 'custom' });
  const b2 = setup('FROM x', { TARGETARCH: 'arm64' }, builtin).build;
  assert.deepEqual(b2.unconsumed(), []);
});

test('ARG default errors carry the line number', () => {
  const { df, build } = setup('FROM a\n\nARG X=${Y:?must set Y}');
  assert.throws(() => argsByInstruction(build, df.stages[0]!), { message: 'Dockerfile:3: Y: must set Y' });
  assert.throws(() => setup('ARG X=${Y\nFROM a'), { message: 'Dockerfile:1: Invalid variable substitution in "${Y": missing \'}\'' });
});

test('envMap reads image config Env entries', () => {
  assert.deepEqual(obj(envMap(['A=1', 'B=x=y', 'C=', 'D', '=bad'])), { A: '1', B: 'x=y', C: '', D: '' });
});
