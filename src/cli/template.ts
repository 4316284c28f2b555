/**
 * A small evaluator for the subset of Go text/template that people pass to
 * `docker inspect -f` / `ps --format`: field chains (`{{.State.Status}}`),
 * functions (`json`, `index`, `join`, `upper`, `lower`, `title`, `len`,
 * `split`, `println`), pipes (`{{.Name | upper}}`), `if`/`else`, `range`,
 * `with` and `{{-`/`-}}` whitespace trimming. Values are JSON data, printed
 * the way Go prints them (maps as `map[k:v]`, slices as `[a b]`).
 */
import { UsageError } from './errors.js';

type Arg = { t: 'field'; path: string[]; raw: string } | { t: 'lit'; v: unknown };
interface Cmd {
  fn?: string;
  args: Arg[];
}
type Node =
  | { t: 'text'; s: string }
  | { t: 'action'; pipe: Cmd[] }
  | { t: 'if' | 'range' | 'with'; pipe: Cmd[]; body: Node[]; orElse: Node[] };

export class TemplateError extends UsageError {
  override name = 'TemplateError';
}

export interface Template {
  execute(data: unknown): string;
}

export function parseTemplate(src: string): Template {
  const nodes = parseNodes(tokenize(src), { i: 0 }, false);
  return { execute: (data) => run(nodes.body, data) };
}

type Piece = { t: 'text'; s: string } | { t: 'action'; s: string };

function tokenize(src: string): Piece[] {
  const out: Piece[] = [];
  let pos = 0;
  while (pos < src.length) {
    const open = src.indexOf('{{', pos);
    if (open === -1) {
      out.push({ t: 'text', s: src.slice(pos) });
      break;
    }
    let text = src.slice(pos, open);
    const close = src.indexOf('}}', open + 2);
    if (close === -1) throw new TemplateError(`template: unclosed action in ${JSON.stringify(src)}`);
    let inner = src.slice(open + 2, close);
    if (inner.startsWith('- ') || inner === '-') {
      text = text.trimEnd();
      inner = inner.slice(1);
    }
    pos = close + 2;
    if (inner.endsWith(' -')) {
      inner = inner.slice(0, -1);
      while (pos < src.length && /\s/.test(src[pos] as string)) pos++;
    }
    if (text) out.push({ t: 'text', s: text });
    out.push({ t: 'action', s: inner.trim() });
  }
  return out;
}

/** Parses until `{{end}}` (or `{{else}}`) when nested; returns body and else-branch. */
function parseNodes(pieces: Piece[], at: { i: number }, nested: boolean): { body: Node[]; orElse: Node[] } {
  const body: Node[] = [];
  const orElse: Node[] = [];
  let cur = body;
  while (at.i < pieces.length) {
    const p = pieces[at.i++] as Piece;
    if (p.t === 'text') {
      cur.push(p);
      continue;
    }
    const words = splitWords(p.s);
    const kw = words[0];
    if (kw === 'end') {
      if (!nested) throw new TemplateError('template: unexpected {{end}}');
      return { body, orElse };
    }
    if (kw === 'else') {
      if (!nested) throw new TemplateError('template: unexpected {{else}}');
      cur = orElse;
      continue;
    }
    if (kw === 'if' || kw === 'range' || kw === 'with') {
      const pipe = parsePipe(words.slice(1));
      const inner = parseNodes(pieces, at, true);
      cur.push({ t: kw, pipe, ...inner });
      continue;
    }
    if (p.s.startsWith('/*')) continue; // comment
    cur.push({ t: 'action', pipe: parsePipe(words) });
  }
  if (nested) throw new TemplateError('template: missing {{end}}');
  return { body, orElse };
}

function splitWords(s: string): string[] {
  const re = /"(?:[^"\\]|\\.)*"|`[^`]*`|\||[^\s|]+/g;
  return s.match(re) ?? [];
}

function parsePipe(words: string[]): Cmd[] {
  const cmds: Cmd[] = [];
  let cur: string[] = [];
  for (const w of [...words, '|']) {
    if (w !== '|') {
      cur.push(w);
      continue;
    }
    if (cur.length === 0) throw new TemplateError('template: missing value for command');
    const [head, ...rest] = cur as [string, ...string[]];
    cmds.push(/^[A-Za-z_]\w*$/.test(head) && !['true', 'false', 'nil'].includes(head)
      ? { fn: head, args: rest.map(parseArg) }
      : { args: cur.map(parseArg) });
    cur = [];
  }
  return cmds;
}

function parseArg(w: string): Arg {
  if (w === '.') return { t: 'field', path: [], raw: w };
  if (w.startsWith('.')) return { t: 'field', path: w.slice(1).split('.'), raw: w };
  if (w.startsWith('"')) return { t: 'lit', v: JSON.parse(w) };
  if (w.startsWith('`')) return { t: 'lit', v: w.slice(1, -1) };
  if (w === 'true' || w === 'false') return { t: 'lit', v: w === 'true' };
  if (w === 'nil') return { t: 'lit', v: null };
  if (/^-?\d+(\.\d+)?$/.test(w)) return { t: 'lit', v: Number(w) };
  throw new TemplateError(`template: function "${w}" not defined`);
}

function run(nodes: Node[], dot: unknown): string {
  let out = '';
  for (const n of nodes) {
    if (n.t === 'text') out += n.s;
    else if (n.t === 'action') out += show(evalPipe(n.pipe, dot));
    else {
      const v = evalPipe(n.pipe, dot);
      if (n.t === 'if') out += run(truthy(v) ? n.body : n.orElse, dot);
      else if (n.t === 'with') out += truthy(v) ? run(n.body, v) : run(n.orElse, dot);
      else {
        const items = Array.isArray(v) ? v : isObject(v) ? sortedKeys(v).map((k) => v[k]) : [];
        out += items.length ? items.map((item) => run(n.body, item)).join('') : run(n.orElse, dot);
      }
    }
  }
  return out;
}

function evalPipe(pipe: Cmd[], dot: unknown): unknown {
  let prev: unknown;
  let first = true;
  for (const c of pipe) {
    const args = c.args.map((a) => evalArg(a, dot));
    if (!first) args.push(prev);
    if (c.fn) prev = callFn(c.fn, args);
    else if (args.length === 1) prev = args[0];
    else throw new TemplateError("template: can't give argument to non-function");
    first = false;
  }
  return prev;
}

function evalArg(a: Arg, dot: unknown): unknown {
  if (a.t === 'lit') return a.v;
  let v = dot;
  for (const key of a.path) {
    if (!isObject(v)) throw new TemplateError(`template: executing at <${a.raw}>: nil pointer evaluating ${key}`);
    if (!(key in v)) throw new TemplateError(`template: executing at <${a.raw}>: map has no entry for key "${key}"`);
    v = v[key];
  }
  return v;
}

function callFn(name: string, args: unknown[]): unknown {
  const str = (i: number) => (typeof args[i] === 'string' ? (args[i] as string) : show(args[i]));
  switch (name) {
    case 'json':
      return JSON.stringify(args[0] ?? null);
    case 'upper':
      return str(0).toUpperCase();
    case 'lower':
      return str(0).toLowerCase();
    case 'title':
      return str(0).replace(/\b\w/g, (c) => c.toUpperCase());
    case 'len': {
      const v = args[0];
      return Array.isArray(v) || typeof v === 'string' ? v.length : isObject(v) ? Object.keys(v).length : 0;
    }
    case 'join':
      return Array.isArray(args[0]) ? args[0].map((x) => show(x)).join(str(1)) : str(0);
    case 'split':
      return str(0).split(str(1));
    case 'println':
      return args.map((x) => show(x)).join(' ') + '\n';
    case 'index': {
      let v = args[0];
      for (const k of args.slice(1)) {
        if (Array.isArray(v) && typeof k === 'number') v = v[k];
        else if (isObject(v)) v = v[String(k)];
        else v = undefined;
      }
      return v;
    }
    default:
      throw new TemplateError(`template: function "${name}" not defined`);
  }
}

function truthy(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (isObject(v)) return Object.keys(v).length > 0;
  return Boolean(v);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function sortedKeys(o: Record<string, unknown>): string[] {
  return Object.keys(o).sort();
}

/** Go's %v for JSON-decoded values. */
export function show(v: unknown): string {
  if (v === undefined || v === null) return '<no value>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map((x) => (x === null ? '<nil>' : show(x))).join(' ')}]`;
  if (isObject(v)) return `map[${sortedKeys(v).map((k) => `${k}:${v[k] === null ? '<nil>' : show(v[k])}`).join(' ')}]`;
  return String(v);
}
