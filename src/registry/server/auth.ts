/**
 * HTTP Basic authentication against an Apache htpasswd file with bcrypt
 * entries (`htpasswd -Bbn user pass`: `$2y$`, also `$2a$`/`$2b$`). Other
 * hash schemes (MD5 `$apr1$`, SHA1, crypt, plain) are refused when the file
 * is loaded. bcrypt is deliberately slow, so successful checks are cached
 * for a short while, keyed by a SHA-256 of the credentials (never stored
 * in clear).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import bcrypt from 'bcryptjs';
import { InvalidArgumentError } from '../../core/errors.js';
import { RegistryError } from './errors.js';

const BCRYPT = /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/;

/** How long a verified user:password pair is trusted without re-running bcrypt. */
export const AUTH_CACHE_MS = 60_000;

export class HtpasswdAuth {
  readonly #users = new Map<string, string>();
  readonly #cache = new Map<string, number>();

  constructor(
    text: string,
    readonly realm = 'Vessel Registry',
    private readonly source = 'htpasswd',
  ) {
    text.split('\n').forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const colon = line.indexOf(':');
      const user = line.slice(0, colon);
      const hash = line.slice(colon + 1);
      if (colon <= 0) throw new InvalidArgumentError(`Invalid htpasswd file ${this.source}: line ${i + 1} is not user:hash`);
      if (!BCRYPT.test(hash)) {
        throw new InvalidArgumentError(
          `Unsupported htpasswd entry for user ${user} in ${this.source}: only bcrypt hashes are supported (create them with htpasswd -B)`,
        );
      }
      this.#users.set(user, hash);
    });
  }

  static load(file: string, realm?: string): HtpasswdAuth {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new InvalidArgumentError(`Cannot read htpasswd file ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
    }
    return new HtpasswdAuth(text, realm, file);
  }

  get userCount(): number {
    return this.#users.size;
  }

  /** Resolves to the user name, or throws UNAUTHORIZED with a Basic challenge. */
  async check(authorization: string | undefined): Promise<string> {
    const challenge = { headers: { 'WWW-Authenticate': `Basic realm="${this.realm.replace(/"/g, '')}"` } };
    const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization ?? '');
    if (!m) throw new RegistryError('UNAUTHORIZED', 'Authentication required', challenge);
    const decoded = Buffer.from(m[1] as string, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const user = colon < 0 ? decoded : decoded.slice(0, colon);
    const pass = colon < 0 ? '' : decoded.slice(colon + 1);
    const key = createHash('sha256').update(decoded).digest('hex');
    const until = this.#cache.get(key);
    if (until !== undefined && until > Date.now()) return user;
    const hash = this.#users.get(user);
    // Compare against a dummy hash for unknown users so timing does not reveal who exists.
    const ok = await bcrypt.compare(pass, hash ?? '$2y$05$invalidinvalidinvalidinuL3hOi8nE0lS0Xy6tJ3wTjHqRmxG/6');
    if (!ok || hash === undefined) throw new RegistryError('UNAUTHORIZED', 'Invalid username or password', challenge);
    if (this.#cache.size > 1000) this.#cache.clear();
    this.#cache.set(key, Date.now() + AUTH_CACHE_MS);
    return user;
  }
}
