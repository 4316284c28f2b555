/**
 * `.dockerignore` matching with Docker's semantics (pure, no I/O).
 *
 * - One pattern a line; surrounding whitespace trimmed; blank lines and lines
 *   starting with `#` ignored.
 * - `!pattern` is an exception (re-includes). Rules apply in order and the
 *   last one that matches a path decides.
 * - Patterns are cleaned like Go's `filepath.Clean` (`./a//b/` → `a/b`,
 *   `a/../b` → `b`) and a leading `/` is dropped: patterns are always
 *   relative to the context root.
 * - Matching is Go `filepath.Match` style — `*` any run of characters but
 *   `/`, `?` one character but `/`, `[a-z]` / `[^a-z]` classes, `\` escapes —
 *   plus `**`, which matches any number of directories (zero included).
 * - A rule that matches a directory matches everything under it (`node_modules`
 *   also ignores `node_modules/x/y`); an exception can re-include inside an
 *   ignored directory, so a walker asks {@link Matcher.mayContainIncluded}
 *   before skipping an ignored directory.
 * - Docker makes no difference between files and directories in patterns
 *   (`foo/` is `foo`), and neither does this.
 * - The Dockerfile and `.dockerignore` are always sent, even when a pattern
 *   matches them (as the Docker CLI does).
 */
import { InvalidArgumentError } from '../core/errors.js';

export interface IgnorePattern {
  /** The cleaned pattern, without `!`. */
  pattern: string;
  /** True for a `!` exception. */
  exclusion: boolean;
  /** 1-based line in `.dockerignore`. */
  line: number;
  regex: RegExp;
}

export interface Matcher {
  readonly patterns: readonly IgnorePattern[];
  /** Whether `relPath` (relative to the context root, `/`-separated) is left out. */
  ignores(relPath: string, isDir?: boolean): boolean;
  /**
   * For an ignored directory: whether an exception may re-include something
   * below it, so the walker must still descend (conservative: may say true
   * when nothing is re-included in the end).
   */
  mayContainIncluded(dir: string): boolean;
}

export interface DockerignoreOptions {
  /**
   * The Dockerfile's path relative to the context (default `Dockerfile`);
   * it and `.dockerignore` are never ignored.
   */
  dockerfilePath?: string;
}

/** Go's `filepath.Clean` for `/`-separated paths. */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(part);
  }
  const joined = out.join('/');
  if (rooted) return `/${joined}`;
  return joined === '' ? '.' : joined;
}

/** A context-relative path in the form patterns are matched against. */
function relClean(p: string): string {
  const c = cleanPath(p);
  if (c === '/') return '.';
  return c.startsWith('/') ? c.slice(1) : c;
}

function escapeRe(ch: string): string {
  return /[.*+?^${}()|[\]\\/-]/.test(ch) ? `\\${ch}` : ch;
}

/** Compiles a cleaned glob into the source of an anchored-less regex; throws on a bad pattern. */
function globToRegex(pattern: string): string {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        i += 1;
        if (pattern[i + 1] === '/') {
          i += 1;
          re += '(?:.*/)?'; // `**/`: zero or more leading directories
        } else {
          re += '.*';
        }
      } else {
        re += '[^/]*';
      }
    } else if (ch === '?') {
      re += '[^/]';
    } else if (ch === '\\') {
      const next = pattern[i + 1];
      if (next === undefined) throw new Error('trailing escape');
      re += escapeRe(next);
      i += 1;
    } else if (ch === '[') {
      let j = i + 1;
      let cls = '';
      if (pattern[j] === '^') {
        cls += '^';
        j += 1;
      }
      let empty = true;
      for (;;) {
        const c = pattern[j];
        if (c === undefined) throw new Error('unterminated character class');
        if (c === ']' && !empty) break;
        if (c === '\\') {
          const n = pattern[j + 1];
          if (n === undefined) throw new Error('trailing escape');
          cls += escapeRe(n);
          j += 2;
        } else {
          cls += c === '-' && !empty && pattern[j + 1] !== ']' ? '-' : escapeRe(c);
          j += 1;
        }
        empty = false;
      }
      re += `[${cls}]`;
      i = j;
    } else {
      re += escapeRe(ch);
    }
  }
  return re;
}

/** Parses `.dockerignore` text. Throws InvalidArgumentError (`.dockerignore:N: ...`) on a bad pattern. */
export function parseDockerignore(text: string, options: DockerignoreOptions = {}): Matcher {
  const patterns: IgnorePattern[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\n|\r/);
  lines.forEach((raw, idx) => {
    let p = raw.trim();
    if (p === '' || p.startsWith('#')) return;
    const exclusion = p.startsWith('!');
    if (exclusion) {
      p = p.slice(1).trim();
      if (p === '') throw new InvalidArgumentError(`.dockerignore:${idx + 1}: illegal exclusion pattern: "!"`);
    }
    p = cleanPath(p);
    if (p.length > 1 && p.startsWith('/')) p = p.slice(1);
    let regex: RegExp;
    try {
      regex = new RegExp(`^${globToRegex(p)}$`, 's');
    } catch (e) {
      throw new InvalidArgumentError(`.dockerignore:${idx + 1}: syntax error in pattern: ${p}`, { cause: e });
    }
    patterns.push({ pattern: p, exclusion, line: idx + 1, regex });
  });
  const alwaysSent = new Set(['.dockerignore', relClean(options.dockerfilePath ?? 'Dockerfile')]);
  return new DockerignoreMatcher(patterns, alwaysSent);
}

class DockerignoreMatcher implements Matcher {
  constructor(
    readonly patterns: readonly IgnorePattern[],
    private readonly alwaysSent: ReadonlySet<string>,
  ) {}

  ignores(relPath: string, _isDir = false): boolean {
    const p = relClean(relPath);
    if (p === '.' || this.alwaysSent.has(p)) return false;
    const parts = p.split('/');
    const parents: string[] = [];
    for (let k = 1; k < parts.length; k++) parents.push(parts.slice(0, k).join('/'));
    let ignored = false;
    for (const pat of this.patterns) {
      // Only a rule that could change the verdict needs testing.
      if (pat.exclusion !== ignored) continue;
      if (pat.regex.test(p) || parents.some((d) => pat.regex.test(d))) ignored = !pat.exclusion;
    }
    return ignored;
  }

  mayContainIncluded(dir: string): boolean {
    const d = relClean(dir);
    if (d === '.') return true;
    for (const s of this.alwaysSent) if (s.startsWith(`${d}/`)) return true;
    const dirParts = d.split('/');
    return this.patterns.some((pat) => pat.exclusion && couldMatchBelow(pat.pattern, dirParts));
  }
}

/** Whether a glob might match `dir` itself, an ancestor of it, or a path below it. */
function couldMatchBelow(pattern: string, dirParts: string[]): boolean {
  const patParts = pattern.split('/');
  for (let k = 0; k < dirParts.length; k++) {
    const seg = patParts[k];
    if (seg === undefined) return true; // matched an ancestor: everything below is re-included
    if (seg.includes('**')) return true;
    let re: RegExp;
    try {
      re = new RegExp(`^${globToRegex(seg)}$`, 's');
    } catch {
      return true;
    }
    if (!re.test(dirParts[k]!)) return false;
  }
  return true;
}
