/**
 * Output helpers for tables and identifiers, matching the layout of Docker's
 * tabwriter-based tables (columns padded by 3, at least 10 wide) so scripts
 * and eyes used to `docker ps` read ours the same way.
 */
import { parseTemplate } from './template.js';

/** Aligns rows into columns; the last column is never padded. */
export function renderTable(rows: readonly (readonly string[])[]): string {
  if (rows.length === 0) return '';
  const cols = Math.max(...rows.map((r) => r.length));
  const widths: number[] = [];
  for (let c = 0; c < cols - 1; c++) {
    widths[c] = Math.max(10, ...rows.map((r) => displayWidth(r[c] ?? '') + 3));
  }
  return rows
    .map((r) =>
      r
        .map((cell, c) => (c === r.length - 1 ? cell : cell + ' '.repeat((widths[c] ?? 0) - displayWidth(cell))))
        .join('')
        .trimEnd(),
    )
    .join('\n')
    .concat('\n');
}

function displayWidth(s: string): number {
  return [...s].length;
}

/** `sha256:abcdef…` → first 12 hex characters, as Docker shows IDs. */
export function shortId(id: string, noTrunc = false): string {
  const bare = id.startsWith('sha256:') ? id.slice(7) : id;
  if (noTrunc) return id;
  return bare.slice(0, 12);
}

/** Truncates to `max` characters, ending with `…` when cut. */
export function ellipsis(s: string, max: number): string {
  const chars = [...s];
  if (chars.length <= max) return s;
  return chars.slice(0, max - 1).join('') + '…';
}

/** Splits `repo:tag` at the tag colon (not a registry port's colon). */
export function splitRepoTag(ref: string): { repo: string; tag: string } {
  const at = ref.indexOf('@');
  const base = at === -1 ? ref : ref.slice(0, at);
  const colon = base.lastIndexOf(':');
  if (colon > base.lastIndexOf('/')) return { repo: base.slice(0, colon), tag: base.slice(colon + 1) };
  return { repo: base, tag: '' };
}

export { pathName } from './path-name.js';

/** Formats a date the way Go prints time.Time in Docker's JSON-format listings. */
export function goTime(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  const iso = d.toISOString(); // 2024-01-02T03:04:05.000Z
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} +0000 UTC`;
}

export type Row = Record<string, string>;

/** Column headers Docker prints for well-known template fields in `table` formats. */
const HEADERS: Record<string, string> = {
  ID: 'CONTAINER ID',
  RunningFor: 'CREATED',
  CreatedSince: 'CREATED',
  CreatedAt: 'CREATED AT',
  Repository: 'REPOSITORY',
  CPUPerc: 'CPU %',
  MemUsage: 'MEM USAGE / LIMIT',
  MemPerc: 'MEM %',
  NetIO: 'NET I/O',
  BlockIO: 'BLOCK I/O',
  PIDs: 'PIDS',
};

/**
 * Prints a listing in one of Docker's `--format` modes: the default table,
 * `json` (one object per line, keys sorted like Go's map encoding),
 * `table TEMPLATE` (header plus rows) or a bare Go template per row.
 */
export function renderListing(
  rows: Row[],
  format: string | undefined,
  columns: ReadonlyArray<readonly [header: string, key: string]>,
): string {
  if (format === undefined || format === '' || format === 'table') {
    return renderTable([columns.map(([h]) => h), ...rows.map((r) => columns.map(([, k]) => r[k] ?? ''))]);
  }
  if (format === 'json') {
    return rows.map((r) => JSON.stringify(Object.fromEntries(Object.entries(r).sort(([a], [b]) => a.localeCompare(b))))).join('\n') + (rows.length ? '\n' : '');
  }
  const src = unescapeFormat(format.startsWith('table ') ? format.slice(6) : format);
  const tmpl = parseTemplate(src);
  if (format.startsWith('table ')) {
    const header = src.replace(/\{\{\s*(?:json\s+)?\.(\w+)\s*\}\}/g, (_, f: string) => HEADERS[f] ?? f.toUpperCase());
    const lines = [header, ...rows.map((r) => tmpl.execute(r))];
    return renderTable(lines.map((l) => l.split('\t')));
  }
  return rows.map((r) => `${tmpl.execute(r)}\n`).join('');
}

/** Shell users type `\t` and `\n` literally in --format; Docker turns them into tabs/newlines. */
function unescapeFormat(s: string): string {
  return s.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
}
