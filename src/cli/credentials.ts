/**
 * Registry credentials the CLI keeps, Docker-style:
 * `$VESSEL_CONFIG/config.json` (default `~/.vessel/config.json`, mode 0600)
 * holding `{"auths":{"<host>":{"auth":"base64(user:pass)"}}}`. Other keys
 * in the file are preserved. The CLI sends them to the daemon per request
 * as `X-Registry-Auth`; the daemon never stores them.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InvalidArgumentError } from '../core/errors.js';

export interface StoredCredentials {
  username: string;
  password: string;
}

interface ConfigFile {
  auths?: Record<string, { auth?: string }>;
  [k: string]: unknown;
}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.VESSEL_CONFIG || path.join(os.homedir(), '.vessel');
  return path.join(dir, 'config.json');
}

async function readConfig(file: string): Promise<ConfigFile> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw e;
  }
  try {
    const doc = JSON.parse(text) as ConfigFile;
    return doc && typeof doc === 'object' ? doc : {};
  } catch {
    throw new InvalidArgumentError(`${file} is not valid JSON`);
  }
}

async function writeConfig(file: string, doc: ConfigFile): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.writeFile(tmp, `${JSON.stringify(doc, null, '\t')}\n`, { mode: 0o600 });
  await fs.chmod(tmp, 0o600);
  await fs.rename(tmp, file);
}

export async function loadCredentials(key: string, file = configPath()): Promise<StoredCredentials | null> {
  const entry = (await readConfig(file)).auths?.[key];
  if (!entry?.auth) return null;
  const text = Buffer.from(entry.auth, 'base64').toString('utf8');
  const i = text.indexOf(':');
  if (i <= 0) return null;
  return { username: text.slice(0, i), password: text.slice(i + 1) };
}

export async function saveCredentials(key: string, c: StoredCredentials, file = configPath()): Promise<void> {
  const doc = await readConfig(file);
  doc.auths = { ...doc.auths, [key]: { auth: Buffer.from(`${c.username}:${c.password}`).toString('base64') } };
  await writeConfig(file, doc);
}

/** Removes the entry; false when there was none. */
export async function removeCredentials(key: string, file = configPath()): Promise<boolean> {
  const doc = await readConfig(file);
  if (!doc.auths?.[key]) return false;
  delete doc.auths[key];
  await writeConfig(file, doc);
  return true;
}

/** The `X-Registry-Auth` header value: base64url JSON, as Docker sends it. */
export function registryAuthHeader(c: StoredCredentials | null, serveraddress: string): string {
  const doc = c ? { username: c.username, password: c.password, serveraddress } : {};
  return Buffer.from(JSON.stringify(doc)).toString('base64url');
}

/** The `X-Registry-Config` header of POST /build: every stored login, so FROM can pull from any of them. */
export async function registryConfigHeader(file = configPath()): Promise<string> {
  const doc: Record<string, { username: string; password: string }> = {};
  for (const key of Object.keys((await readConfig(file)).auths ?? {})) {
    const c = await loadCredentials(key, file);
    if (c) doc[key] = { username: c.username, password: c.password };
  }
  return Buffer.from(JSON.stringify(doc)).toString('base64url');
}
