// SPDX-License-Identifier: Apache-2.0
/**
 * The Linux {@link KernelApi}: rtnetlink over sockets that the addon opens inside each netns.
 *
 * Sockets: one NETLINK_ROUTE socket per netns path, opened lazily and cached. Before each use the
 * path is `stat`ed and compared with the netns the socket was opened in, so a path that now
 * names another netns (a recreated `/var/run/netns/x`, a reused pid) gets a fresh socket, and
 * a path that is gone gives `NotFound`.
 *
 * Concurrency: requests on one socket are serialized here (a promise queue per socket), because
 * the addon's request does one blocking send/recv exchange and two exchanges on one fd would
 * steal each other's replies. Requests to different namespaces run in parallel on the libuv
 * pool. rtnetlink handles a request within `sendmsg`, so the queue costs little; the exception
 * is RTM_DELLINK, which the kernel acknowledges only after RCU grace periods (~20 ms): it gets a
 * socket of its own, so that the netns's other requests (and a check that the link is gone) go on.
 */
import { randomInt } from "node:crypto";
import { closeSync, openSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { constants } from "node:os";
import { Code, invalidArgument, NsmError, unavailable } from "../sdk/core/errors.js";
import { type Logger, silentLogger } from "../sdk/core/logger.js";
import {
  type AddressFilter,
  type AddressInfo,
  type AddressOptions,
  type BridgeSpec,
  type KernelApi,
  type LinkChanges,
  type LinkInfo,
  type LinkRef,
  type LinkStats,
  MAIN_TABLE,
  type NeighborFilter,
  type NeighborInfo,
  type NeighborSpec,
  type NeighborStateName,
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
  type VxlanSpec,
} from "./api.js";
import {
  AF,
  addrRequest,
  decodeAddress,
  decodeDone,
  decodeError,
  decodeLink,
  decodeLinkStats,
  decodeNeighbor,
  decodeRoute,
  decodeRule,
  delLinkRequest,
  dumpAddrsRequest,
  dumpLinksRequest,
  dumpNeighRequest,
  dumpRoutesRequest,
  dumpRulesRequest,
  encodeRequest,
  getLinkRequest,
  getLinkStatsRequest,
  type IpBytes,
  type LinkAttrs,
  NETLINK_ROUTE,
  NLM_F,
  NLMSG,
  type NlMessage,
  type NlRequest,
  neighRequest,
  newLinkRequest,
  parseCidr,
  parseIp,
  parseMac,
  parseMessages,
  RTM,
  routeRequest,
  ruleRequest,
  setLinkRequest,
  vethData,
  vxlanData,
} from "./codec.js";
import { nsmErrorFromErrno, nsmErrorFromSystem } from "./errors.js";
import { loadNativeBinding, type NativeBinding } from "./native.js";
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

/** The netns file used for `undefined` / `""`: the main thread's, i.e. this process's netns. */
export const SELF_NETNS = "/proc/self/ns/net";

/** Where `ip netns add` bind-mounts named namespaces. */
const NETNS_RUN_DIR = "/var/run/netns";

const nsPathOf = (ns: NetnsPath): string => (ns ? ns : SELF_NETNS);
const nsLabel = (ns: NetnsPath): string => (ns ? `netns ${ns}` : "own netns");

export interface NetlinkKernelOptions {
  log?: Logger;
  /** The addon file; by default `native/build/Release/nsnl.node` above this module. */
  addonPath?: string;
  /** An already loaded binding (tests). */
  binding?: NativeBinding;
  /** How long one request waits for the kernel's reply. @default 5000 */
  requestTimeoutMs?: number;
  /** Sockets kept open (one per netns); beyond this the least recently used idle ones close. @default 64 */
  maxSockets?: number;
}

/**
 * One netlink socket bound to one netns, with a request queue. Exported for protocols other
 * than rtnetlink (generic netlink); {@link createNetlinkKernel} manages its own.
 */
export class NetlinkSocket {
  /** Operations in progress or queued; an idle socket (0) may be evicted. */
  users = 0;
  private seq = randomInt(1, 0x7fffffff);
  private tail: Promise<unknown> = Promise.resolve();
  private closing = false;

  constructor(
    private readonly binding: NativeBinding,
    readonly fd: number,
    /** The netns this socket lives in, as it was when opened. */
    readonly id: NetnsId,
  ) {}

  /**
   * Sends `req` and returns the reply messages (without ACKs and NLMSG_DONE). A kernel error
   * becomes an NsmError via {@link nsmErrorFromErrno}, with `what` as its subject. A dump
   * interrupted by a concurrent change (NLM_F_DUMP_INTR) is retried.
   */
  request(req: NlRequest, what: string): Promise<NlMessage[]> {
    if (this.closing) return Promise.reject(unavailable(`${what}: netlink socket closed`));
    const run = () => this.exchange(req, what);
    const p = this.tail.then(run, run);
    this.tail = p.catch(() => undefined);
    return p;
  }

  private async exchange(req: NlRequest, what: string): Promise<NlMessage[]> {
    for (let attempt = 0; ; attempt++) {
      this.seq = this.seq >= 0x7fffffff ? 1 : this.seq + 1;
      const seq = this.seq;
      let datagrams: Buffer[];
      try {
        datagrams = await this.binding.request(this.fd, encodeRequest(req, seq));
      } catch (err) {
        throw nsmErrorFromSystem(err, what);
      }
      const { out, interrupted } = repliesOf(datagrams, seq, what);
      if (!interrupted || attempt >= 4) return out;
    }
  }

  /** Closes the fd once the queued requests are done; new requests are refused at once. */
  close(): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      this.tail = this.tail.then(() => this.binding.close(this.fd));
    }
    return this.tail.then(() => undefined);
  }
}

/**
 * The reply messages to request `seq` in `datagrams`, without ACKs, NLMSG_DONE and NOOP; a kernel
 * error in them is thrown as an NsmError. `interrupted` tells that a dump must be retried.
 */
function repliesOf(datagrams: Buffer[], seq: number, what: string): { out: NlMessage[]; interrupted: boolean } {
  const out: NlMessage[] = [];
  let interrupted = false;
  for (const d of datagrams) {
    for (const m of parseMessages(d)) {
      if (m.seq !== seq) continue;
      if (m.flags & NLM_F.DUMP_INTR) interrupted = true;
      checkReplyStatus(m, what);
      if (m.type !== NLMSG.ERROR && m.type !== NLMSG.DONE && m.type !== NLMSG.NOOP) out.push(m);
    }
  }
  return { out, interrupted };
}

/** Throws the kernel error an NLMSG_ERROR or NLMSG_DONE message carries, if any. */
function checkReplyStatus(m: NlMessage, what: string): void {
  if (m.type === NLMSG.ERROR) {
    const e = decodeError(m);
    if (e.errno !== 0) throw nsmErrorFromErrno(e.errno, what, e.extack);
  } else if (m.type === NLMSG.DONE) {
    const errno = decodeDone(m);
    if (errno > 0) throw nsmErrorFromErrno(errno, what);
  }
}

/**
 * Opens a netlink socket of `protocol` (e.g. NETLINK_GENERIC = 16) inside `netns`. The caller
 * owns it and must `close()` it.
 */
export async function openNetlinkSocket(
  netns: NetnsPath,
  protocol: number,
  options: Pick<NetlinkKernelOptions, "addonPath" | "binding" | "requestTimeoutMs"> = {},
): Promise<NetlinkSocket> {
  const binding = options.binding ?? loadNativeBinding(options.addonPath);
  const path = nsPathOf(netns);
  const what = `open netlink socket in ${nsLabel(netns)}`;
  try {
    const id = binding.stat(path);
    const fd = await binding.openNetlink(path, protocol, options.requestTimeoutMs ?? 5000);
    return new NetlinkSocket(binding, fd, id);
  } catch (err) {
    throw nsmErrorFromSystem(err, what);
  }
}

interface Entry {
  promise: Promise<NetlinkSocket>;
  socket?: NetlinkSocket;
}

const neighborStates: Record<NeighborStateName, number> = {
  permanent: NUD.PERMANENT,
  reachable: NUD.REACHABLE,
  stale: NUD.STALE,
  noarp: NUD.NOARP,
};

/** Keeps the IPv4/IPv6 messages of a dump (an AF_UNSPEC dump also returns bridge, multicast, …). */
const inetOnly = (m: NlMessage) => m.payload[0] === AF.INET || m.payload[0] === AF.INET6;

class NetlinkKernel implements KernelApi {
  private readonly sockets = new Map<string, Entry>();
  private readonly timeoutMs: number;
  private readonly maxSockets: number;
  private readonly log: Logger;

  constructor(
    private readonly binding: NativeBinding,
    options: NetlinkKernelOptions,
  ) {
    this.timeoutMs = options.requestTimeoutMs ?? 5000;
    this.maxSockets = options.maxSockets ?? 64;
    this.log = options.log ?? silentLogger;
  }

  // ------------------------------------------------------------ sockets

  /** The cached socket of a netns (checked to still be that netns), or a new one. Marks it in use. */
  private async acquire(netns: NetnsPath): Promise<NetlinkSocket> {
    const path = nsPathOf(netns);
    let id: NetnsId;
    try {
      id = this.binding.stat(path);
    } catch (err) {
      this.drop(path);
      throw nsmErrorFromSystem(err, nsLabel(netns));
    }
    let entry = this.sockets.get(path);
    if (entry?.socket && (entry.socket.id.dev !== id.dev || entry.socket.id.ino !== id.ino)) {
      this.log.debug({ netns: path }, "netns path now names another netns; reopening its netlink socket");
      this.drop(path);
      entry = undefined;
    }
    if (entry) {
      this.sockets.delete(path); // re-insert: Map order is the LRU order
      this.sockets.set(path, entry);
    } else {
      const opened: Entry = {
        promise: this.binding.openNetlink(path, NETLINK_ROUTE, this.timeoutMs).then(
          (fd) => {
            opened.socket = new NetlinkSocket(this.binding, fd, id);
            return opened.socket;
          },
          (err: unknown) => {
            if (this.sockets.get(path) === opened) this.sockets.delete(path);
            throw nsmErrorFromSystem(err, `open netlink socket in ${nsLabel(netns)}`);
          },
        ),
      };
      entry = opened;
      this.sockets.set(path, entry);
      this.evict();
    }
    const socket = await entry.promise;
    socket.users++;
    return socket;
  }

  release(netns: NetnsPath): void {
    const path = nsPathOf(netns);
    const entry = this.sockets.get(path);
    if (entry?.socket && entry.socket.users === 0) this.drop(path);
  }

  private drop(path: string): void {
    const entry = this.sockets.get(path);
    if (!entry) return;
    this.sockets.delete(path);
    void entry.promise.then((s) => s.close()).catch(() => undefined);
  }

  private evict(): void {
    for (const [path, entry] of this.sockets) {
      if (this.sockets.size <= this.maxSockets) return;
      if (entry.socket && entry.socket.users === 0) this.drop(path);
    }
  }

  /** One request in `netns`; returns the reply messages. */
  private async exec(netns: NetnsPath, req: NlRequest, what: string): Promise<NlMessage[]> {
    const socket = await this.acquire(netns);
    const t0 = this.log.isLevelEnabled("debug") ? performance.now() : 0;
    try {
      return await socket.request(req, what);
    } finally {
      socket.users--;
      if (t0) this.log.debug({ op: what, ms: +(performance.now() - t0).toFixed(3) }, "netlink request");
    }
  }

  /** Runs `fn` with an open fd of the netns file (for IFLA_NET_NS_FD), or with undefined. */
  private async withNetnsFd<T>(target: string | undefined, what: string, fn: (fd?: number) => Promise<T>): Promise<T> {
    if (target === undefined) return fn(undefined);
    // Opening and closing an nsfs file never waits on a disk: done here rather than as two round
    // trips through libuv's pool (each a thread hand-off, a good part of a veth's creation).
    let fd: number;
    try {
      fd = openSync(nsPathOf(target), "r");
    } catch (err) {
      throw nsmErrorFromSystem(err, `${what}: ${nsLabel(target)}`);
    }
    try {
      return await fn(fd);
    } finally {
      closeSync(fd);
    }
  }

  private async index(netns: NetnsPath, ref: LinkRef): Promise<number> {
    return typeof ref === "number" ? ref : (await this.getLink(netns, ref)).index;
  }

  // ------------------------------------------------------------ links

  async createVeth(netns: NetnsPath, spec: VethSpec): Promise<void> {
    const what = `create veth "${spec.name}" (peer "${spec.peer.name}"${spec.peer.netns !== undefined ? ` in ${nsLabel(spec.peer.netns)}` : ""}) in ${nsLabel(netns)}`;
    checkName(spec.name, what);
    checkName(spec.peer.name, what);
    checkU32(spec.mtu, "mtu", what, 1);
    checkU32(spec.peer.mtu, "mtu", what, 1);
    const main: LinkAttrs & { name: string } = { name: spec.name, mtu: spec.mtu };
    if (spec.mac) main.mac = parseMac(spec.mac);
    const peerMac = spec.peer.mac ? parseMac(spec.peer.mac) : undefined;
    await this.withNetnsFd(spec.peer.netns, what, async (netnsFd) => {
      const peer: LinkAttrs & { name: string } = { name: spec.peer.name, mtu: spec.peer.mtu ?? spec.mtu, netnsFd };
      if (peerMac) peer.mac = peerMac;
      await this.exec(netns, newLinkRequest("veth", main, vethData(peer)), what);
    });
  }

  async createVxlan(netns: NetnsPath, spec: VxlanSpec): Promise<void> {
    const into = spec.netns !== undefined ? ` into ${nsLabel(spec.netns)}` : "";
    const what = `create vxlan "${spec.name}" (vni ${spec.vni}) in ${nsLabel(netns)}${into}`;
    checkName(spec.name, what);
    checkU32(spec.vni, "vni", what, 0, 0xffffff);
    checkU32(spec.port, "port", what, 1, 0xffff);
    checkU32(spec.mtu, "mtu", what, 1);
    checkU32(spec.ttl, "ttl", what, 0, 255);
    const remote: IpBytes | undefined = spec.remote ? parseIp(spec.remote) : undefined;
    const local: IpBytes | undefined = spec.local ? parseIp(spec.local) : undefined;
    if (remote && local && remote.family !== local.family) {
      throw invalidArgument(`${what}: local ${spec.local} and remote ${spec.remote} differ in family`);
    }
    const underlayIndex = spec.underlay === undefined ? undefined : await this.index(netns, spec.underlay);
    const data = vxlanData({
      vni: spec.vni,
      port: spec.port ?? 4789,
      remote,
      local,
      underlayIndex,
      learning: spec.learning,
      ttl: spec.ttl,
    });
    const mac = spec.mac ? parseMac(spec.mac) : undefined;
    // IFLA_NET_NS_FD puts the device in the target netns; the kernel keeps the UDP socket in the
    // netns of this netlink socket (the vxlan's src_net).
    await this.withNetnsFd(spec.netns, what, async (netnsFd) => {
      const link: LinkAttrs & { name: string } = { name: spec.name, mtu: spec.mtu, netnsFd };
      if (mac) link.mac = mac;
      await this.exec(netns, newLinkRequest("vxlan", link, data), what);
    });
  }

  async createBridge(netns: NetnsPath, spec: BridgeSpec): Promise<void> {
    const what = `create bridge "${spec.name}" in ${nsLabel(netns)}`;
    checkName(spec.name, what);
    checkU32(spec.mtu, "mtu", what, 1);
    const link: LinkAttrs & { name: string } = { name: spec.name, mtu: spec.mtu };
    if (spec.mac) link.mac = parseMac(spec.mac);
    await this.exec(netns, newLinkRequest("bridge", link), what);
  }

  async createTun(netns: NetnsPath, spec: TunSpec): Promise<void> {
    const mode = spec.mode ?? "tun";
    const what = `create ${mode} "${spec.name}" in ${nsLabel(netns)}`;
    checkName(spec.name, what);
    checkU32(spec.mtu, "mtu", what, 1);
    // TUNSETIFF would attach to an existing device of that name instead of failing.
    if (await this.findLink(netns, spec.name)) throw nsmErrorFromErrno(constants.errno.EEXIST, what);
    try {
      await this.binding.createTun(nsPathOf(netns), spec.name, mode === "tap");
    } catch (err) {
      throw nsmErrorFromSystem(err, what);
    }
    if (spec.mtu !== undefined) await this.setLink(netns, spec.name, { mtu: spec.mtu });
  }

  async getLink(netns: NetnsPath, link: LinkRef): Promise<LinkInfo> {
    const found = await this.queryLink(netns, link);
    if (!found) throw new NsmError(`link ${refLabel(link)} not found in ${nsLabel(netns)}`, Code.NotFound);
    return found;
  }

  findLink(netns: NetnsPath, link: LinkRef): Promise<LinkInfo | undefined> {
    return this.queryLink(netns, link);
  }

  private async queryLink(netns: NetnsPath, ref: LinkRef): Promise<LinkInfo | undefined> {
    const what = `get link ${refLabel(ref)} in ${nsLabel(netns)}`;
    checkRef(ref, what);
    const socket = await this.acquire(netns);
    try {
      const req = typeof ref === "number" ? getLinkRequest(ref) : getLinkRequest(0, ref);
      const msgs = await socket.request(req, what);
      const m = msgs.find((x) => x.type === RTM.NEWLINK);
      return m ? decodeLink(m.payload) : undefined;
    } catch (err) {
      if (err instanceof NsmError && err.code === Code.NotFound) return undefined;
      throw err;
    } finally {
      socket.users--;
    }
  }

  async linkStats(netns: NetnsPath, ref: LinkRef): Promise<LinkStats | undefined> {
    const what = `get statistics of link ${refLabel(ref)} in ${nsLabel(netns)}`;
    checkRef(ref, what);
    const req = typeof ref === "number" ? getLinkStatsRequest(ref) : getLinkStatsRequest(0, ref);
    try {
      const msgs = await this.exec(netns, req, what);
      const m = msgs.find((x) => x.type === RTM.NEWLINK);
      return m ? decodeLinkStats(m.payload) : undefined;
    } catch (err) {
      if (err instanceof NsmError && err.code === Code.NotFound) return undefined;
      throw err;
    }
  }

  async listLinks(netns: NetnsPath): Promise<LinkInfo[]> {
    const msgs = await this.exec(netns, dumpLinksRequest(), `list links in ${nsLabel(netns)}`);
    return msgs.filter((m) => m.type === RTM.NEWLINK).map((m) => decodeLink(m.payload));
  }

  async setLink(netns: NetnsPath, link: LinkRef, changes: LinkChanges): Promise<void> {
    const fields = Object.keys(changes).filter((k) => changes[k as keyof LinkChanges] !== undefined);
    const what = `set ${fields.join(",")} of link ${refLabel(link)} in ${nsLabel(netns)}`;
    checkRef(link, what);
    if (checkLinkChanges(changes, what).length === 0) return;
    const attrs: LinkAttrs & { up?: boolean } = {
      name: changes.name,
      mtu: changes.mtu,
      alias: changes.alias,
      up: changes.up,
    };
    if (changes.mac !== undefined) attrs.mac = parseMac(changes.mac);
    if (changes.master !== undefined)
      attrs.master = changes.master === null ? 0 : await this.index(netns, changes.master);
    const index = typeof link === "number" ? link : changes.name !== undefined ? await this.index(netns, link) : 0;
    if (
      changes.netns !== undefined &&
      changes.name !== undefined &&
      (await this.findLink(changes.netns, changes.name))
    ) {
      // The kernel would move the link first and only then fail the rename: refuse up front instead.
      throw nsmErrorFromErrno(constants.errno.EEXIST, `${what}: "${changes.name}" exists in ${nsLabel(changes.netns)}`);
    }
    const lookup = typeof link === "string" ? link : undefined;
    await this.withNetnsFd(changes.netns, what, async (netnsFd) => {
      await this.exec(netns, setLinkRequest(index, lookup, { ...attrs, netnsFd }), what);
    });
  }

  /**
   * RTM_DELLINK goes out on a socket of its own (opened for it, ~0.05 ms): the kernel takes the
   * link out of the netns at once but acknowledges only after RCU grace periods (~20 ms), and
   * the netns's shared socket must not wait for that (see {@link KernelApi.deleteLink}).
   */
  async deleteLink(netns: NetnsPath, link: LinkRef): Promise<void> {
    const what = `delete link ${refLabel(link)} in ${nsLabel(netns)}`;
    checkRef(link, what);
    const req = typeof link === "number" ? delLinkRequest(link) : delLinkRequest(0, link);
    const socket = await openNetlinkSocket(netns, NETLINK_ROUTE, {
      binding: this.binding,
      requestTimeoutMs: this.timeoutMs,
    });
    try {
      await socket.request(req, what);
    } finally {
      await socket.close();
    }
  }

  // ------------------------------------------------------------ addresses

  async replaceAddress(netns: NetnsPath, link: LinkRef, cidr: string, options: AddressOptions = {}): Promise<void> {
    const what = `replace address ${cidr} on ${refLabel(link)} in ${nsLabel(netns)}`;
    checkRef(link, what);
    const address = parseCidr(cidr);
    const peer = options.peer ? parseIp(options.peer) : undefined;
    if (peer && peer.family !== address.family)
      throw invalidArgument(`${what}: peer ${options.peer} is another family`);
    const index = await this.index(netns, link);
    await this.exec(netns, addrRequest("replace", { index, address, peer, nodad: options.nodad ?? true }), what);
  }

  async deleteAddress(netns: NetnsPath, link: LinkRef, cidr: string): Promise<void> {
    const what = `delete address ${cidr} on ${refLabel(link)} in ${nsLabel(netns)}`;
    checkRef(link, what);
    const address = parseCidr(cidr);
    const index = await this.index(netns, link);
    await this.exec(netns, addrRequest("delete", { index, address }), what);
  }

  async listAddresses(netns: NetnsPath, filter: AddressFilter = {}): Promise<AddressInfo[]> {
    const index = filter.link === undefined ? undefined : await this.index(netns, filter.link);
    const msgs = await this.exec(netns, dumpAddrsRequest(filter.family), `list addresses in ${nsLabel(netns)}`);
    return msgs
      .filter((m) => m.type === RTM.NEWADDR && inetOnly(m))
      .map((m) => decodeAddress(m.payload))
      .filter((a) => index === undefined || a.linkIndex === index);
  }

  // ------------------------------------------------------------ routes

  private async routeData(netns: NetnsPath, route: RouteSpec, what: string) {
    const dst = parseCidr(route.dst);
    const gateway = route.gateway ? parseIp(route.gateway) : undefined;
    const prefsrc = route.src ? parseIp(route.src) : undefined;
    for (const [name, ip] of [
      ["gateway", gateway],
      ["src", prefsrc],
    ] as const) {
      if (ip && ip.family !== dst.family)
        throw invalidArgument(`${what}: ${name} is not of the family of ${route.dst}`);
    }
    checkU32(route.table, "table", what, 1);
    checkU32(route.metric, "metric", what);
    if (route.scope !== undefined && !(route.scope in Scope))
      throw invalidArgument(`${what}: invalid scope ${route.scope}`);
    const scope =
      route.scope !== undefined ? Scope[route.scope] : gateway || dst.family === 6 ? Scope.universe : Scope.link;
    const oif = route.link === undefined ? undefined : await this.index(netns, route.link);
    return {
      dst,
      gateway,
      prefsrc,
      oif,
      scope,
      onlink: route.onlink,
      table: route.table ?? MAIN_TABLE,
      metric: route.metric,
    };
  }

  async replaceRoute(netns: NetnsPath, route: RouteSpec): Promise<void> {
    const what = `replace route ${route.dst}${route.gateway ? ` via ${route.gateway}` : ""} in ${nsLabel(netns)}`;
    await this.exec(netns, routeRequest("replace", await this.routeData(netns, route, what)), what);
  }

  async deleteRoute(netns: NetnsPath, route: RouteSpec): Promise<void> {
    const what = `delete route ${route.dst}${route.gateway ? ` via ${route.gateway}` : ""} in ${nsLabel(netns)}`;
    await this.exec(netns, routeRequest("delete", await this.routeData(netns, route, what)), what);
  }

  async listRoutes(netns: NetnsPath, filter: RouteFilter = {}): Promise<RouteInfo[]> {
    const index = filter.link === undefined ? undefined : await this.index(netns, filter.link);
    const table = filter.table ?? MAIN_TABLE;
    const msgs = await this.exec(netns, dumpRoutesRequest(filter.family), `list routes in ${nsLabel(netns)}`);
    return msgs
      .filter((m) => m.type === RTM.NEWROUTE && inetOnly(m))
      .map((m) => decodeRoute(m.payload))
      .filter((r) => (table === 0 || r.table === table) && (index === undefined || r.linkIndex === index));
  }

  // ------------------------------------------------------------ rules

  private ruleData(rule: RuleSpec, what: string) {
    checkRule(rule, what);
    const src = rule.src === undefined ? undefined : parseCidr(rule.src);
    if (src && src.family !== rule.family) throw invalidArgument(`${what}: from is not of family ${rule.family}`);
    return { ...rule, src };
  }

  async addRule(netns: NetnsPath, rule: RuleSpec): Promise<void> {
    const what = `add ${ruleLabel(rule)} in ${nsLabel(netns)}`;
    await this.exec(netns, ruleRequest("add", this.ruleData(rule, what)), what);
  }

  async deleteRule(netns: NetnsPath, rule: RuleSpec): Promise<void> {
    const what = `delete ${ruleLabel(rule)} in ${nsLabel(netns)}`;
    await this.exec(netns, ruleRequest("delete", this.ruleData(rule, what)), what);
  }

  async listRules(netns: NetnsPath, family?: 4 | 6): Promise<RuleInfo[]> {
    const msgs = await this.exec(netns, dumpRulesRequest(family), `list rules in ${nsLabel(netns)}`);
    return msgs.filter((m) => m.type === RTM.NEWRULE && inetOnly(m)).map((m) => decodeRule(m.payload));
  }

  // ------------------------------------------------------------ neighbours

  async replaceNeighbor(netns: NetnsPath, n: NeighborSpec): Promise<void> {
    const what = `replace neighbour ${n.address} lladdr ${n.mac} on ${refLabel(n.link)} in ${nsLabel(netns)}`;
    checkRef(n.link, what);
    const address = parseIp(n.address);
    const mac = parseMac(n.mac);
    const state = neighborStates[n.state ?? "permanent"];
    if (state === undefined) throw invalidArgument(`${what}: invalid state ${n.state}`);
    const index = await this.index(netns, n.link);
    await this.exec(netns, neighRequest("replace", { index, address, mac, state }), what);
  }

  async deleteNeighbor(netns: NetnsPath, n: Pick<NeighborSpec, "link" | "address">): Promise<void> {
    const what = `delete neighbour ${n.address} on ${refLabel(n.link)} in ${nsLabel(netns)}`;
    checkRef(n.link, what);
    const address = parseIp(n.address);
    const index = await this.index(netns, n.link);
    await this.exec(netns, neighRequest("delete", { index, address }), what);
  }

  async listNeighbors(netns: NetnsPath, filter: NeighborFilter = {}): Promise<NeighborInfo[]> {
    const index = filter.link === undefined ? undefined : await this.index(netns, filter.link);
    const msgs = await this.exec(netns, dumpNeighRequest(filter.family), `list neighbours in ${nsLabel(netns)}`);
    return msgs
      .filter((m) => m.type === RTM.NEWNEIGH && inetOnly(m))
      .map((m) => decodeNeighbor(m.payload))
      .filter((n) => index === undefined || n.linkIndex === index);
  }

  // ------------------------------------------------------------ misc

  async writeSysctl(netns: NetnsPath, key: string, value: string): Promise<void> {
    const path = sysctlPath(key);
    try {
      await this.binding.writeFile(nsPathOf(netns), path, Buffer.from(value));
    } catch (err) {
      throw nsmErrorFromSystem(err, `write ${path}=${JSON.stringify(value)} in ${nsLabel(netns)}`);
    }
  }

  async netnsId(netns: NetnsPath): Promise<NetnsId> {
    try {
      return this.binding.stat(nsPathOf(netns));
    } catch (err) {
      throw nsmErrorFromSystem(err, nsLabel(netns));
    }
  }

  async listNetns(): Promise<NetnsPath[]> {
    const seen = new Set<string>();
    const key = (id: NetnsId) => `${id.dev}:${id.ino}`;
    const out: NetnsPath[] = [undefined];
    const own = await this.netnsId(undefined);
    seen.add(key(own));
    const names = async (dir: string) => readdir(dir).catch((): string[] => []);
    const candidates = [
      ...(await names(NETNS_RUN_DIR)).sort().map((n) => `${NETNS_RUN_DIR}/${n}`),
      ...(await names("/proc"))
        .filter((n) => /^\d+$/.test(n))
        .sort((a, b) => Number(a) - Number(b))
        .map((pid) => `/proc/${pid}/ns/net`),
    ];
    for (const path of candidates) {
      let id: NetnsId;
      try {
        id = this.binding.stat(path);
      } catch {
        continue; // the process exited, or not a netns file
      }
      // Every netns file lives on nsfs (one st_dev); anything else (a stale file under
      // /var/run/netns whose mount is gone) is no namespace.
      if (id.dev !== own.dev || seen.has(key(id))) continue;
      seen.add(key(id));
      out.push(path);
    }
    return out;
  }

  async close(): Promise<void> {
    const entries = [...this.sockets.values()];
    this.sockets.clear();
    await Promise.all(entries.map((e) => e.promise.then((s) => s.close()).catch(() => undefined)));
  }
}

/** The rtnetlink KernelApi. Throws `Unavailable` when the addon is not built. */
export function createNetlinkKernel(options: NetlinkKernelOptions = {}): KernelApi {
  return new NetlinkKernel(options.binding ?? loadNativeBinding(options.addonPath), options);
}
