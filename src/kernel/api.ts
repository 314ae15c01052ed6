// SPDX-License-Identifier: Apache-2.0
/**
 * `KernelApi`: what the data plane asks of the Linux kernel (links, addresses, routes,
 * neighbours, sysctls), namespace by namespace.
 *
 * Two implementations: `createNetlinkKernel()` (rtnetlink, in process) and
 * `createFakeKernel()` (in memory, for unit tests of higher layers). Both throw
 * `NsmError`s with the same codes: `AlreadyExists` (EEXIST), `NotFound` (ENOENT, ENODEV,
 * ESRCH: a missing link, netns or route), `InvalidArgument` (bad input, EINVAL, ERANGE),
 * `PermissionDenied`, `Unavailable`, otherwise `Internal`.
 *
 * Every operation names the network namespace it acts in as its first argument: a path to a
 * netns file (`/proc/<pid>/ns/net`, `/var/run/netns/<name>`, `/proc/<pid>/fd/<n>`), or
 * `undefined` / `""` for this process's own netns. Links are named by name or ifindex
 * ({@link LinkRef}) *inside* that namespace.
 */
/** A netns by path; `undefined` or `""` is this process's netns. */
export type NetnsPath = string | undefined;

/** A link by name (≤ 15 bytes) or ifindex, looked up in the namespace of the call. */
export type LinkRef = string | number;

/** `IFF_*` interface flags (a subset; see `<linux/if.h>`). */
export const IFF = {
  UP: 0x1,
  BROADCAST: 0x2,
  LOOPBACK: 0x8,
  POINTOPOINT: 0x10,
  RUNNING: 0x40,
  NOARP: 0x80,
  MULTICAST: 0x1000,
  LOWER_UP: 0x10000,
} as const;

/** Route and address scopes (`RT_SCOPE_*`). */
export const Scope = { universe: 0, site: 200, link: 253, host: 254, nowhere: 255 } as const;
export type ScopeName = "universe" | "site" | "link" | "host";

/** Neighbour states (`NUD_*`), a bit mask. */
export const NUD = {
  INCOMPLETE: 0x01,
  REACHABLE: 0x02,
  STALE: 0x04,
  DELAY: 0x08,
  PROBE: 0x10,
  FAILED: 0x20,
  NOARP: 0x40,
  PERMANENT: 0x80,
} as const;
export type NeighborStateName = "permanent" | "reachable" | "stale" | "noarp";

/** The main routing table (`RT_TABLE_MAIN`). */
export const MAIN_TABLE = 254;

/** The counters of one link (the first eight of the kernel's `struct rtnl_link_stats64`). */
export interface LinkStats {
  rxPackets: number;
  txPackets: number;
  rxBytes: number;
  txBytes: number;
  rxErrors: number;
  txErrors: number;
  rxDropped: number;
  txDropped: number;
}

/** A link as the kernel reports it (RTM_NEWLINK). */
export interface LinkInfo {
  index: number;
  name: string;
  /** `IFLA_INFO_KIND`: "veth", "vxlan", "bridge", "tun", …; undefined for `lo` and plain NICs. */
  kind: string | undefined;
  /** `IFLA_IFALIAS`; NSM stores the connection id here. */
  alias: string | undefined;
  mtu: number;
  /** `IFF_*` bits. */
  flags: number;
  /** `IFF_UP` is set (administratively up). */
  up: boolean;
  /** Lower-case `aa:bb:cc:dd:ee:ff`; undefined for links without an L2 address (tun). */
  mac: string | undefined;
  /** `IFLA_LINK`: for a veth the peer's ifindex, which may live in another netns (see `linkNetnsId`). */
  linkIndex?: number;
  /** `IFLA_LINK_NETNSID`: the peer's netns as a netns id local to this netns. */
  linkNetnsId?: number;
  /** `IFLA_MASTER`: the bridge this link is a port of. */
  masterIndex?: number;
  /** VXLAN parameters, for `kind === "vxlan"`. */
  vxlan?: VxlanInfo;
}

export interface VxlanInfo {
  vni: number;
  /** UDP destination port. */
  port: number;
  local?: string;
  /** Remote VTEP (unicast) or multicast group. */
  remote?: string;
  /** ifindex of the underlay device. */
  underlayIndex?: number;
  learning?: boolean;
  ttl?: number;
}

interface NewLinkCommon {
  /** Interface name, at most 15 bytes. */
  name: string;
  mtu?: number;
  /** `aa:bb:cc:dd:ee:ff`. */
  mac?: string;
}

/** A veth pair: `name` is created in the namespace of the call, `peer.name` in `peer.netns`. */
export interface VethSpec extends NewLinkCommon {
  peer: {
    name: string;
    /** Create the peer directly in this netns (no move needed). Default: the namespace of the call. */
    netns?: NetnsPath;
    mtu?: number;
    mac?: string;
  };
}

export interface VxlanSpec extends NewLinkCommon {
  /** VXLAN network identifier, 0 … 2^24−1. */
  vni: number;
  /** Remote VTEP address (or multicast group). */
  remote?: string;
  /** Local tunnel source address. */
  local?: string;
  /** UDP destination port. @default 4789 */
  port?: number;
  /** Underlay device (in the namespace of the call). */
  underlay?: LinkRef;
  /**
   * Create the device directly in this netns (`IFLA_NET_NS_FD`). Its UDP socket, the underlay
   * lookup and the VNI-in-use check stay in the namespace of the call. Default: the namespace
   * of the call.
   */
  netns?: NetnsPath;
  /** @default false */
  learning?: boolean;
  ttl?: number;
}

export type BridgeSpec = NewLinkCommon;

export interface TunSpec {
  name: string;
  /** @default "tun" */
  mode?: "tun" | "tap";
  mtu?: number;
}

/**
 * Changes to one link, applied in a single RTM_SETLINK. The kernel moves the link first (when
 * `netns` is set), then renames it and applies the rest in its new namespace. This is not
 * atomic: a new name already taken in the target netns is refused before anything changes,
 * but a failure after the move (e.g. an MTU the device rejects) leaves the link moved.
 */
export interface LinkChanges {
  /** Move the link into this netns (`""` = this process's netns). */
  netns?: string;
  /** New name. */
  name?: string;
  /** `IFLA_IFALIAS`; `""` clears it. At most 255 bytes. */
  alias?: string;
  mtu?: number;
  /** Set or clear `IFF_UP`. */
  up?: boolean;
  mac?: string;
  /** Enslave to this bridge (looked up in the namespace of the call), or `null` to release. Not with `netns`. */
  master?: LinkRef | null;
}

/** An interface address. */
export interface AddressInfo {
  linkIndex: number;
  family: 4 | 6;
  /** The local address, without prefix length. */
  address: string;
  prefixLength: number;
  /** `address/prefixLength`. */
  cidr: string;
  /** Peer address of a point-to-point address, when it differs from `address`. */
  peer?: string;
  /** `RT_SCOPE_*` number, see {@link Scope}. */
  scope: number;
  /** `IFA_F_*` bits (from `IFA_FLAGS` when present). */
  flags: number;
  /** `IFA_F_TENTATIVE`: IPv6 duplicate address detection still running. */
  tentative: boolean;
  label?: string;
}

export interface AddressOptions {
  /** Skip IPv6 duplicate address detection (`IFA_F_NODAD`). @default true (ignored for IPv4) */
  nodad?: boolean;
  /** Peer address for a point-to-point address. */
  peer?: string;
}

export interface AddressFilter {
  link?: LinkRef;
  family?: 4 | 6;
}

export interface RouteSpec {
  /** Destination CIDR (`10.0.0.0/24`, `fd00::/64`, `0.0.0.0/0`); host bits are cleared. */
  dst: string;
  gateway?: string;
  /** Output interface. */
  link?: LinkRef;
  /** @default "link" without a gateway, "universe" with one */
  scope?: ScopeName;
  /** `RTNH_F_ONLINK`: the gateway is reachable on `link` even without a matching subnet. */
  onlink?: boolean;
  /** @default 254 (main) */
  table?: number;
  /** Route priority (`RTA_PRIORITY`). */
  metric?: number;
  /** Preferred source address (`RTA_PREFSRC`). */
  src?: string;
}

export interface RouteInfo {
  family: 4 | 6;
  /** Destination CIDR; `0.0.0.0/0` / `::/0` for a default route. */
  dst: string;
  gateway?: string;
  linkIndex?: number;
  table: number;
  /** `RT_SCOPE_*` number, see {@link Scope}. */
  scope: number;
  /** `RTPROT_*`: 2 kernel, 3 boot (default for ours), 4 static, … */
  protocol: number;
  /** `RTN_*`: 1 unicast, 2 local, 3 broadcast, … */
  type: number;
  metric?: number;
  src?: string;
  onlink: boolean;
}

export interface RouteFilter {
  family?: 4 | 6;
  /** Only routes of this table. @default 254 (main); 0 = every table */
  table?: number;
  link?: LinkRef;
}

/** An inclusive port range of a policy rule (`FRA_SPORT_RANGE` / `FRA_DPORT_RANGE`). */
export interface PortRange {
  start: number;
  end: number;
}

/**
 * A policy routing rule that looks a packet up in `table` (`ip rule add … lookup TABLE`):
 * `FR_ACT_TO_TBL` with the selectors given.
 */
export interface RuleSpec {
  family: 4 | 6;
  /** Source prefix (`from`); host bits are cleared. @default any */
  src?: string;
  /** IP protocol number (`ipproto`: 6 tcp, 17 udp, …). @default any */
  ipProto?: number;
  sport?: PortRange;
  dport?: PortRange;
  /** The table looked up, 1 … 2^32−1. */
  table: number;
  /** The rule's priority; given to delete, only the rule with it matches. @default the kernel's choice (add), any (delete) */
  priority?: number;
}

/** A rule as the kernel lists it (RTM_NEWRULE). */
export interface RuleInfo {
  family: 4 | 6;
  src?: string;
  ipProto?: number;
  sport?: PortRange;
  dport?: PortRange;
  /** 0 when the rule does not look up a table. */
  table: number;
  priority: number;
  /** `FR_ACT_*`: 1 to table, 6 blackhole, … */
  action: number;
}

export interface NeighborSpec {
  link: LinkRef;
  /** The neighbour's IP address. */
  address: string;
  /** The neighbour's MAC address. */
  mac: string;
  /** @default "permanent" */
  state?: NeighborStateName;
}

export interface NeighborInfo {
  linkIndex: number;
  family: 4 | 6;
  address: string;
  mac?: string;
  /** `NUD_*` bits, see {@link NUD}. */
  state: number;
}

export interface NeighborFilter {
  link?: LinkRef;
  family?: 4 | 6;
}

/** The identity of a netns file: the (st_dev, st_ino) of the nsfs inode. Equal ids = same netns. */
export interface NetnsId {
  dev: bigint;
  ino: bigint;
}

/**
 * Kernel operations, each in the network namespace named by its first argument.
 * Mutations are idempotent where the kernel's "replace" semantics allow (addresses, routes,
 * neighbours); creating a link whose name exists throws `AlreadyExists`.
 */
export interface KernelApi {
  /** Creates a veth pair; the peer may be created directly in another netns. */
  createVeth(netns: NetnsPath, spec: VethSpec): Promise<void>;
  /**
   * Creates a VXLAN device (in `spec.netns` when set). Its UDP socket stays in this netns even
   * if the device lives or moves elsewhere, and a VNI may be used by only one device per UDP
   * port among the devices whose socket is in this netns (else `AlreadyExists`).
   */
  createVxlan(netns: NetnsPath, spec: VxlanSpec): Promise<void>;
  createBridge(netns: NetnsPath, spec: BridgeSpec): Promise<void>;
  /** Creates a persistent TUN/TAP device (no process holds it open). */
  createTun(netns: NetnsPath, spec: TunSpec): Promise<void>;
  /** Throws `NotFound` when there is no such link. */
  getLink(netns: NetnsPath, link: LinkRef): Promise<LinkInfo>;
  /** Like {@link getLink}, but `undefined` when there is no such link. */
  findLink(netns: NetnsPath, link: LinkRef): Promise<LinkInfo | undefined>;
  listLinks(netns: NetnsPath): Promise<LinkInfo[]>;
  /** A link's counters (`IFLA_STATS64`); `undefined` when there is no such link. */
  linkStats(netns: NetnsPath, link: LinkRef): Promise<LinkStats | undefined>;
  /** Move, rename, alias, MTU, up/down, MAC, master; see {@link LinkChanges}. */
  setLink(netns: NetnsPath, link: LinkRef, changes: LinkChanges): Promise<void>;
  /**
   * Deletes a link (a veth's peer goes with it, wherever it is). The kernel unlists the link at
   * once (its name is free, lookups and dumps no longer show it, its addresses and routes are
   * gone) but resolves this only after RCU grace periods (~20 ms); other requests in `netns`
   * do not wait behind it.
   */
  deleteLink(netns: NetnsPath, link: LinkRef): Promise<void>;

  /** Adds or replaces `cidr` (`10.0.0.1/32`, `fd00::1/64`) on a link. */
  replaceAddress(netns: NetnsPath, link: LinkRef, cidr: string, options?: AddressOptions): Promise<void>;
  deleteAddress(netns: NetnsPath, link: LinkRef, cidr: string): Promise<void>;
  listAddresses(netns: NetnsPath, filter?: AddressFilter): Promise<AddressInfo[]>;

  replaceRoute(netns: NetnsPath, route: RouteSpec): Promise<void>;
  deleteRoute(netns: NetnsPath, route: RouteSpec): Promise<void>;
  listRoutes(netns: NetnsPath, filter?: RouteFilter): Promise<RouteInfo[]>;

  /** Adds a policy rule; `AlreadyExists` when one identical to it, priority included, is there. */
  addRule(netns: NetnsPath, rule: RuleSpec): Promise<void>;
  /** Deletes the first rule matching `rule`'s selectors and table; `NotFound` when none does. */
  deleteRule(netns: NetnsPath, rule: RuleSpec): Promise<void>;
  /** The policy rules of one family, or of both (IPv4 first), by priority. */
  listRules(netns: NetnsPath, family?: 4 | 6): Promise<RuleInfo[]>;

  replaceNeighbor(netns: NetnsPath, neighbor: NeighborSpec): Promise<void>;
  deleteNeighbor(netns: NetnsPath, neighbor: Pick<NeighborSpec, "link" | "address">): Promise<void>;
  listNeighbors(netns: NetnsPath, filter?: NeighborFilter): Promise<NeighborInfo[]>;

  /**
   * Writes a sysctl of that netns: `key` is `net.ipv4.ping_group_range` or, when it contains a
   * `/`, a path below `/proc/sys` such as `net/ipv6/conf/nsm-1/disable_ipv6` (use this form for
   * interface names with dots).
   */
  writeSysctl(netns: NetnsPath, key: string, value: string): Promise<void>;

  /** The identity of a netns, for checking that two paths name the same namespace. */
  netnsId(netns: NetnsPath): Promise<NetnsId>;

  /**
   * Every network namespace this process can name, each once (by {@link NetnsId}): its own as
   * `undefined` first, then one path per other namespace, preferring `/var/run/netns/<name>` over
   * `/proc/<pid>/ns/net`. A snapshot: a `/proc` path dies with its process (then `NotFound`).
   * For reconciliation after a restart (finding the links a forwarder made in pods' namespaces).
   */
  listNetns(): Promise<NetnsPath[]>;

  /**
   * Closes the cached socket of one netns (if idle). An open netlink socket keeps its netns
   * alive, so callers release pod namespaces they are done with.
   */
  release(netns: NetnsPath): void;

  /** Releases every socket; later calls reopen lazily. */
  close(): Promise<void>;
}
