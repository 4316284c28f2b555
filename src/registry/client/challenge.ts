/**
 * `WWW-Authenticate` challenges (RFC 7235), as registries send them:
 * `Bearer realm="https://auth/token",service="registry",scope="repository:a:pull"`
 * or `Basic realm="basic-realm"`. Pure; no I/O.
 */

export interface Challenge {
  /** Lower-cased scheme: `basic`, `bearer`, ... */
  scheme: string;
  /** Parameters with lower-cased names. */
  params: Record<string, string>;
}

/**
 * Parses one header value, which may hold several challenges
 * (`Basic realm="x", Bearer realm="y"`). Malformed tails are ignored rather
 * than thrown: the caller then reports "no usable challenge".
 */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  if (Array.isArray(header)) return header.flatMap((h) => parseChallenges(h));
  const s = header;
  const out: Challenge[] = [];
  let i = 0;
  const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
  const skip = (chars: string) => {
    while (i < s.length && chars.includes(s[i] as string)) i++;
  };
  const token = (): string => {
    const start = i;
    while (i < s.length && TOKEN.test(s[i] as string)) i++;
    return s.slice(start, i);
  };
  /** At `name=` (a parameter) rather than `scheme name=` (a new challenge)? */
  const atParam = (): boolean => /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+[ \t]*=/.test(s.slice(i));
  let current: Challenge | null = null;
  while (i < s.length) {
    skip(' \t,');
    if (i >= s.length) break;
    if (current && atParam()) {
      const name = token().toLowerCase();
      skip(' \t');
      i++; // '='
      skip(' \t');
      let value = '';
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          value += s[i];
          i++;
        }
        i++;
      } else {
        value = token();
      }
      current.params[name] = value;
      continue;
    }
    const scheme = token();
    if (!scheme) {
      i++; // junk: skip a character and go on
      continue;
    }
    current = { scheme: scheme.toLowerCase(), params: {} };
    out.push(current);
    skip(' \t');
    // A token68 credential form (`Negotiate abc==`) carries no parameters we use.
    if (!atParam()) {
      while (i < s.length && s[i] !== ',') i++;
    }
  }
  return out;
}

/** The challenge to answer: Bearer preferred over Basic (as Docker does). */
export function pickChallenge(challenges: Challenge[]): Challenge | null {
  return challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic') ?? null;
}

/** `repository:<repo>:<actions>`, the scope a token request asks for. */
export function repositoryScope(repo: string, actions: Array<'pull' | 'push'>): string {
  return `repository:${repo}:${actions.join(',')}`;
}
