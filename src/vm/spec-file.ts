/**
 * Pure parsers for the files users create VMs from: sizes (`512m`, `2GiB`),
 * Vessel's VM YAML, and a small, explicit subset of libvirt domain XML.
 * Every failure is one InvalidArgumentError line naming the field.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { InvalidArgumentError } from '../core/errors.js';

const UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1024, kb: 1024, kib: 1024,
  m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3,
  t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4,
};

/**
 * `512m`, `1G`, `2GiB`, `1.5g` → bytes. A bare number is bytes. Suffixes are
 * binary (k = 1024) whatever their case, as in docker's --memory.
 */
export function parseSize(input: string | number, what = 'size'): number {
  const text = String(input).trim();
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(text);
  const mult = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || mult === undefined) {
    throw new InvalidArgumentError(`Invalid ${what}: ${JSON.stringify(text)} (use e.g. 512m, 1G, 2GiB or a number of bytes)`);
  }
  const bytes = Number(m[1]) * mult;
  if (!Number.isSafeInteger(bytes)) throw new InvalidArgumentError(`Invalid ${what}: ${text} is not a whole number of bytes`);
  return bytes;
}

export interface VmNetworkRequest {
  network: string;
  mac?: string;
}

export interface VmCreateOptions {
  name: string;
  image: string;
  vcpus: number;
  /** Bytes. */
  memory: number;
  /** Root disk size in bytes (grown from the image); default: the image's size. */
  disk?: number;
  networks?: VmNetworkRequest[];
  /** cloud-init user-data text. */
  cloudInit?: string;
  /** Relative CPU weight 1..10000 (docker-like; 100 = default share). */
  cpuWeight?: number;
  /** CPU cap in percent of one CPU (150 = 1.5 CPUs). */
  cpuCap?: number;
}

export interface SpecLimits {
  /** Highest vcpu count allowed (the host's CPUs). Default 255. */
  maxVcpus?: number;
  /** Default 16 MiB. */
  minMemory?: number;
}

const MiB = 1024 * 1024;
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;
const YAML_KEYS = ['name', 'image', 'vcpus', 'memory', 'disk', 'networks', 'cloudInit', 'cpuWeight', 'cpuCap'] as const;

function invalid(msg: string): never {
  throw new InvalidArgumentError(msg);
}

function checkVcpus(n: unknown, limits: SpecLimits, where: string): number {
  const max = limits.maxVcpus ?? 255;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > max) invalid(`${where}: vcpus must be an integer from 1 to ${max}, got ${String(n)}`);
  return n;
}

function checkMemory(bytes: number, limits: SpecLimits, where: string): number {
  const min = limits.minMemory ?? 16 * MiB;
  if (bytes < min) invalid(`${where}: memory ${bytes} bytes is below the minimum of ${min / MiB} MiB (write e.g. 512m or 1G)`);
  if (bytes % MiB !== 0) invalid(`${where}: memory must be a whole number of MiB, got ${bytes} bytes`);
  return bytes;
}

function sizeField(v: unknown, what: string): number {
  if (typeof v !== 'string' && typeof v !== 'number') invalid(`VM spec: ${what} must be a size like 1G, got ${JSON.stringify(v)}`);
  return parseSize(v, `VM spec ${what}`);
}

/** Parse Vessel's VM YAML. Unknown keys and bad values are one-line errors. */
export function parseVmYaml(text: string, limits: SpecLimits = {}): VmCreateOptions {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    invalid(`VM spec: invalid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) invalid('VM spec: expected a mapping of keys (name, image, vcpus, memory, ...)');
  const d = doc as Record<string, unknown>;
  const unknown = Object.keys(d).filter((k) => !(YAML_KEYS as readonly string[]).includes(k));
  if (unknown.length > 0) invalid(`VM spec: unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')} (known: ${YAML_KEYS.join(', ')})`);
  for (const k of ['name', 'image', 'vcpus', 'memory'] as const) if (d[k] === undefined || d[k] === null) invalid(`VM spec: '${k}' is required`);
  if (typeof d['name'] !== 'string' || !NAME.test(d['name'])) invalid(`VM spec: invalid name ${JSON.stringify(d['name'])} (letters, digits, '.', '_', '-'; at most 63)`);
  if (typeof d['image'] !== 'string' || d['image'].trim() === '') invalid('VM spec: image must be a non-empty string');
  const out: VmCreateOptions = {
    name: d['name'],
    image: d['image'],
    vcpus: checkVcpus(d['vcpus'], limits, 'VM spec'),
    memory: checkMemory(sizeField(d['memory'], 'memory'), limits, 'VM spec'),
  };
  if (d['disk'] !== undefined) {
    out.disk = sizeField(d['disk'], 'disk');
    if (out.disk < MiB) invalid(`VM spec: disk ${out.disk} bytes is too small (write e.g. 10G)`);
  }
  if (d['networks'] !== undefined) {
    if (!Array.isArray(d['networks'])) invalid('VM spec: networks must be a list');
    out.networks = d['networks'].map((n: unknown, i) => {
      if (typeof n === 'string' && n !== '') return { network: n };
      if (n && typeof n === 'object' && !Array.isArray(n)) {
        const o = n as Record<string, unknown>;
        const extra = Object.keys(o).filter((k) => k !== 'network' && k !== 'mac');
        if (extra.length > 0) invalid(`VM spec: networks[${i}]: unknown key '${extra[0]}' (known: network, mac)`);
        if (typeof o['network'] !== 'string' || o['network'] === '') invalid(`VM spec: networks[${i}].network must be a network name`);
        const r: VmNetworkRequest = { network: o['network'] };
        if (o['mac'] !== undefined) {
          if (typeof o['mac'] !== 'string' || !MAC.test(o['mac'])) invalid(`VM spec: networks[${i}].mac ${JSON.stringify(o['mac'])} is not a MAC address`);
          r.mac = o['mac'].toLowerCase();
        }
        return r;
      }
      return invalid(`VM spec: networks[${i}] must be a network name or {network, mac}`);
    });
  }
  if (d['cloudInit'] !== undefined) {
    const c = d['cloudInit'];
    if (typeof c === 'string') out.cloudInit = c;
    else if (c && typeof c === 'object' && !Array.isArray(c)) out.cloudInit = `#cloud-config\n${stringifyYaml(c)}`;
    else invalid('VM spec: cloudInit must be user-data text or a #cloud-config mapping');
  }
  if (d['cpuWeight'] !== undefined) {
    const w = d['cpuWeight'];
    if (typeof w !== 'number' || !Number.isInteger(w) || w < 1 || w > 10000) invalid(`VM spec: cpuWeight must be an integer from 1 to 10000, got ${String(w)}`);
    out.cpuWeight = w;
  }
  if (d['cpuCap'] !== undefined) {
    const c = d['cpuCap'];
    const max = out.vcpus * 100;
    if (typeof c !== 'number' || !(c >= 1 && c <= max)) invalid(`VM spec: cpuCap is a percentage of one CPU from 1 to ${max} (vcpus × 100), got ${String(c)}`);
    out.cpuCap = c;
  }
  return out;
}

// ---- libvirt domain XML (a strict subset) ----

export interface LibvirtDisk {
  path: string;
  format: 'qcow2' | 'raw';
  /** Guest device name from <target dev>, e.g. vda. */
  target: string;
}

export interface LibvirtInterface {
  bridge: string;
  mac?: string;
}

export interface LibvirtDomain {
  name: string;
  uuid?: string;
  memory: number;
  vcpus: number;
  topology?: { sockets: number; cores: number; threads: number };
  disks: LibvirtDisk[];
  interfaces: LibvirtInterface[];
  /** Elements that were accepted but not used, e.g. "<os> ignored". */
  notes: string[];
}

type XNode = Record<string, unknown>;

const LIBVIRT_UNITS: Record<string, number> = {
  b: 1, bytes: 1,
  kb: 1000, k: 1024, kib: 1024,
  mb: 1000 ** 2, m: 1024 ** 2, mib: 1024 ** 2,
  gb: 1000 ** 3, g: 1024 ** 3, gib: 1024 ** 3,
  tb: 1000 ** 4, t: 1024 ** 4, tib: 1024 ** 4,
};
const IGNORED = ['os', 'features', 'on_poweroff', 'on_reboot', 'on_crash', 'clock', 'currentMemory'];
const SUPPORTED_DEVICES = "<disk type='file' device='disk'>, <interface type='bridge'>";

const attr = (n: XNode, a: string): string | undefined => (typeof n[`@_${a}`] === 'string' ? (n[`@_${a}`] as string) : undefined);
const text = (n: XNode): string => (typeof n['#text'] === 'string' ? n['#text'].trim() : '');
const children = (n: XNode): string[] => Object.keys(n).filter((k) => !k.startsWith('@_') && k !== '#text');
const only = (n: XNode, tag: string): XNode | undefined => {
  const v = n[tag] as XNode[] | undefined;
  if (v && v.length > 1) invalid(`libvirt XML: <${tag}> given ${v.length} times`);
  return v?.[0];
};

/** `<graphics type='vnc'>` for messages. */
function describe(tag: string, n: XNode): string {
  const attrs = Object.keys(n)
    .filter((k) => k.startsWith('@_'))
    .slice(0, 2)
    .map((k) => ` ${k.slice(2)}='${String(n[k])}'`)
    .join('');
  return `<${tag}${attrs}>`;
}

function requireOnlyChildren(n: XNode, where: string, allowed: string[]): void {
  for (const c of children(n)) {
    if (!allowed.includes(c)) invalid(`libvirt XML: unsupported element ${describe(c, ((n[c] as XNode[])[0] ?? {}) as XNode)} in ${where} (supported: ${allowed.map((a) => `<${a}>`).join(', ')})`);
  }
}

function positiveInt(v: string | undefined, what: string): number {
  const n = Number(v);
  if (v === undefined || !/^\d+$/.test(v.trim()) || n < 1) invalid(`libvirt XML: ${what} must be a positive integer, got ${JSON.stringify(v ?? '')}`);
  return n;
}

/**
 * Parse a libvirt `<domain>` restricted to: name, uuid, memory, vcpu,
 * cpu host-passthrough (+topology), file-backed virtio disks and bridge
 * interfaces. os, features, on_poweroff/reboot/crash, clock and currentMemory are ignored with a note;
 * anything else is a one-line error.
 */
export function parseLibvirtDomain(xml: string, limits: SpecLimits = {}): LibvirtDomain {
  const valid = XMLValidator.validate(xml);
  if (valid !== true) invalid(`libvirt XML: not well-formed: ${valid.err.msg} (line ${valid.err.line})`);
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '@_',
    parseTagValue: false,
    parseAttributeValue: false,
    alwaysCreateTextNode: true,
    isArray: (_name, _path, _leaf, isAttribute) => !isAttribute,
    processEntities: true,
  });
  const root = parser.parse(xml) as XNode;
  const top = children(root).filter((k) => k !== '?xml');
  if (top.length !== 1 || top[0] !== 'domain') invalid(`libvirt XML: expected a <domain> root element, got ${top.map((t) => `<${t}>`).join(', ') || 'nothing'}`);
  const domains = root['domain'] as XNode[];
  if (domains.length !== 1) invalid('libvirt XML: more than one <domain>');
  const dom = domains[0]!;
  const notes: string[] = [];

  for (const c of children(dom)) {
    if (IGNORED.includes(c)) notes.push(`<${c}> ignored`);
    else if (!['name', 'uuid', 'memory', 'vcpu', 'cpu', 'devices'].includes(c)) {
      invalid(`libvirt XML: unsupported element ${describe(c, ((dom[c] as XNode[])[0] ?? {}) as XNode)} (supported: <name>, <uuid>, <memory>, <vcpu>, <cpu mode='host-passthrough'>, <devices>)`);
    }
  }

  const nameNode = only(dom, 'name');
  const name = nameNode ? text(nameNode) : '';
  if (!NAME.test(name)) invalid(`libvirt XML: invalid or missing <name> ${JSON.stringify(name)}`);

  const memNode = only(dom, 'memory');
  if (!memNode) invalid('libvirt XML: <memory> is required');
  const unit = (attr(memNode, 'unit') ?? 'KiB').toLowerCase();
  const mult = LIBVIRT_UNITS[unit];
  if (mult === undefined) invalid(`libvirt XML: unknown memory unit '${attr(memNode, 'unit')}'`);
  const memory = checkMemory(positiveInt(text(memNode), '<memory>') * mult, limits, 'libvirt XML');

  const vcpuNode = only(dom, 'vcpu');
  if (!vcpuNode) invalid('libvirt XML: <vcpu> is required');
  const vcpus = checkVcpus(positiveInt(text(vcpuNode), '<vcpu>'), limits, 'libvirt XML');

  const out: LibvirtDomain = { name, memory, vcpus, disks: [], interfaces: [], notes };
  const uuidNode = only(dom, 'uuid');
  if (uuidNode) out.uuid = text(uuidNode);

  const cpu = only(dom, 'cpu');
  if (cpu) {
    if (attr(cpu, 'mode') !== 'host-passthrough') invalid(`libvirt XML: unsupported ${describe('cpu', cpu)} (supported: <cpu mode='host-passthrough'>)`);
    requireOnlyChildren(cpu, '<cpu>', ['topology']);
    const t = only(cpu, 'topology');
    if (t) {
      const topo = {
        sockets: positiveInt(attr(t, 'sockets'), 'topology sockets'),
        cores: positiveInt(attr(t, 'cores'), 'topology cores'),
        threads: positiveInt(attr(t, 'threads'), 'topology threads'),
      };
      if (topo.sockets * topo.cores * topo.threads !== vcpus) {
        invalid(`libvirt XML: topology ${topo.sockets}×${topo.cores}×${topo.threads} does not equal <vcpu> ${vcpus}`);
      }
      out.topology = topo;
    }
  }

  const devices = only(dom, 'devices');
  if (devices) {
    for (const c of children(devices)) {
      for (const n of devices[c] as XNode[]) {
        if (c === 'disk' && attr(n, 'type') === 'file' && (attr(n, 'device') ?? 'disk') === 'disk') out.disks.push(parseDisk(n));
        else if (c === 'interface' && attr(n, 'type') === 'bridge') out.interfaces.push(parseInterface(n));
        else invalid(`libvirt XML: unsupported device ${describe(c, n)} (supported: ${SUPPORTED_DEVICES})`);
      }
    }
  }
  const targets = new Set<string>();
  for (const d of out.disks) {
    if (targets.has(d.target)) invalid(`libvirt XML: disk target ${d.target} used twice`);
    targets.add(d.target);
  }
  return out;
}

function parseDisk(n: XNode): LibvirtDisk {
  requireOnlyChildren(n, '<disk>', ['driver', 'source', 'target']);
  const driver = only(n, 'driver');
  const format = driver ? attr(driver, 'type') : undefined;
  if (!driver || attr(driver, 'name') !== 'qemu' || (format !== 'qcow2' && format !== 'raw')) {
    invalid(`libvirt XML: disk needs <driver name='qemu' type='qcow2'/> (or type='raw')`);
  }
  const file = only(n, 'source') && attr(only(n, 'source')!, 'file');
  if (!file || !file.startsWith('/')) invalid(`libvirt XML: disk needs <source file='/absolute/path'/>, got ${JSON.stringify(file ?? '')}`);
  const target = only(n, 'target');
  const dev = target && attr(target, 'dev');
  if (!dev || !/^vd[a-z]{1,2}$/.test(dev) || attr(target, 'bus') !== 'virtio') {
    invalid(`libvirt XML: disk ${file} needs <target dev='vdX' bus='virtio'/>`);
  }
  return { path: file, format, target: dev };
}

function parseInterface(n: XNode): LibvirtInterface {
  requireOnlyChildren(n, "<interface type='bridge'>", ['source', 'mac', 'model']);
  const src = only(n, 'source');
  const bridge = src && attr(src, 'bridge');
  if (!bridge || !/^[A-Za-z0-9_.-]{1,15}$/.test(bridge)) invalid(`libvirt XML: bridge interface needs <source bridge='NAME'/>`);
  const model = only(n, 'model');
  if (model && attr(model, 'type') !== 'virtio') invalid(`libvirt XML: unsupported interface ${describe('model', model)} (supported: <model type='virtio'/>)`);
  const out: LibvirtInterface = { bridge };
  const mac = only(n, 'mac');
  if (mac) {
    const a = attr(mac, 'address');
    if (!a || !MAC.test(a)) invalid(`libvirt XML: invalid <mac address='${a ?? ''}'/>`);
    out.mac = a.toLowerCase();
  }
  return out;
}
