// SPDX-License-Identifier: Apache-2.0
/**
 * An in-memory {@link KernelApi} for unit tests of the layers above the kernel.
 *
 * It models namespaces (by path), links (veth pairs across namespaces, vxlan, bridge, tun),
 * addresses (with their prefix routes), routes, neighbours and sysctl writes, and fails the way
 * the kernel does: the same input checks, `AlreadyExists` for a taken name, `NotFound` for a
 * missing link or netns (ENODEV / ENOENT), `ENETDOWN` for a route over a link that is down,
 * `ENETUNREACH` for a gateway off the link, the kernel's errno in the message. What it does not
 * model: traffic, link carrier, IPv6 DAD, netns ids, and finer kernel rules (e.g. an IPv4
 * onlink gateway needs the netns to have some IPv4 address).
 *
 * ```ts
 * const kernel = createFakeKernel();
 * kernel.addNetns("/var/run/netns/pod1");
 * await kernel.createVeth(undefined, { name: "a", peer: { name: "b", netns: "/var/run/netns/pod1" } });
 * ```
 */
import { constants } from "node:os";
import { invalidArgument } from "../sdk/core/errors.js";
import {
  type AddressFilter,
  type AddressInfo,
  type AddressOptions,
  type BridgeSpec,
  IFF,
  type KernelApi,
  type LinkChanges,
  type LinkInfo,
  type LinkRef,
  type LinkStats,
  MAIN_TABLE,
  type NeighborFilter,
  type NeighborInfo,
  type NeighborSpec,
  type NetnsId,
  type NetnsPath,
  NUD,
  type RouteFilter,
  type RouteInfo,
  type RouteSpec,
  type RuleInfo,
  type RuleSpec,
  Scope,
  type TunSpec,
  type VethSpec,
  type VxlanInfo,
  type VxlanSpec,
} from "./api.js";
import { formatIp, formatMac, type IpBytes, maskBytes, parseCidr, parseIp, parseMac } from "./codec.js";
import { nsmErrorFromErrno } from "./errors.js";
import {
  checkLinkChanges,
  checkName,
  checkRef,
  checkRule,
  checkU32,
  refLabel,
  ruleLabel,
  sysctlPath,
} from "./validate.js";

const E = constants.errno;
const ZERO_STATS: LinkStats = {
  rxPackets: 0,
  txPackets: 0,
  rxBytes: 0,
  txBytes: 0,
  rxErrors: 0,
  txErrors: 0,
  rxDropped: 0,
  txDropped: 0,
};

interface FakeLink {
  ns: FakeNetns;
  index: number;
  name: string;
  kind: string | undefined;
  alias: string | undefined;
  mtu: number;
  up: boolean;
  baseFlags: number;
  mac: string | undefined;
  peer?: FakeLink;
  master?: number;
  vxlan?: VxlanInfo;
  /** For a vxlan: the netns of its UDP socket (where it was created from), see `createVxlan`. */
  vxlanNet?: FakeNetns;
}

interface FakeNetns {
  path: string;
  id: NetnsId;
  links: Map<number, FakeLink>;
  nextIndex: number;
  addresses: AddressInfo[];
  routes: RouteInfo[];
  neighbors: NeighborInfo[];
  rules: RuleInfo[];
  sysctls: Map<string, string>;
}

/** The fake, with helpers to set up and inspect namespaces. */
export interface FakeKernel extends KernelApi {
  /** Creates an empty netns (only `lo`) at `path`, like `ip netns add`. */
  addNetns(path: string): void;
  /** Removes a netns with its links; veth peers elsewhere go too, like `ip netns del`. */
  deleteNetns(path: string): void;
  /** The last value written to a sysctl key in a netns, if any. */
  readSysctl(netns: NetnsPath, key: string): string | undefined;
}

let inodes = 0x10000000n;
let macCounter = 1;

function randomMac(): string {
  const n = macCounter++;
  return formatMac(Buffer.from([0x02, 0xfa, 0xce, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]));
}

const nsLabel = (ns: NetnsPath): string => (ns ? `netns ${ns}` : "own netns");

const neighborStates = { permanent: NUD.PERMANENT, reachable: NUD.REACHABLE, stale: NUD.STALE, noarp: NUD.NOARP };

function inPrefix(ip: Buffer, cidr: string): boolean {
  const net = parseCidr(cidr);
  return (
    net.bytes.length === ip.length && maskBytes(ip, net.prefixLength).equals(maskBytes(net.bytes, net.prefixLength))
  );
}

/** The rules of a new netns: local, main (and default for IPv4), as `ip rule` lists them. */
function defaultRules(): RuleInfo[] {
  const rule = (family: 4 | 6, priority: number, table: number): RuleInfo => ({ family, priority, table, action: 1 });
  return [rule(4, 0, 255), rule(4, 32766, 254), rule(4, 32767, 253), rule(6, 0, 255), rule(6, 32766, 254)];
}

const sameRange = (a: RuleSpec["sport"], b: RuleSpec["sport"]) => a?.start === b?.start && a?.end === b?.end;

/** The selectors and table of `b` equal those of `a` (and its priority, when `b` gives one). */
function ruleMatches(a: RuleInfo, b: RuleSpec & { src?: string }): boolean {
  return (
    a.family === b.family &&
    a.src === b.src &&
    a.ipProto === b.ipProto &&
    sameRange(a.sport, b.sport) &&
    sameRange(a.dport, b.dport) &&
    a.table === b.table &&
    (b.priority === undefined || a.priority === b.priority)
  );
}

/** The rule as the kernel lists it: masked source, a priority just before the first non-local rule. */
function ruleInfoOf(rule: RuleSpec, existing: readonly RuleInfo[]): RuleInfo {
  const info: RuleInfo = { family: rule.family, table: rule.table, priority: 0, action: 1 };
  if (rule.src !== undefined) {
    const src = parseCidr(rule.src);
    if (src.family !== rule.family)
      throw invalidArgument(`add ${ruleLabel(rule)}: from is not of family ${rule.family}`);
    if (src.prefixLength > 0) info.src = `${formatIp(maskBytes(src.bytes, src.prefixLength))}/${src.prefixLength}`;
  }
  if (rule.ipProto !== undefined) info.ipProto = rule.ipProto;
  if (rule.sport) info.sport = { ...rule.sport };
  if (rule.dport) info.dport = { ...rule.dport };
  const prefs = existing.filter((r) => r.family === rule.family && r.priority > 0).map((r) => r.priority);
  info.priority = rule.priority ?? Math.max(0, Math.min(...prefs, 0x7fffffff) - 1);
  return info;
}

interface ParsedRoute {
  dst: ReturnType<typeof parseCidr>;
  gateway?: IpBytes;
  src?: IpBytes;
}

/** Parses the addresses of a route and checks its fields, as the kernel does before looking at links. */
function parseRouteSpec(route: RouteSpec, what: string): ParsedRoute {
  const dst = parseCidr(route.dst);
  const gateway = route.gateway ? parseIp(route.gateway) : undefined;
  const src = route.src ? parseIp(route.src) : undefined;
  if (gateway && gateway.family !== dst.family)
    throw invalidArgument(`${what}: gateway is not of the family of ${route.dst}`);
  if (src && src.family !== dst.family) throw invalidArgument(`${what}: src is not of the family of ${route.dst}`);
  checkU32(route.table, "table", what, 1);
  checkU32(route.metric, "metric", what);
  if (route.scope !== undefined && !(route.scope in Scope))
    throw invalidArgument(`${what}: invalid scope ${route.scope}`);
  return { dst, gateway, src };
}

/** The route as the kernel would list it after adding it (static protocol, default scope and metric). */
function routeInfoOf(route: RouteSpec, { dst, gateway, src }: ParsedRoute, link: FakeLink | undefined): RouteInfo {
  const info: RouteInfo = {
    family: dst.family,
    dst: `${formatIp(maskBytes(dst.bytes, dst.prefixLength))}/${dst.prefixLength}`,
    table: route.table ?? MAIN_TABLE,
    scope: route.scope ? Scope[route.scope] : gateway || dst.family === 6 ? Scope.universe : Scope.link,
    protocol: 3,
    type: 1,
    onlink: route.onlink ?? false,
  };
  if (gateway) info.gateway = formatIp(gateway.bytes);
  if (link) info.linkIndex = link.index;
  if (route.metric !== undefined || dst.family === 6) info.metric = route.metric ?? 1024;
  if (src) info.src = formatIp(src.bytes);
  return info;
}

/** Applies the checked attribute changes (all but name and namespace) to a link. */
function applyLinkAttributes(
  link: FakeLink,
  changes: LinkChanges,
  mac: string | undefined,
  master: FakeLink | null | undefined,
): void {
  if (changes.alias !== undefined) link.alias = changes.alias === "" ? undefined : changes.alias;
  if (changes.mtu !== undefined) link.mtu = changes.mtu;
  if (changes.up !== undefined) link.up = changes.up;
  if (mac !== undefined) link.mac = mac;
  if (master !== undefined) link.master = master === null ? undefined : master.index;
}

class Fake implements FakeKernel {
  private readonly namespaces = new Map<string, FakeNetns>();

  constructor() {
    this.addNetns("");
  }

  addNetns(path: string): void {
    if (this.namespaces.has(path)) throw nsmErrorFromErrno(E.EEXIST, `add ${nsLabel(path)}`);
    const ns: FakeNetns = {
      path,
      id: { dev: 4n, ino: inodes++ },
      links: new Map(),
      nextIndex: 1,
      addresses: [],
      routes: [],
      neighbors: [],
      rules: defaultRules(),
      sysctls: new Map(),
    };
    this.namespaces.set(path, ns);
    this.addLink(ns, { name: "lo", kind: undefined, mtu: 65536, baseFlags: IFF.LOOPBACK, mac: "00:00:00:00:00:00" });
  }

  deleteNetns(path: string): void {
    const ns = this.netns(path, `delete ${nsLabel(path)}`);
    for (const link of [...ns.links.values()]) this.removeLink(link);
    this.namespaces.delete(path);
    // vxlan devices elsewhere whose UDP socket lived in this netns go with it, as in the kernel.
    for (const other of this.namespaces.values()) {
      for (const l of [...other.links.values()]) if (l.vxlanNet === ns) this.removeLink(l);
    }
  }

  readSysctl(netns: NetnsPath, key: string): string | undefined {
    return this.netns(netns, "read sysctl").sysctls.get(sysctlPath(key));
  }

  // ------------------------------------------------------------ internals

  private netns(path: NetnsPath, what: string): FakeNetns {
    const ns = this.namespaces.get(path ?? "");
    if (!ns) throw nsmErrorFromErrno(E.ENOENT, `${what}: ${nsLabel(path)}`);
    return ns;
  }

  private find(ns: FakeNetns, ref: LinkRef): FakeLink | undefined {
    if (typeof ref === "number") return ns.links.get(ref);
    for (const l of ns.links.values()) if (l.name === ref) return l;
    return undefined;
  }

  private link(ns: FakeNetns, ref: LinkRef, what: string): FakeLink {
    checkRef(ref, what);
    const l = this.find(ns, ref);
    if (!l) throw nsmErrorFromErrno(E.ENODEV, `${what}: link ${refLabel(ref)}`);
    return l;
  }

  private addLink(ns: FakeNetns, l: Omit<FakeLink, "ns" | "index" | "alias" | "up">): FakeLink {
    const link: FakeLink = { ...l, ns, index: ns.nextIndex++, alias: undefined, up: false };
    ns.links.set(link.index, link);
    return link;
  }

  private nameFree(ns: FakeNetns, name: string, what: string): void {
    if (this.find(ns, name)) throw nsmErrorFromErrno(E.EEXIST, what);
  }

  /** Drops a link's addresses, routes and neighbours (as the kernel does on delete and on a netns move). */
  private forget(link: FakeLink): void {
    const ns = link.ns;
    ns.addresses = ns.addresses.filter((a) => a.linkIndex !== link.index);
    ns.routes = ns.routes.filter((r) => r.linkIndex !== link.index);
    ns.neighbors = ns.neighbors.filter((n) => n.linkIndex !== link.index);
    ns.links.delete(link.index);
  }

  private removeLink(link: FakeLink): void {
    this.forget(link);
    if (link.peer) {
      this.forget(link.peer);
      link.peer.peer = undefined;
    }
  }

  private readonly counters = new WeakMap<FakeLink, LinkStats>();

  private info(l: FakeLink): LinkInfo {
    const info: LinkInfo = {
      index: l.index,
      name: l.name,
      kind: l.kind,
      alias: l.alias,
      mtu: l.mtu,
      flags: l.baseFlags | (l.up ? IFF.UP : 0),
      up: l.up,
      mac: l.mac,
    };
    if (l.peer) info.linkIndex = l.peer.index;
    if (l.master !== undefined) info.masterIndex = l.master;
    if (l.vxlan) info.vxlan = { ...l.vxlan };
    return info;
  }

  // ------------------------------------------------------------ links

  async createVeth(netns: NetnsPath, spec: VethSpec): Promise<void> {
    const what = `create veth "${spec.name}" (peer "${spec.peer.name}") in ${nsLabel(netns)}`;
    checkName(spec.name, what);
    checkName(spec.peer.name, what);
    checkU32(spec.mtu, "mtu", what, 1);
    checkU32(spec.peer.mtu, "mtu", what, 1);
    const ns = this.netns(netns, what);
    const peerNs = spec.peer.netns === undefined ? ns : this.netns(spec.peer.netns, what);
    this.nameFree(ns, spec.name, what);
    this.nameFree(peerNs, spec.peer.name, what);
    if (ns === peerNs && spec.name === spec.peer.name) throw nsmErrorFromErrno(E.EEXIST, what);
    const flags = IFF.BROADCAST | IFF.MULTICAST;
    const a = this.addLink(ns, {
      name: spec.name,
      kind: "veth",
      mtu: spec.mtu ?? 1500,
      baseFlags: flags,
      mac: spec.mac ? formatMac(parseMac(spec.mac)) : randomMac(),
    });
    const b = this.addLink(peerNs, {
      name: spec.peer.name,
      kind: "veth",
      mtu: spec.peer.mtu ?? spec.mtu ?? 1500,
      baseFlags: flags,
      mac: spec.peer.mac ? formatMac(parseMac(spec.peer.mac)) : randomMac(),
    });
    a.peer = b;
    b.peer = a;
  }

  async createVxlan(netns: NetnsPath, spec: VxlanSpec): Promise<void> {
    const what = `create vxlan "${spec.name}" (vni ${spec.vni}) in ${nsLabel(netns)}`;
    checkName(spec.name, what);
    checkU32(spec.vni, "vni", what, 0, 0xffffff);
    checkU32(spec.port, "port", what, 1, 0xffff);
    checkU32(spec.mtu, "mtu", what, 1);
    const remote = spec.remote ? parseIp(spec.remote) : undefined;
    const local = spec.local ? parseIp(spec.local) : undefined;
    if (remote && local && remote.family !== local.family) {
      throw invalidArgument(`${what}: local ${spec.local} and remote ${spec.remote} differ in family`);
    }
    const ns = this.netns(netns, what);
    const target = spec.netns === undefined ? ns : this.netns(spec.netns, what);
    const underlay = spec.underlay === undefined ? undefined : this.link(ns, spec.underlay, what);
    this.nameFree(target, spec.name, what);
    const port = spec.port ?? 4789;
    this.checkVniFree(ns, spec.vni, port, (local ?? remote)?.family === 6, what);
    const vxlan: VxlanInfo = { vni: spec.vni, port, learning: spec.learning ?? false };
    if (remote) vxlan.remote = formatIp(remote.bytes);
    if (local) vxlan.local = formatIp(local.bytes);
    if (underlay) vxlan.underlayIndex = underlay.index;
    if (spec.ttl !== undefined) vxlan.ttl = spec.ttl;
    this.addLink(target, {
      name: spec.name,
      kind: "vxlan",
      mtu: spec.mtu ?? 1450,
      baseFlags: IFF.BROADCAST | IFF.MULTICAST,
      mac: spec.mac ? formatMac(parseMac(spec.mac)) : randomMac(),
      vxlan,
      vxlanNet: ns,
    });
  }

  /**
   * The kernel refuses a VNI already used on the same port by a device whose socket is in
   * the same netns (vxlan_vni_in_use), wherever that device lives.
   */
  private checkVniFree(socketNs: FakeNetns, vni: number, port: number, v6: boolean, what: string): void {
    for (const other of this.namespaces.values()) {
      for (const l of other.links.values()) {
        const o = l.vxlan;
        if (l.vxlanNet !== socketNs || !o || o.vni !== vni || o.port !== port) continue;
        if ((o.local ?? o.remote ?? "").includes(":") === v6) throw nsmErrorFromErrno(E.EEXIST, what);
      }
    }
  }

  async createBridge(netns: NetnsPath, spec: BridgeSpec): Promise<void> {
    const what = `create bridge "${spec.name}" in ${nsLabel(netns)}`;
    checkName(spec.name, what);
    checkU32(spec.mtu, "mtu", what, 1);
    const ns = this.netns(netns, what);
    this.nameFree(ns, spec.name, what);
    this.addLink(ns, {
      name: spec.name,
      kind: "bridge",
      mtu: spec.mtu ?? 1500,
      baseFlags: IFF.BROADCAST | IFF.MULTICAST,
      mac: spec.mac ? formatMac(parseMac(spec.mac)) : randomMac(),
    });
  }

  async createTun(netns: NetnsPath, spec: TunSpec): Promise<void> {
    const mode = spec.mode ?? "tun";
    const what = `create ${mode} "${spec.name}" in ${nsLabel(netns)}`;
    checkName(spec.name, what);
    checkU32(spec.mtu, "mtu", what, 1);
    const ns = this.netns(netns, what);
    this.nameFree(ns, spec.name, what);
    this.addLink(ns, {
      name: spec.name,
      kind: "tun",
      mtu: spec.mtu ?? 1500,
      baseFlags: mode === "tun" ? IFF.POINTOPOINT | IFF.NOARP | IFF.MULTICAST : IFF.BROADCAST | IFF.MULTICAST,
      mac: mode === "tap" ? randomMac() : undefined,
    });
  }

  async getLink(netns: NetnsPath, link: LinkRef): Promise<LinkInfo> {
    const what = `get link ${refLabel(link)} in ${nsLabel(netns)}`;
    return this.info(this.link(this.netns(netns, what), link, what));
  }

  async findLink(netns: NetnsPath, link: LinkRef): Promise<LinkInfo | undefined> {
    const what = `get link ${refLabel(link)} in ${nsLabel(netns)}`;
    checkRef(link, what);
    const l = this.find(this.netns(netns, what), link);
    return l && this.info(l);
  }

  /** Zeros, or what {@link setLinkStats} set (the fake carries no traffic). */
  async linkStats(netns: NetnsPath, ref: LinkRef): Promise<LinkStats | undefined> {
    const what = `get statistics of link ${refLabel(ref)} in ${nsLabel(netns)}`;
    checkRef(ref, what);
    const l = this.find(this.netns(netns, what), ref);
    if (!l) return undefined;
    return { ...(this.counters.get(l) ?? ZERO_STATS) };
  }

  /** Test helper: the counters {@link linkStats} reports for a link. */
  setLinkStats(netns: NetnsPath, ref: LinkRef, stats: Partial<LinkStats>): void {
    const what = `set statistics of link ${refLabel(ref)} in ${nsLabel(netns)}`;
    const l = this.link(this.netns(netns, what), ref, what);
    this.counters.set(l, { ...ZERO_STATS, ...stats });
  }

  async listLinks(netns: NetnsPath): Promise<LinkInfo[]> {
    const ns = this.netns(netns, "list links");
    return [...ns.links.values()].sort((a, b) => a.index - b.index).map((l) => this.info(l));
  }

  async setLink(netns: NetnsPath, ref: LinkRef, changes: LinkChanges): Promise<void> {
    const fields = Object.keys(changes).filter((k) => changes[k as keyof LinkChanges] !== undefined);
    const what = `set ${fields.join(",")} of link ${refLabel(ref)} in ${nsLabel(netns)}`;
    checkRef(ref, what);
    if (checkLinkChanges(changes, what).length === 0) return;
    const ns = this.netns(netns, what);
    const link = this.link(ns, ref, what);
    const mac = changes.mac === undefined ? undefined : formatMac(parseMac(changes.mac));
    const master = changes.master == null ? changes.master : this.link(ns, changes.master, what);
    if (master && master.kind !== "bridge") throw nsmErrorFromErrno(E.EOPNOTSUPP, what);
    const target = changes.netns === undefined ? ns : this.netns(changes.netns, what);
    const newName = changes.name ?? link.name;
    const clash = this.find(target, newName);
    if (clash && clash !== link) throw nsmErrorFromErrno(E.EEXIST, what);
    // Everything is checked: apply.
    if (target !== ns) this.moveLink(link, target);
    link.name = newName;
    applyLinkAttributes(link, changes, mac, master);
  }

  /** Moves a link into another namespace, keeping its index unless that one is taken there. */
  private moveLink(link: FakeLink, target: FakeNetns): void {
    this.forget(link);
    link.ns = target;
    link.index = target.links.has(link.index) ? target.nextIndex : link.index;
    target.nextIndex = Math.max(target.nextIndex, link.index + 1);
    target.links.set(link.index, link);
    link.master = undefined;
  }

  async deleteLink(netns: NetnsPath, ref: LinkRef): Promise<void> {
    const what = `delete link ${refLabel(ref)} in ${nsLabel(netns)}`;
    this.removeLink(this.link(this.netns(netns, what), ref, what));
  }

  // ------------------------------------------------------------ addresses

  async replaceAddress(netns: NetnsPath, ref: LinkRef, cidr: string, options: AddressOptions = {}): Promise<void> {
    const what = `replace address ${cidr} on ${refLabel(ref)} in ${nsLabel(netns)}`;
    checkRef(ref, what);
    const a = parseCidr(cidr);
    const peer = options.peer ? parseIp(options.peer) : undefined;
    if (peer && peer.family !== a.family) throw invalidArgument(`${what}: peer ${options.peer} is another family`);
    const ns = this.netns(netns, what);
    const link = this.link(ns, ref, what);
    const address = formatIp(a.bytes);
    const nodad = a.family === 6 && (options.nodad ?? true);
    const info: AddressInfo = {
      linkIndex: link.index,
      family: a.family,
      address,
      prefixLength: a.prefixLength,
      cidr: `${address}/${a.prefixLength}`,
      scope: Scope.universe,
      flags: 0x80 | (nodad ? 0x02 : 0),
      tentative: a.family === 6 && !nodad,
    };
    if (peer) info.peer = formatIp(peer.bytes);
    if (a.family === 4) info.label = link.name;
    this.dropAddress(ns, link.index, a.family, address);
    ns.addresses.push(info);
    if (a.prefixLength < (a.family === 4 ? 32 : 128)) this.addPrefixRoute(ns, link.index, a, address);
  }

  /** The kernel-protocol route to the connected prefix that an address brings with it. */
  private addPrefixRoute(ns: FakeNetns, linkIndex: number, a: ReturnType<typeof parseCidr>, address: string): void {
    const dst = `${formatIp(maskBytes(a.bytes, a.prefixLength))}/${a.prefixLength}`;
    const route: RouteInfo = {
      family: a.family,
      dst,
      linkIndex,
      table: MAIN_TABLE,
      scope: a.family === 4 ? Scope.link : Scope.universe,
      protocol: 2,
      type: 1,
      onlink: false,
    };
    if (a.family === 4) route.src = address;
    else route.metric = 256;
    ns.routes = ns.routes.filter((r) => !(r.protocol === 2 && r.dst === dst && r.linkIndex === linkIndex));
    ns.routes.push(route);
  }

  private dropAddress(ns: FakeNetns, index: number, family: 4 | 6, address: string): boolean {
    const before = ns.addresses.length;
    ns.addresses = ns.addresses.filter((x) => !(x.linkIndex === index && x.family === family && x.address === address));
    return ns.addresses.length !== before;
  }

  async deleteAddress(netns: NetnsPath, ref: LinkRef, cidr: string): Promise<void> {
    const what = `delete address ${cidr} on ${refLabel(ref)} in ${nsLabel(netns)}`;
    checkRef(ref, what);
    const a = parseCidr(cidr);
    const ns = this.netns(netns, what);
    const link = this.link(ns, ref, what);
    if (!this.dropAddress(ns, link.index, a.family, formatIp(a.bytes))) {
      throw nsmErrorFromErrno(E.EADDRNOTAVAIL, what);
    }
    const dst = `${formatIp(maskBytes(a.bytes, a.prefixLength))}/${a.prefixLength}`;
    ns.routes = ns.routes.filter((r) => !(r.protocol === 2 && r.dst === dst && r.linkIndex === link.index));
  }

  async listAddresses(netns: NetnsPath, filter: AddressFilter = {}): Promise<AddressInfo[]> {
    const ns = this.netns(netns, "list addresses");
    const index = filter.link === undefined ? undefined : this.link(ns, filter.link, "list addresses").index;
    return ns.addresses
      .filter((a) => (index === undefined || a.linkIndex === index) && (!filter.family || a.family === filter.family))
      .map((a) => ({ ...a }));
  }

  // ------------------------------------------------------------ routes

  private routeOf(netns: NetnsPath, route: RouteSpec, what: string): { ns: FakeNetns; info: RouteInfo } {
    const parsed = parseRouteSpec(route, what);
    const ns = this.netns(netns, what);
    const link = route.link === undefined ? undefined : this.link(ns, route.link, what);
    const info = routeInfoOf(route, parsed, link);
    this.checkNexthop(ns, route, parsed.gateway, link, what);
    return { ns, info };
  }

  private checkNexthop(
    ns: FakeNetns,
    route: RouteSpec,
    gateway: IpBytes | undefined,
    link: FakeLink | undefined,
    what: string,
  ): void {
    if (link && !link.up) {
      const text = gateway ? "Nexthop device is not up" : "Device for nexthop is not up";
      throw nsmErrorFromErrno(E.ENETDOWN, what, text);
    }
    if (gateway && !route.onlink && !this.gatewayReachable(ns, gateway, link)) {
      throw nsmErrorFromErrno(E.ENETUNREACH, what, "Nexthop has invalid gateway");
    }
    if (!gateway && !link) throw nsmErrorFromErrno(E.ENODEV, what, "Nexthop device required");
  }

  /** The kernel wants the gateway inside a connected prefix of the output link. */
  private gatewayReachable(ns: FakeNetns, gateway: IpBytes, link: FakeLink | undefined): boolean {
    const onLink = (index: number | undefined) => !link || index === link.index;
    return (
      ns.routes.some(
        (r) => !r.gateway && onLink(r.linkIndex) && r.family === gateway.family && inPrefix(gateway.bytes, r.dst),
      ) ||
      ns.addresses.some((a) => onLink(a.linkIndex) && a.family === gateway.family && inPrefix(gateway.bytes, a.cidr))
    );
  }

  private sameRoute = (a: RouteInfo, b: RouteInfo) =>
    a.family === b.family && a.dst === b.dst && a.table === b.table && (a.metric ?? 0) === (b.metric ?? 0);

  async replaceRoute(netns: NetnsPath, route: RouteSpec): Promise<void> {
    const what = `replace route ${route.dst} in ${nsLabel(netns)}`;
    const { ns, info } = this.routeOf(netns, route, what);
    ns.routes = ns.routes.filter((r) => !this.sameRoute(r, info));
    ns.routes.push(info);
  }

  async deleteRoute(netns: NetnsPath, route: RouteSpec): Promise<void> {
    const what = `delete route ${route.dst} in ${nsLabel(netns)}`;
    const dst = parseCidr(route.dst);
    const ns = this.netns(netns, what);
    const key = `${formatIp(maskBytes(dst.bytes, dst.prefixLength))}/${dst.prefixLength}`;
    const table = route.table ?? MAIN_TABLE;
    const link = route.link === undefined ? undefined : this.link(ns, route.link, what);
    const gw = route.gateway ? formatIp(parseIp(route.gateway).bytes) : undefined;
    const i = ns.routes.findIndex(
      (r) =>
        r.dst === key &&
        r.table === table &&
        (link === undefined || r.linkIndex === link.index) &&
        (gw === undefined || r.gateway === gw),
    );
    if (i < 0) throw nsmErrorFromErrno(E.ESRCH, what, "No such process");
    ns.routes.splice(i, 1);
  }

  async listRoutes(netns: NetnsPath, filter: RouteFilter = {}): Promise<RouteInfo[]> {
    const ns = this.netns(netns, "list routes");
    const index = filter.link === undefined ? undefined : this.link(ns, filter.link, "list routes").index;
    const table = filter.table ?? MAIN_TABLE;
    const up = (r: RouteInfo) => r.linkIndex === undefined || ns.links.has(r.linkIndex);
    return ns.routes
      .filter(
        (r) =>
          up(r) &&
          (table === 0 || r.table === table) &&
          (index === undefined || r.linkIndex === index) &&
          (!filter.family || r.family === filter.family),
      )
      .map((r) => ({ ...r }));
  }

  // ------------------------------------------------------------ rules

  async addRule(netns: NetnsPath, rule: RuleSpec): Promise<void> {
    const what = `add ${ruleLabel(rule)} in ${nsLabel(netns)}`;
    checkRule(rule, what);
    const ns = this.netns(netns, what);
    const info = ruleInfoOf(rule, ns.rules);
    if (ns.rules.some((r) => ruleMatches(r, info))) throw nsmErrorFromErrno(E.EEXIST, what);
    ns.rules.push(info);
    ns.rules.sort((a, b) => a.family - b.family || a.priority - b.priority);
  }

  async deleteRule(netns: NetnsPath, rule: RuleSpec): Promise<void> {
    const what = `delete ${ruleLabel(rule)} in ${nsLabel(netns)}`;
    checkRule(rule, what);
    const ns = this.netns(netns, what);
    const { priority: _, ...wanted } = ruleInfoOf(rule, ns.rules);
    const i = ns.rules.findIndex((r) => ruleMatches(r, { ...wanted, priority: rule.priority }));
    if (i < 0) throw nsmErrorFromErrno(E.ENOENT, what);
    ns.rules.splice(i, 1);
  }

  async listRules(netns: NetnsPath, family?: 4 | 6): Promise<RuleInfo[]> {
    const ns = this.netns(netns, "list rules");
    return ns.rules.filter((r) => !family || r.family === family).map((r) => structuredClone(r));
  }

  // ------------------------------------------------------------ neighbours

  async replaceNeighbor(netns: NetnsPath, n: NeighborSpec): Promise<void> {
    const what = `replace neighbour ${n.address} on ${refLabel(n.link)} in ${nsLabel(netns)}`;
    checkRef(n.link, what);
    const ip = parseIp(n.address);
    const mac = formatMac(parseMac(n.mac));
    const state = neighborStates[n.state ?? "permanent"];
    if (state === undefined) throw invalidArgument(`${what}: invalid state ${n.state}`);
    const ns = this.netns(netns, what);
    const link = this.link(ns, n.link, what);
    const address = formatIp(ip.bytes);
    ns.neighbors = ns.neighbors.filter((x) => !(x.linkIndex === link.index && x.address === address));
    ns.neighbors.push({ linkIndex: link.index, family: ip.family, address, mac, state });
  }

  async deleteNeighbor(netns: NetnsPath, n: Pick<NeighborSpec, "link" | "address">): Promise<void> {
    const what = `delete neighbour ${n.address} on ${refLabel(n.link)} in ${nsLabel(netns)}`;
    checkRef(n.link, what);
    const address = formatIp(parseIp(n.address).bytes);
    const ns = this.netns(netns, what);
    const link = this.link(ns, n.link, what);
    const before = ns.neighbors.length;
    ns.neighbors = ns.neighbors.filter((x) => !(x.linkIndex === link.index && x.address === address));
    if (ns.neighbors.length === before) throw nsmErrorFromErrno(E.ENOENT, what);
  }

  async listNeighbors(netns: NetnsPath, filter: NeighborFilter = {}): Promise<NeighborInfo[]> {
    const ns = this.netns(netns, "list neighbours");
    const index = filter.link === undefined ? undefined : this.link(ns, filter.link, "list neighbours").index;
    return ns.neighbors
      .filter((x) => (index === undefined || x.linkIndex === index) && (!filter.family || x.family === filter.family))
      .map((x) => ({ ...x }));
  }

  // ------------------------------------------------------------ misc

  async writeSysctl(netns: NetnsPath, key: string, value: string): Promise<void> {
    const path = sysctlPath(key);
    const what = `write ${path}=${JSON.stringify(value)} in ${nsLabel(netns)}`;
    const ns = this.netns(netns, what);
    const perLink = /^\/proc\/sys\/net\/ipv[46]\/(?:conf|neigh)\/([^/]+)\//.exec(path);
    if (perLink && perLink[1] !== "all" && perLink[1] !== "default" && !this.find(ns, perLink[1]!)) {
      throw nsmErrorFromErrno(E.ENOENT, what);
    }
    ns.sysctls.set(path, value);
  }

  async netnsId(netns: NetnsPath): Promise<NetnsId> {
    return { ...this.netns(netns, "netns id").id };
  }

  async listNetns(): Promise<NetnsPath[]> {
    return [...this.namespaces.keys()].map((path) => (path === "" ? undefined : path));
  }

  release(_netns: NetnsPath): void {}

  async close(): Promise<void> {}
}

/** A fresh fake kernel whose own netns (`undefined` / `""`) holds only `lo`. */
export function createFakeKernel(): FakeKernel {
  return new Fake();
}
