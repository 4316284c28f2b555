/**
 * Container networking on one host: bridge networks, one network namespace
 * per container with a veth into each of its networks, IP leases persisted in
 * the database, egress NAT and published ports in the daemon's own nftables
 * table, and name resolution by the embedded DNS server.
 *
 * Vocabulary: a *network* is a bridge plus a subnet; an *endpoint* is one
 * container's attachment to one network (its IP lease, MAC, aliases and the
 * host side of its veth). Endpoints exist only while the container runs.
 *
 * Invariant: after `reconcile()` every veth, namespace and nft rule on the host
 * that carries this daemon's prefix belongs to a running container; anything
 * else (e.g. left by a `kill -9` mid-start) is removed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { ConflictError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../core/errors.js';
import { log } from '../core/log.js';
import type { Db } from '../store/db.js';
import { DnsServer, upstreamsFromResolvConf } from './dns/server.js';
import { allocate, defaultGateway, hostRoutesFromIpRoute, isUsableHost, overlaps, parseCidr, pickFreeSubnet } from './ipam.js';
import { applyRuleset, deleteTable, type NftPortMapping } from './nft.js';
import {
  addVethToNetns,
  createNetns,
  deleteLink,
  deleteNetns,
  enableForwarding,
  ensureBridge,
  listLinks,
  listNetns,
  removeVeth,
  createTap,
} from './netlink.js';
import { NetworkStore, type Endpoint, type NetworkRecord } from './network-store.js';
import type { PublishedPort } from './ports.js';
import { run } from '../core/exec.js';

export interface NetworkManagerOptions {
  db: Db;
  /** Short per-daemon tag used in every host object's name (netns, veth, bridge, nft table). */
  tag: string;
  defaultBridge: string;
  defaultSubnet: string;
}

export interface CreateNetworkRequest {
  name: string;
  subnet?: string;
  gateway?: string;
  internal?: boolean;
  labels?: Record<string, string>;
}

/** What a container asks for, from its HostConfig.NetworkMode and NetworkingConfig. */
export type NetworkMode =
  | { kind: 'none' }
  | { kind: 'host' }
  | { kind: 'container'; ref: string }
  | { kind: 'networks'; attach: Array<{ network: string; aliases: string[]; ip: string | null }> };

export interface ContainerNetworkInfo {
  id: string;
  name: string;
  hostname: string;
  mode: NetworkMode;
  ports: PublishedPort[];
}

export interface SetupResult {
  /** Path of the namespace to join, or null for a private loopback-only one, or 'host'. */
  netns: string | null | 'host';
  /** Nameservers for /etc/resolv.conf (null: use the host's). */
  nameservers: string[] | null;
  endpoints: Endpoint[];
}

const POOL = '10.89.0.0/16';

export class NetworkManager {
  readonly store: NetworkStore;
  readonly dns: DnsServer;
  #running = new Map<string, ContainerNetworkInfo>();
  /** VMs hold their leases from create to rm (the guest keeps its address across snapshots). */
  #vmOwners = new Set<string>();
  #dnsListening = new Set<string>();
  #applying: Promise<void> = Promise.resolve();
  /** The uplink's MTU: a veth larger than the path out would break egress (1400 on these hosts). */
  #mtu = 1500;

  constructor(private readonly options: NetworkManagerOptions) {
    this.store = new NetworkStore(options.db);
    const resolv = (() => {
      try {
        return readFileSync('/etc/resolv.conf', 'utf8');
      } catch {
        return '';
      }
    })();
    this.dns = new DnsServer({ upstreams: upstreamsFromResolvConf(resolv) });
  }

  get table(): string {
    return `vessel_${this.options.tag}`;
  }

  netnsName(containerId: string): string {
    return `vessel-${this.options.tag}-${containerId.slice(0, 12)}`;
  }

  /** Creates the default network if needed and brings every bridge up. */
  async init(): Promise<void> {
    const existing = this.store.list().find((n) => n.builtin);
    if (!existing) {
      const subnet = parseCidr(this.options.defaultSubnet);
      this.#checkNoOverlap(subnet.cidr, null, await this.#hostSubnets());
      this.store.insert({
        id: randomBytes(32).toString('hex'),
        name: 'bridge',
        bridge: this.options.defaultBridge,
        subnet: subnet.cidr,
        gateway: defaultGateway(subnet),
        internal: false,
        builtin: true,
        labels: {},
        created: new Date().toISOString(),
      });
    }
    await enableForwarding();
    this.#mtu = await uplinkMtu();
    for (const n of this.store.list()) await this.#bringUp(n);
  }

  async #bringUp(n: NetworkRecord): Promise<void> {
    const prefix = parseCidr(n.subnet).prefix;
    await ensureBridge(n.bridge, `${n.gateway}/${prefix}`);
    if (!n.builtin && !this.#dnsListening.has(n.gateway)) {
      await this.dns.listen({ ip: n.gateway, port: 53, scope: n.id });
      this.#dnsListening.add(n.gateway);
    }
  }

  async #hostSubnets() {
    const r = await run('ip', ['-j', 'route', 'show', 'table', 'all'], { reject: false });
    // Routes of our own bridges are not "the host's", nor is the route of the default
    // bridge this daemon is configured to use (left by an earlier run, it is adopted).
    const ours = new Set([...this.store.list().map((n) => n.bridge), this.options.defaultBridge]);
    const parsed = JSON.parse(r.stdout || '[]') as Array<{ dev?: string }>;
    return hostRoutesFromIpRoute(JSON.stringify(parsed.filter((x) => !x.dev || !ours.has(x.dev))));
  }

  #checkNoOverlap(cidr: string, self: string | null, host: ReturnType<typeof parseCidr>[]): void {
    const s = parseCidr(cidr);
    for (const n of this.store.list()) {
      if (n.id !== self && overlaps(parseCidr(n.subnet), s)) {
        throw new ConflictError(`Pool overlaps with other one on this address space: ${cidr} overlaps network ${n.name} (${n.subnet})`);
      }
    }
    for (const h of host) {
      if (overlaps(h, s)) {
        throw new ConflictError(`Subnet ${cidr} overlaps a route of the host (${h.cidr}): choose another with --subnet`);
      }
    }
  }

  async create(req: CreateNetworkRequest): Promise<NetworkRecord> {
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(req.name)) throw new InvalidArgumentError(`Invalid network name: ${req.name}`);
    if (['none', 'host', 'default', 'bridge'].includes(req.name)) {
      throw new ConflictError(`Network name ${req.name} is reserved`);
    }
    if (this.store.list().some((n) => n.name === req.name)) throw new ConflictError(`Network with name ${req.name} already exists`);
    const host = await this.#hostSubnets();
    let subnet;
    if (req.subnet) {
      subnet = parseCidr(req.subnet);
      this.#checkNoOverlap(subnet.cidr, null, host);
    } else {
      subnet = pickFreeSubnet(POOL, 24, [...this.store.list().map((n) => parseCidr(n.subnet)), ...host]);
    }
    if (subnet.prefix > 30) throw new InvalidArgumentError(`Subnet ${subnet.cidr} is too small`);
    const gateway = req.gateway ?? defaultGateway(subnet);
    if (!isUsableHost(subnet, gateway)) throw new InvalidArgumentError(`Gateway ${gateway} is not a host address of ${subnet.cidr}`);
    const id = randomBytes(32).toString('hex');
    const n: NetworkRecord = {
      id,
      name: req.name,
      bridge: `vb${this.options.tag.slice(0, 4)}${id.slice(0, 8)}`,
      subnet: subnet.cidr,
      gateway,
      internal: !!req.internal,
      builtin: false,
      labels: req.labels ?? {},
      created: new Date().toISOString(),
    };
    this.store.insert(n);
    try {
      await this.#bringUp(n);
      await this.#applyRules();
    } catch (e) {
      await this.#tearDownNetwork(n).catch(() => {});
      this.store.delete(n.id);
      throw e;
    }
    return n;
  }

  async remove(ref: string): Promise<void> {
    const n = this.store.resolve(ref);
    if (n.builtin) throw new FailedPreconditionError(`${n.name} is a pre-defined network and cannot be removed`);
    const eps = this.store.endpoints({ networkId: n.id });
    if (eps.length) {
      throw new ConflictError(`Error response from daemon: network ${n.name} has active endpoints (${eps.map((e) => e.containerId.slice(0, 12)).join(', ')})`.replace(/^Error response from daemon: /, ''));
    }
    await this.#tearDownNetwork(n);
    this.store.delete(n.id);
    await this.#applyRules();
  }

  async #tearDownNetwork(n: NetworkRecord): Promise<void> {
    if (this.#dnsListening.has(n.gateway)) {
      await this.dns.unlisten(n.gateway, 53).catch(() => {});
      this.#dnsListening.delete(n.gateway);
    }
    this.dns.deleteScope(n.id);
    await deleteLink(n.bridge);
  }

  list(): NetworkRecord[] {
    return this.store.list();
  }

  get(ref: string): NetworkRecord {
    return this.store.resolve(ref);
  }

  containersOf(networkId: string): Endpoint[] {
    return this.store.endpoints({ networkId });
  }

  publishedPorts(): PublishedPort[] {
    return [...this.#running.values()].flatMap((c) => c.ports);
  }

  /** Networks a mode names must exist before the container is created. */
  validateMode(mode: NetworkMode): void {
    if (mode.kind === 'networks') for (const a of mode.attach) this.store.resolve(a.network);
  }

  /**
   * Gives a starting container its network: a namespace with a veth into each
   * of its networks, addresses from the leases, DNS records and port rules.
   * On failure everything made so far is undone.
   */
  async setup(info: ContainerNetworkInfo): Promise<SetupResult> {
    const mode = info.mode;
    if (mode.kind === 'none') return { netns: null, nameservers: null, endpoints: [] };
    if (mode.kind === 'host') return { netns: 'host', nameservers: null, endpoints: [] };
    if (mode.kind === 'container') throw new InvalidArgumentError('container: network mode is resolved by the container manager');
    const nsName = this.netnsName(info.id);
    await this.teardown(info.id).catch(() => {});
    const made: Endpoint[] = [];
    let nsPath: string | null = null;
    try {
      nsPath = await createNetns(nsName);
      let index = 0;
      for (const a of mode.attach) {
        const n = this.store.resolve(a.network);
        made.push(await this.#attach(info, n, nsName, `eth${index++}`, a.aliases, a.ip));
      }
      this.#running.set(info.id, info);
      this.#refreshDns();
      // The ruleset depends on networks and published ports only.
      if (info.ports.length) await this.#applyRules();
    } catch (e) {
      this.#running.delete(info.id);
      for (const ep of made) this.store.removeEndpoint(ep.networkId, ep.containerId);
      for (const ep of made) await removeVeth(ep.hostIf).catch(() => {});
      await deleteNetns(nsName).catch(() => {});
      this.#refreshDns();
      throw e;
    }
    const first = this.store.resolve(mode.attach[0]!.network);
    return {
      netns: nsPath,
      // User-defined networks resolve names through the embedded server; the default bridge uses the host's resolvers (Docker semantics).
      nameservers: first.builtin ? null : [first.gateway],
      endpoints: made,
    };
  }

  async #attach(info: ContainerNetworkInfo, n: NetworkRecord, nsName: string, ifName: string, aliases: string[], ip: string | null): Promise<Endpoint> {
    const subnet = parseCidr(n.subnet);
    const used = this.store.endpoints({ networkId: n.id }).map((e) => e.ip);
    const addr = allocate(subnet, used, { gateway: n.gateway, ...(ip ? { requested: ip } : {}) });
    const octets = addr.split('.').map(Number);
    const mac = `02:42:${octets.map((o) => o.toString(16).padStart(2, '0')).join(':')}`;
    const hostIf = `vh${createHash('sha256').update(`${info.id}/${n.id}`).digest('hex').slice(0, 11)}`;
    const ep: Endpoint = { networkId: n.id, containerId: info.id, ip: addr, mac, aliases, hostIf };
    this.store.addEndpoint(ep);
    try {
      await addVethToNetns({
        hostIf,
        peerIf: `vp${hostIf.slice(2)}`,
        netns: nsName,
        bridge: n.bridge,
        ifName,
        address: `${addr}/${subnet.prefix}`,
        gateway: ifName === 'eth0' ? n.gateway : null,
        mac,
        mtu: this.#mtu,
      });
    } catch (e) {
      this.store.removeEndpoint(n.id, info.id);
      throw e;
    }
    return ep;
  }

  /** Releases everything a container's networking holds; idempotent. */
  async teardown(containerId: string): Promise<void> {
    const eps = this.store.endpoints({ containerId });
    for (const ep of eps) await removeVeth(ep.hostIf).catch(() => {});
    // Most exits (and every --network none container) have no namespace of ours: skip the `ip` call.
    if (existsSync(`/run/netns/${this.netnsName(containerId)}`)) await deleteNetns(this.netnsName(containerId));
    for (const ep of eps) this.store.removeEndpoint(ep.networkId, containerId);
    const had = this.#running.get(containerId);
    this.#running.delete(containerId);
    if (had || eps.length) this.#refreshDns();
    if (had?.ports.length) await this.#applyRules();
  }

  /** Adds a running container to one more network (`network connect`). */
  async connect(info: ContainerNetworkInfo, networkRef: string, aliases: string[], ip: string | null): Promise<Endpoint> {
    const n = this.store.resolve(networkRef);
    if (this.store.endpoints({ networkId: n.id, containerId: info.id }).length) {
      throw new ConflictError(`Endpoint with name ${info.name} already exists in network ${n.name}`);
    }
    const index = this.store.endpoints({ containerId: info.id }).length;
    const ep = await this.#attach(info, n, this.netnsName(info.id), `eth${index}`, aliases, ip);
    this.#refreshDns();
    return ep;
  }

  async disconnect(containerId: string, networkRef: string): Promise<void> {
    const n = this.store.resolve(networkRef);
    const [ep] = this.store.endpoints({ networkId: n.id, containerId });
    if (!ep) throw new NotFoundError(`Container ${containerId.slice(0, 12)} is not connected to network ${n.name}`);
    await removeVeth(ep.hostIf).catch(() => {});
    this.store.removeEndpoint(n.id, containerId);
    this.#refreshDns();
  }

  /** Re-adopts running containers after a daemon restart and removes everything else. */
  async reconcile(running: ContainerNetworkInfo[]): Promise<void> {
    const alive = new Set(running.map((r) => r.id));
    for (const r of running) this.#running.set(r.id, r);
    for (const ep of this.store.endpoints()) {
      if (!alive.has(ep.containerId) && !this.#vmOwners.has(ep.containerId)) {
        await removeVeth(ep.hostIf).catch(() => {});
        this.store.removeEndpoint(ep.networkId, ep.containerId);
      }
    }
    const keepNs = new Set(running.map((r) => this.netnsName(r.id)));
    for (const ns of await listNetns(`vessel-${this.options.tag}-`)) {
      if (!keepNs.has(ns)) await deleteNetns(ns).catch(() => {});
    }
    const keepIf = new Set(this.store.endpoints().map((e) => e.hostIf));
    for (const link of await listLinks('vh')) {
      // Only veths this daemon could have made: named from a container id this daemon knows, or orphaned on our bridges.
      if (!keepIf.has(link) && (await this.#isOnOurBridge(link))) await deleteLink(link).catch(() => {});
    }
    for (const link of await listLinks('vm')) {
      const plugged = [...this.#running.keys()].some((id) => this.#vmOwners.has(id) && this.store.endpoints({ containerId: id }).some((e) => e.hostIf === link));
      if (!plugged && (keepIf.has(link) || (await this.#isOnOurBridge(link)))) await deleteLink(link).catch(() => {});
    }
    this.#refreshDns();
    await this.#applyRules();
  }

  /** Declares the VMs that exist (call before `reconcile`): their leases are kept. */
  adoptVms(vmIds: string[]): void {
    for (const id of vmIds) this.#vmOwners.add(id);
  }

  /** Gives a VM a lease on a network for its lifetime (idempotent per network). */
  leaseVm(vmId: string, networkRef: string, o: { ip?: string | null; mac: string; aliases?: string[] }): Endpoint {
    const n = this.store.resolve(networkRef);
    const [existing] = this.store.endpoints({ networkId: n.id, containerId: vmId });
    if (existing) return existing;
    const used = this.store.endpoints({ networkId: n.id }).map((e) => e.ip);
    const addr = allocate(parseCidr(n.subnet), used, { gateway: n.gateway, ...(o.ip ? { requested: o.ip } : {}) });
    const hostIf = `vm${createHash('sha256').update(`${vmId}/${n.id}`).digest('hex').slice(0, 11)}`;
    const ep: Endpoint = { networkId: n.id, containerId: vmId, ip: addr, mac: o.mac, aliases: o.aliases ?? [], hostIf };
    this.store.addEndpoint(ep);
    this.#vmOwners.add(vmId);
    return ep;
  }

  /** A VM's leases with the network each is on. */
  vmEndpoints(vmId: string): Array<{ endpoint: Endpoint; network: NetworkRecord }> {
    const nets = this.store.list();
    return this.store.endpoints({ containerId: vmId }).flatMap((endpoint) => {
      const network = nets.find((n) => n.id === endpoint.networkId);
      return network ? [{ endpoint, network }] : [];
    });
  }

  /** Creates the taps of a starting VM and serves its names in DNS; undone on failure. */
  async plugVm(vm: { id: string; name: string; hostname: string }, o: { user?: string } = {}): Promise<Array<{ endpoint: Endpoint; network: NetworkRecord; prefix: number }>> {
    const out = [];
    try {
      for (const { endpoint, network } of this.vmEndpoints(vm.id)) {
        await createTap({ name: endpoint.hostIf, bridge: network.bridge, mtu: this.#mtu, ...(o.user ? { user: o.user } : {}) });
        out.push({ endpoint, network, prefix: parseCidr(network.subnet).prefix });
      }
    } catch (e) {
      for (const x of out) await deleteLink(x.endpoint.hostIf).catch(() => {});
      throw e;
    }
    this.#running.set(vm.id, { id: vm.id, name: vm.name, hostname: vm.hostname, mode: { kind: 'none' }, ports: [] });
    this.#refreshDns();
    return out;
  }

  /** Marks a VM found running after a daemon restart (its taps already exist). */
  adoptRunningVm(vm: { id: string; name: string; hostname: string }): void {
    this.#running.set(vm.id, { id: vm.id, name: vm.name, hostname: vm.hostname, mode: { kind: 'none' }, ports: [] });
  }

  /** Removes a stopped VM's taps and DNS names; its leases stay. */
  async unplugVm(vmId: string): Promise<void> {
    for (const ep of this.store.endpoints({ containerId: vmId })) await deleteLink(ep.hostIf).catch(() => {});
    if (this.#running.delete(vmId)) this.#refreshDns();
  }

  /** `vm rm`: taps and leases go. */
  async releaseVm(vmId: string): Promise<void> {
    await this.unplugVm(vmId);
    for (const ep of this.store.endpoints({ containerId: vmId })) this.store.removeEndpoint(ep.networkId, vmId);
    this.#vmOwners.delete(vmId);
  }

  /** The MTU VM NICs should use (the uplink's). */
  get mtu(): number {
    return this.#mtu;
  }

  async #isOnOurBridge(link: string): Promise<boolean> {
    const r = await run('ip', ['-j', 'link', 'show', 'dev', link], { reject: false });
    try {
      const [info] = JSON.parse(r.stdout) as Array<{ master?: string }>;
      return !!info?.master && this.store.list().some((n) => n.bridge === info.master);
    } catch {
      return false;
    }
  }

  #refreshDns(): void {
    const byNet = new Map<string, Map<string, string[]>>();
    for (const n of this.store.list()) byNet.set(n.id, new Map());
    for (const ep of this.store.endpoints()) {
      const info = this.#running.get(ep.containerId);
      const records = byNet.get(ep.networkId);
      if (!records) continue;
      // The container name comes first: reverse lookups answer with the first name of an address.
      const names = new Set<string>();
      if (info) {
        names.add(info.name);
        if (info.hostname) names.add(info.hostname);
      }
      for (const a of ep.aliases) names.add(a);
      names.add(ep.containerId.slice(0, 12));
      for (const name of names) records.set(name.toLowerCase(), [...(records.get(name.toLowerCase()) ?? []), ep.ip]);
    }
    for (const [id, records] of byNet) this.dns.setRecords(id, records);
  }

  #applyRules(): Promise<void> {
    const next = this.#applying.catch(() => {}).then(async () => {
      const nets = this.store.list();
      const ports: NftPortMapping[] = [];
      for (const info of this.#running.values()) {
        const [ep] = this.store.endpoints({ containerId: info.id });
        if (!ep) continue;
        const n = nets.find((x) => x.id === ep.networkId);
        if (!n) continue;
        for (const p of info.ports) {
          ports.push({ proto: p.proto, hostIp: p.hostIp, hostPort: p.hostPort, containerIp: ep.ip, containerPort: p.containerPort, bridge: n.bridge });
        }
      }
      await applyRuleset({
        table: this.table,
        networks: nets.map((n) => ({ bridge: n.bridge, subnet: n.subnet, internal: n.internal })),
        ports,
      });
    });
    this.#applying = next;
    return next;
  }

  /** Daemon shutdown: stop serving DNS; bridges, rules and running containers' networking stay. */
  async close(): Promise<void> {
    await this.dns.close().catch(() => {});
  }

  /** Removes every host object of this daemon's networking (tests, uninstall). */
  async destroyAll(): Promise<void> {
    for (const n of this.store.list()) await deleteLink(n.bridge).catch(() => {});
    await deleteTable(this.table).catch(() => {});
    log.info('network state removed', { table: this.table });
  }
}

async function uplinkMtu(): Promise<number> {
  const r = await run('ip', ['-j', 'route', 'show', 'default'], { reject: false });
  try {
    const [route] = JSON.parse(r.stdout || '[]') as Array<{ dev?: string }>;
    if (!route?.dev) return 1500;
    const mtu = Number(readFileSync(`/sys/class/net/${route.dev}/mtu`, 'utf8').trim());
    return mtu >= 576 && mtu <= 65535 ? mtu : 1500;
  } catch {
    return 1500;
  }
}
