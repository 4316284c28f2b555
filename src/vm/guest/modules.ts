/**
 * Kernel module dependency resolution without depmod (pure).
 *
 * Debian's kernel package ships no modules.dep (depmod runs in its postinst),
 * and the host has no depmod, so dependencies are read from each module's
 * own `.modinfo` section (`depends=a,b`) and ordered here.
 */
import { NotFoundError } from '../../core/errors.js';

export interface ModuleInfo {
  /** Canonical name: basename without `.ko[.xz|.zst|.gz]`, dashes as underscores. */
  name: string;
  /** Path relative to the modules directory, e.g. `kernel/drivers/block/virtio_blk.ko`. */
  path: string;
  depends: string[];
}

const KO = /\.ko(?:\.(?:xz|zst|gz))?$/;

/** Module names compare with `-` and `_` equal, as the kernel does. */
export function canonicalModuleName(name: string): string {
  return name.replace(/-/g, '_');
}

/** `kernel/fs/fuse/fuse.ko.xz` → `fuse`; null for a non-module path. */
export function moduleNameFromPath(p: string): string | null {
  const base = p.slice(p.lastIndexOf('/') + 1);
  return KO.test(base) ? canonicalModuleName(base.replace(KO, '')) : null;
}

/** The `depends=` list of an uncompressed module image (its .modinfo strings). */
export function parseModinfoDepends(ko: Buffer): string[] {
  const key = Buffer.from('\0depends=');
  const at = ko.indexOf(key);
  if (at < 0) return [];
  const start = at + key.length;
  const end = ko.indexOf(0, start);
  const value = ko.subarray(start, end < 0 ? ko.length : end).toString('latin1');
  return value.split(',').map((s) => s.trim()).filter(Boolean).map(canonicalModuleName);
}

/** Names of built-in modules from a `modules.builtin` file's text. */
export function parseModulesBuiltin(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const name = moduleNameFromPath(line.trim());
    if (name) names.add(name);
  }
  return names;
}

/**
 * The modules to load, dependencies first, so that loading them in order with
 * insmod succeeds. Built-in modules are dropped; a wanted module that is
 * neither built in nor present throws NotFoundError (a missing dependency of
 * a present module too). Each module appears once.
 */
export function resolveModuleOrder(wanted: readonly string[], available: ReadonlyMap<string, ModuleInfo>, builtin: ReadonlySet<string>): ModuleInfo[] {
  const order: ModuleInfo[] = [];
  const done = new Set<string>();
  const visiting = new Set<string>();
  const visit = (raw: string, via: string | null): void => {
    const name = canonicalModuleName(raw);
    if (done.has(name) || builtin.has(name)) return;
    // A dependency cycle cannot be loaded by insmod either; the kernel's own
    // modules never have one, so treat it as already satisfied.
    if (visiting.has(name)) return;
    const info = available.get(name);
    if (!info) throw new NotFoundError(`Kernel module not found: ${name}${via ? ` (needed by ${via})` : ''}`);
    visiting.add(name);
    for (const dep of info.depends) visit(dep, name);
    visiting.delete(name);
    done.add(name);
    order.push(info);
  };
  for (const w of wanted) visit(w, null);
  return order;
}
