/**
 * Environment and label inputs, parsed on the client as Docker does: the
 * daemon only ever sees `K=V` strings (or a bare `K`, meaning "unset").
 */
import { readFileSync } from 'node:fs';
import { UsageError } from './errors.js';

export type EnvLookup = (name: string) => string | undefined;

const processEnv: EnvLookup = (name) => process.env[name];

/** `-e K=V` passes through; `-e K` takes K's value from the CLI's environment when set. */
export function resolveEnvFlag(entry: string, lookup: EnvLookup = processEnv): string {
  const eq = entry.indexOf('=');
  if (eq === 0) throw new UsageError(`invalid environment variable: ${entry}`);
  if (eq > 0) return entry;
  const value = lookup(entry);
  return value === undefined ? entry : `${entry}=${value}`;
}

/**
 * Parses env-file text: one `K=V` per line (the value is taken literally: no
 * quote removal, no trimming), `#` comment lines and blank lines skipped, and
 * a bare `K` filled from the environment (dropped when unset there).
 */
export function parseEnvFile(text: string, source: string, lookup: EnvLookup = processEnv): string[] {
  return parseLines(text, source).flatMap((line) => {
    const eq = line.indexOf('=');
    const name = eq === -1 ? line : line.slice(0, eq);
    if (name === '') throw new UsageError(`no variable name on line '${line}' in ${source}`);
    if (/\s/.test(name)) throw new UsageError(`variable '${name.trim()}' contains whitespaces in ${source}`);
    if (eq !== -1) return [line];
    const value = lookup(name);
    return value === undefined ? [] : [`${name}=${value}`];
  });
}

/** A label file: `K=V` lines (a bare `K` is an empty label), `#` comments. */
export function parseLabelFile(text: string, source: string): string[] {
  return parseLines(text, source);
}

function parseLines(text: string, source: string): string[] {
  if (text.includes('\uFFFD')) throw new UsageError(`${source}: invalid UTF-8`);
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  return body
    .split(/\r?\n/)
    .map((l) => l.replace(/^\s+/, ''))
    .filter((l) => l !== '' && !l.startsWith('#'));
}

export function readTextFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(code === 'ENOENT' ? `open ${path}: no such file or directory` : `open ${path}: ${code ?? String(e)}`);
  }
}

/** Env-file entries come first, then `-e` flags override them (Docker's order). */
export function collectEnv(envFiles: string[], envFlags: string[], lookup: EnvLookup = processEnv): string[] {
  const fromFiles = envFiles.flatMap((f) => parseEnvFile(readTextFile(f), f, lookup));
  return [...fromFiles, ...envFlags.map((e) => resolveEnvFlag(e, lookup))];
}

/** `K=V` strings to a map; a bare `K` maps to "". Later entries win. */
export function toMap(entries: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of entries) {
    const eq = e.indexOf('=');
    const key = eq === -1 ? e : e.slice(0, eq);
    if (key === '') throw new UsageError(`invalid label: '${e}'`);
    out[key] = eq === -1 ? '' : e.slice(eq + 1);
  }
  return out;
}

/** Docker's filters query value in the map form: `{"label":{"a=b":true}}`. */
export function encodeFilters(entries: string[]): string | undefined {
  if (entries.length === 0) return undefined;
  const filters: Record<string, Record<string, boolean>> = {};
  for (const f of entries) {
    const eq = f.indexOf('=');
    if (eq <= 0) throw new UsageError(`bad format of filter (expected name=value): '${f}'`);
    const key = f.slice(0, eq).trim().toLowerCase();
    (filters[key] ??= {})[f.slice(eq + 1).trim()] = true;
  }
  return JSON.stringify(filters);
}
