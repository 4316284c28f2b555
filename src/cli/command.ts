/**
 * The shape every CLI command module exports, plus helpers shared by them.
 * main.ts only needs the types here (erased at runtime), so `vessel
 * --version` never loads the HTTP client.
 */
import { VesselClient } from '../client/client.js';
import { NotFoundError, NotModifiedError, VesselError, errorMessage } from '../core/errors.js';
import type { FlagSpec, ParsedArgs } from './args.js';

export interface CommandContext {
  /** Daemon address, e.g. unix:///run/vessel/vessel.sock. */
  host: string;
  /** The words the user typed to select the command ("image ls"). */
  invokedAs: string;
}

export interface Command {
  /** Usage after the command name, e.g. `[OPTIONS] IMAGE [COMMAND] [ARG...]`. */
  usage: string;
  summary: string;
  flags: FlagSpec[];
  /** false: flags stop at the first positional (run, exec, top). */
  interspersed?: boolean;
  minArgs?: number;
  maxArgs?: number;
  /** Exit status for failures of the CLI or daemon (125 for run/create, else 1). */
  failureCode?: number;
  /** Extra help text printed after the options. */
  notes?: string;
  run(ctx: CommandContext, args: ParsedArgs): Promise<number>;
}

export type CommandTable = Record<string, Command>;

export function connect(ctx: CommandContext): VesselClient {
  return new VesselClient(ctx.host);
}

/** Writes to stdout; resolves when the data is handed to the OS (pipes may be slow). */
export function out(text: string): Promise<void> {
  return new Promise((resolve) => {
    if (process.stdout.write(text)) resolve();
    else process.stdout.once('drain', resolve);
  });
}

/** Treats the daemon's 304 (already in that state) as success, as the Docker CLI does. */
export async function allowNotModified<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof NotModifiedError) return undefined;
    throw e;
  }
}

/**
 * Runs `fn` for each name in order, like `docker stop a b c`: successes are
 * reported as they happen, failures are gathered and reported at the end as
 * one line, so one bad name does not stop the others.
 */
export async function forEachName(names: string[], fn: (name: string) => Promise<void>): Promise<number> {
  const failures: string[] = [];
  for (const name of names) {
    try {
      await fn(name);
    } catch (e) {
      if (!(e instanceof VesselError)) throw e;
      failures.push(errorMessage(e));
    }
  }
  if (failures.length > 0) throw new AggregateFailure(failures);
  return 0;
}

/** Several per-object failures joined into the single stderr line. */
export class AggregateFailure extends VesselError {
  override name = 'AggregateFailure';
  constructor(readonly messages: string[]) {
    super(messages.join('; '));
  }
}

/** Reads one line from stdin for a y/N confirmation prompt. */
export async function confirm(question: string): Promise<boolean> {
  process.stdout.write(`${question} [y/N] `);
  const { createInterface } = await import('node:readline');
  const rl = createInterface({ input: process.stdin });
  const answer = await new Promise<string>((resolve) => {
    rl.once('line', resolve);
    rl.once('close', () => resolve(''));
  });
  rl.close();
  return /^y(es)?$/i.test(answer.trim());
}

/**
 * `vessel <noun> inspect NAME...`: GET `<collection>/NAME` for each name and
 * print a JSON array (or a template per object); names not found are reported
 * together at the end, after what was found is printed (as Docker does).
 */
export function inspectCommand(noun: string, collection: string): Command {
  return {
    usage: `[OPTIONS] ${noun.toUpperCase()} [${noun.toUpperCase()}...]`,
    summary: `Display detailed information on one or more ${noun}s`,
    flags: [{ long: 'format', short: 'f', type: 'string', help: 'Format output using a Go template or json' }],
    minArgs: 1,
    async run(ctx, args) {
      const { parseTemplate } = await import('./template.js');
      const { pathName } = await import('./format.js');
      const client = connect(ctx);
      const format = args.str('format');
      const template = format ? parseTemplate(format === 'json' ? '{{json .}}' : format) : undefined;
      const found: unknown[] = [];
      const failures: string[] = [];
      for (const name of args.positionals) {
        try {
          found.push(await client.json('GET', `${collection}/${pathName(name)}`));
        } catch (e) {
          if (!(e instanceof NotFoundError)) throw e;
          failures.push(e.message);
        }
      }
      if (template) await out(found.map((v) => `${template.execute(v)}\n`).join(''));
      else if (found.length > 0 || failures.length === 0) await out(`${JSON.stringify(found, null, 4)}\n`);
      if (failures.length) throw new AggregateFailure(failures);
      return 0;
    },
  };
}
