/**
 * `docker top`: runs the host's `ps` and keeps the rows of the container's
 * processes. The daemon passes the pids from the container's cgroup; ps runs
 * outside the container, so it works for images that have no ps of their own.
 */
import { run, type CommandResult } from '../core/exec.js';
import { InvalidArgumentError, UnavailableError } from '../core/errors.js';

export interface TopResult {
  Titles: string[];
  Processes: string[][];
}

/** ASCII only, as ps pads with ASCII: a non-breaking space in a command line is part of the command. */
const WS = /[\t\n\v\f\r ]+/;
const FIELD = /[^\t\n\v\f\r ]+/g;

/**
 * The first `count` fields of a line, then everything after them verbatim: the
 * last column (CMD, COMMAND, args) contains spaces that must survive.
 */
function splitRow(line: string, count: number): string[] {
  const fields: string[] = [];
  FIELD.lastIndex = 0;
  let m: RegExpExecArray | null;
  while (fields.length < count && (m = FIELD.exec(line)) !== null) fields.push(m[0]);
  const rest = line.slice(FIELD.lastIndex).trim();
  if (fields.length === count && rest !== '') fields.push(rest);
  // A row shorter than the header: its last columns are empty.
  while (fields.length < count + 1) fields.push('');
  return fields;
}

/** Parses ps output and keeps the rows whose PID is one of `pids`. */
export function parsePsOutput(output: string, pids: readonly number[]): TopResult {
  const lines = output.split('\n');
  const titles = (lines[0] ?? '').trim().split(WS).filter((t) => t !== '');
  const pidIndex = titles.indexOf('PID');
  if (pidIndex < 0) throw new InvalidArgumentError("Couldn't find PID field in ps output");
  const wanted = new Set(pids);
  const processes: string[][] = [];
  for (const line of lines.slice(1)) {
    if (line.trim() === '') continue;
    const row = splitRow(line, titles.length - 1);
    const field = row[pidIndex] ?? '';
    const pid = Number(field);
    // A column before PID whose values contain spaces (lstart, say) shifts the fields.
    if (!/^\d+$/.test(field)) throw new InvalidArgumentError(`Unexpected pid "${field}" in ps output`);
    if (wanted.has(pid)) processes.push(row);
  }
  return { Titles: titles, Processes: processes };
}

export async function top(pids: number[], psArgs: string = '-ef'): Promise<TopResult> {
  const args = psArgs.trim() === '' ? ['-ef'] : psArgs.trim().split(WS);
  // Renaming another column's header to PID (`-o user=PID`) would make us filter on the wrong column.
  for (const m of psArgs.matchAll(/([^\s,=]*)=\s*(PID[^\s,]*)/g)) {
    if (m[1] !== 'pid') throw new InvalidArgumentError(`Specifying "${m[1]}=${m[2]}" is not allowed`);
  }
  let result: CommandResult;
  try {
    // No shell: the arguments go to ps as they are, whatever they contain.
    result = await run('ps', args, { reject: false, timeoutMs: 30_000 });
  } catch (e) {
    throw new UnavailableError('Cannot run ps: is procps installed?', { cause: e });
  }
  if (result.timedOut) throw new UnavailableError(`ps ${args.join(' ')} timed out`);
  // ps exits 1 when a selection matched nothing, but still prints the header.
  const usable = result.exitCode === 0 || (result.stderr.trim() === '' && result.stdout.trim() !== '');
  if (!usable) {
    // procps puts the reason first and a usage text after it.
    const why = result.stderr.split('\n').find((l) => l.trim() !== '')?.trim() || `exit code ${result.exitCode}`;
    throw new InvalidArgumentError(`Error running ps ${args.join(' ')}: ${why}`);
  }
  return parsePsOutput(result.stdout, pids);
}
