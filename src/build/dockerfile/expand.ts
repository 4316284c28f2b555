/**
 * Variable substitution for Dockerfile instructions, as Docker does it for
 * ENV and ARG values (pure, no I/O).
 *
 * Docker processes the words of ADD, COPY, ENV, ARG, EXPOSE, FROM, LABEL,
 * STOPSIGNAL, USER, VOLUME and WORKDIR with a small shell-like lexer:
 *
 * - `$name` and `${name}` are replaced by the variable's value (empty when
 *   unset; no error);
 * - `${name:-word}` / `${name-word}`: the value if set and non-empty (`:-`) or
 *   merely set (`-`), else `word`;
 * - `${name:+word}` / `${name+word}`: `word` if set and non-empty (`:+`) or
 *   merely set (`+`), else empty;
 * - `${name:?word}` / `${name?word}`: the value, or an error with `word`;
 * - `word` itself may contain quotes and further substitutions;
 * - the escape character (`\` by default, or the `# escape=` directive)
 *   makes the next character literal (`\$HOME` stays `$HOME`);
 * - single quotes: everything literal, no substitution; double quotes:
 *   substitution happens, and only `"`, `$` and the escape character can be
 *   escaped inside them;
 * - quotes are removed from the result (`ENV A="x y"` sets `x y`).
 *
 * RUN, CMD, ENTRYPOINT, SHELL and HEALTHCHECK are never expanded here: the
 * shell inside the container does that.
 */
import { InvalidArgumentError } from '../../core/errors.js';

export interface ExpandOptions {
  /** The escape character: `\` (default) or `` ` `` (from `# escape=`). */
  escapeChar?: string;
  /**
   * When given, the name of every variable the text refers to is added here
   * (used or not), so callers can tell which build args were consumed.
   */
  used?: Set<string>;
  /**
   * False for words that came from a JSON array (`COPY ["a", "b"]`): quote
   * characters are then literal, and the escape character only protects a
   * following `$` or itself. Default true.
   */
  quotes?: boolean;
}

type Vars = ReadonlyMap<string, string>;

/** Receives the pieces of a word as the lexer finds them. */
interface Sink {
  /** A literal character outside quotes (whitespace may split words). */
  plain(ch: string): void;
  /** Text that can never split a word: escaped or quoted characters. */
  quoted(text: string): void;
  /** The result of an unquoted substitution (splits words in word mode). */
  expanded(text: string): void;
}

class StringSink implements Sink {
  out = '';
  plain(ch: string): void {
    this.out += ch;
  }
  quoted(text: string): void {
    this.out += text;
  }
  expanded(text: string): void {
    this.out += text;
  }
}

class WordsSink implements Sink {
  readonly words: string[] = [];
  private cur = '';
  private inWord = false;
  plain(ch: string): void {
    if (/\s/.test(ch)) this.flush();
    else {
      this.cur += ch;
      this.inWord = true;
    }
  }
  quoted(text: string): void {
    this.cur += text;
    this.inWord = true;
  }
  expanded(text: string): void {
    for (const ch of text) this.plain(ch);
  }
  flush(): void {
    if (this.inWord) this.words.push(this.cur);
    this.cur = '';
    this.inWord = false;
  }
}

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;

class Lexer {
  private i = 0;
  private readonly esc: string;
  private readonly quotes: boolean;

  constructor(
    private readonly src: string,
    private readonly vars: Vars,
    private readonly opts: ExpandOptions,
  ) {
    this.esc = opts.escapeChar ?? '\\';
    this.quotes = opts.quotes ?? true;
  }

  private fail(detail: string): never {
    throw new InvalidArgumentError(`Invalid variable substitution in ${JSON.stringify(this.src)}: ${detail}`);
  }

  /** Scans until `stop` (consumed) or the end of the text. */
  scan(sink: Sink, stop: string | null): void {
    const { src } = this;
    while (this.i < src.length) {
      const ch = src[this.i]!;
      if (stop !== null && ch === stop) {
        this.i += 1;
        return;
      }
      if (ch === this.esc) {
        const next = src[this.i + 1];
        if (next === undefined) {
          // A lone escape character at the very end is dropped, as Docker.
          this.i += 1;
          continue;
        }
        if (!this.quotes && next !== '$' && next !== this.esc) {
          sink.quoted(ch);
          this.i += 1;
          continue;
        }
        sink.quoted(next);
        this.i += 2;
        continue;
      }
      if (this.quotes && ch === "'") {
        sink.quoted(this.singleQuoted());
        continue;
      }
      if (this.quotes && ch === '"') {
        sink.quoted(this.doubleQuoted());
        continue;
      }
      if (ch === '$') {
        const v = this.dollar();
        if (v === null) sink.plain('$');
        else sink.expanded(v);
        continue;
      }
      sink.plain(ch);
      this.i += 1;
    }
    if (stop !== null) this.fail(`missing '${stop}'`);
  }

  private singleQuoted(): string {
    const end = this.src.indexOf("'", this.i + 1);
    if (end < 0) this.fail('unexpected end of text while looking for matching single-quote');
    const text = this.src.slice(this.i + 1, end);
    this.i = end + 1;
    return text;
  }

  private doubleQuoted(): string {
    const { src } = this;
    let out = '';
    this.i += 1;
    while (this.i < src.length) {
      const ch = src[this.i]!;
      if (ch === '"') {
        this.i += 1;
        return out;
      }
      if (ch === '$') {
        out += this.dollar() ?? '$';
        continue;
      }
      if (ch === this.esc) {
        const next = src[this.i + 1];
        if (next === '"' || next === '$' || next === this.esc) {
          out += next;
          this.i += 2;
          continue;
        }
      }
      out += ch;
      this.i += 1;
    }
    return this.fail('unexpected end of text while looking for matching double-quote');
  }

  private lookup(name: string): string | undefined {
    this.opts.used?.add(name);
    return this.vars.get(name);
  }

  /**
   * At a `$`: returns the substituted text, or null when the `$` is literal
   * (followed by nothing that names a variable). Advances past what it used.
   */
  private dollar(): string | null {
    const { src } = this;
    const start = this.i;
    this.i += 1;
    const c = src[this.i];
    if (c === undefined) return null;
    if (c === '{') {
      this.i += 1;
      let name = '';
      while (this.i < src.length && NAME_CHAR.test(src[this.i]!)) name += src[this.i++];
      if (name === '') this.fail(`bad substitution at ${JSON.stringify(src.slice(start, start + 3))}`);
      const op = src[this.i];
      if (op === undefined) this.fail("missing '}'");
      if (op === '}') {
        this.i += 1;
        return this.lookup(name) ?? '';
      }
      let colon = false;
      let mod = op;
      if (op === ':') {
        colon = true;
        mod = src[this.i + 1] ?? '';
        this.i += 2;
      } else {
        this.i += 1;
      }
      if (mod !== '-' && mod !== '+' && mod !== '?') {
        this.fail(`unsupported modifier ${JSON.stringify((colon ? ':' : '') + mod)} in \${${name}}`);
      }
      const wordSink = new StringSink();
      this.scan(wordSink, '}');
      const word = wordSink.out;
      const value = this.lookup(name);
      const present = colon ? value !== undefined && value !== '' : value !== undefined;
      switch (mod) {
        case '-':
          return present ? value! : word;
        case '+':
          return present ? word : '';
        default:
          if (present) return value!;
          throw new InvalidArgumentError(`${name}: ${word || (colon ? 'is not allowed to be empty' : 'is not set')}`);
      }
    }
    if (NAME_START.test(c)) {
      let name = '';
      while (this.i < src.length && NAME_CHAR.test(src[this.i]!)) name += src[this.i++];
      return this.lookup(name) ?? '';
    }
    if (/[0-9]/.test(c)) {
      // Positional parameters do not exist in a Dockerfile: always empty.
      this.i += 1;
      return '';
    }
    return null;
  }
}

/**
 * Expands one word as Docker does: substitutes variables, processes the
 * escape character and removes quotes. Whitespace is kept (`WORKDIR /a b`).
 */
export function expand(text: string, vars: ReadonlyMap<string, string>, options: ExpandOptions = {}): string {
  const sink = new StringSink();
  new Lexer(text, vars, options).scan(sink, null);
  return sink.out;
}

/**
 * Expands text into several words (as for EXPOSE): unquoted whitespace,
 * including whitespace that comes out of an unquoted substitution, separates
 * words; quoted whitespace does not.
 */
export function expandWords(text: string, vars: ReadonlyMap<string, string>, options: ExpandOptions = {}): string[] {
  const sink = new WordsSink();
  new Lexer(text, vars, options).scan(sink, null);
  sink.flush();
  return sink.words;
}

/** Removes quotes and escapes without substituting anything (`$X` stays). */
export function unquote(text: string, options: Omit<ExpandOptions, 'used'> = {}): string {
  // With an empty variable map `$X` would vanish; protect every `$` instead.
  const esc = options.escapeChar ?? '\\';
  const sink = new StringSink();
  const protectedText = protectDollars(text, esc, options.quotes ?? true);
  new Lexer(protectedText, new Map(), options).scan(sink, null);
  return sink.out;
}

/** Puts the escape character before every `$` that substitution would see. */
function protectDollars(text: string, esc: string, quotes: boolean): string {
  let out = '';
  let q: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (q === "'") {
      if (ch === "'") q = null;
      out += ch;
      continue;
    }
    if (ch === esc && i + 1 < text.length) {
      out += ch + text[i + 1];
      i += 1;
      continue;
    }
    if (quotes && (ch === '"' || ch === "'")) {
      if (q === ch) q = null;
      else if (q === null) q = ch;
    }
    out += ch === '$' ? esc + ch : ch;
  }
  return out;
}

/**
 * Splits the arguments of ENV, LABEL, ARG, EXPOSE and COPY into raw words
 * on whitespace outside quotes. Quotes and escapes stay in the words (they
 * are processed later by {@link expand}); an escaped character, including an
 * escaped space or quote, never ends a word or opens a quote, and whitespace
 * inside `${...}` does not split either.
 */
export function splitWords(text: string, escapeChar = '\\'): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: string | null = null;
  let braces = 0; // inside `${...}`, whitespace does not split (`${X:-a b}`)
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote === null && braces === 0 && /\s/.test(ch)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (quote !== "'" && ch === escapeChar) {
      cur += ch;
      if (i + 1 < text.length) cur += text[++i];
      continue;
    }
    if (quote !== "'" && ch === '$' && text[i + 1] === '{') {
      braces += 1;
      cur += '${';
      i += 1;
      continue;
    }
    if (quote === null && ch === '}' && braces > 0) braces -= 1;
    if (ch === '"' || ch === "'") {
      if (quote === null) quote = ch;
      else if (quote === ch) quote = null;
    }
    cur += ch;
  }
  if (inWord) words.push(cur);
  return words;
}
