// SPDX-License-Identifier: Apache-2.0
/**
 * The rtnetlink wire format, encoded and decoded by hand: `nlmsghdr`, `ifinfomsg`, `ifaddrmsg`,
 * `rtmsg`, `ndmsg`, `rtattr` (nested for `IFLA_LINKINFO` / `IFLA_INFO_DATA`, veth and vxlan).
 *
 * Pure functions only: request builders take resolved numbers (ifindexes, netns fds) and
 * return an {@link NlRequest}; the socket layer adds the sequence number. Multi-byte integers
 * are in host byte order, except the few fields the kernel wants in network order
 * (`IFLA_VXLAN_PORT`). Layouts follow `<linux/netlink.h>`, `<linux/rtnetlink.h>`,
 * `<linux/if_link.h>`, `<linux/if_addr.h>` and `<linux/neighbour.h>`.
 */
import { isIP } from "node:net";
import { endianness } from "node:os";
import ipaddr from "ipaddr.js";
import { invalidArgument } from "../sdk/core/errors.js";
import type {
  AddressInfo,
  LinkInfo,
  LinkStats,
  NeighborInfo,
  PortRange,
  RouteInfo,
  RuleInfo,
  VxlanInfo,
} from "./api.js";

const LE = endianness() === "LE";

export const AF = { UNSPEC: 0, INET: 2, INET6: 10 } as const;
export const NETLINK_ROUTE = 0;
export const NETLINK_GENERIC = 16;

export const NLMSG = { NOOP: 1, ERROR: 2, DONE: 3, OVERRUN: 4 } as const;
export const NLM_F = {
  REQUEST: 0x1,
  MULTI: 0x2,
  ACK: 0x4,
  ECHO: 0x8,
  DUMP_INTR: 0x10,
  DUMP: 0x300,
  REPLACE: 0x100,
  EXCL: 0x200,
  CREATE: 0x400,
  /** In NLMSG_ERROR: the request was not echoed back (NETLINK_CAP_ACK). */
  CAPPED: 0x100,
  /** In NLMSG_ERROR: extended-ack TLVs follow. */
  ACK_TLVS: 0x200,
} as const;
/** Extended-ack TLVs (`NLMSGERR_ATTR_*`). */
export const NLMSGERR_ATTR = { MSG: 1, OFFS: 2 } as const;

export const RTM = {
  NEWLINK: 16,
  DELLINK: 17,
  GETLINK: 18,
  SETLINK: 19,
  NEWADDR: 20,
  DELADDR: 21,
  GETADDR: 22,
  NEWROUTE: 24,
  DELROUTE: 25,
  GETROUTE: 26,
  NEWNEIGH: 28,
  DELNEIGH: 29,
  GETNEIGH: 30,
  NEWRULE: 32,
  DELRULE: 33,
  GETRULE: 34,
} as const;

export const IFLA = {
  ADDRESS: 1,
  IFNAME: 3,
  MTU: 4,
  LINK: 5,
  MASTER: 10,
  LINKINFO: 18,
  IFALIAS: 20,
  NET_NS_FD: 28,
  EXT_MASK: 29,
  LINK_NETNSID: 37,
} as const;
export const IFLA_INFO = { KIND: 1, DATA: 2 } as const;
export const VETH_INFO_PEER = 1;
export const IFLA_VXLAN = {
  ID: 1,
  GROUP: 2,
  LINK: 3,
  LOCAL: 4,
  TTL: 5,
  LEARNING: 7,
  PORT: 15,
  GROUP6: 16,
  LOCAL6: 17,
} as const;
/** `RTEXT_FILTER_SKIP_STATS`: leave the (large) statistics out of link replies. */
export const RTEXT_FILTER_SKIP_STATS = 1 << 3;

export const IFA = { ADDRESS: 1, LOCAL: 2, LABEL: 3, FLAGS: 8 } as const;
export const IFA_F = { NODAD: 0x02, TENTATIVE: 0x40, PERMANENT: 0x80 } as const;

export const RTA = { DST: 1, OIF: 4, GATEWAY: 5, PRIORITY: 6, PREFSRC: 7, TABLE: 15 } as const;
export const RTN_UNICAST = 1;
export const RTPROT_BOOT = 3;
export const RTNH_F_ONLINK = 0x4;
export const RT_SCOPE_NOWHERE = 255;

export const NDA = { DST: 1, LLADDR: 2 } as const;

const NLA_TYPE_MASK = 0x3fff;
const NLMSG_HDRLEN = 16;

export const align4 = (n: number) => (n + 3) & ~3;

// ---------------------------------------------------------------- integers

function putU16(b: Buffer, off: number, v: number): void {
  if (LE) b.writeUInt16LE(v, off);
  else b.writeUInt16BE(v, off);
}
function putU32(b: Buffer, off: number, v: number): void {
  if (LE) b.writeUInt32LE(v >>> 0, off);
  else b.writeUInt32BE(v >>> 0, off);
}
export const getU16 = (b: Buffer, off: number) => (LE ? b.readUInt16LE(off) : b.readUInt16BE(off));
export const getU32 = (b: Buffer, off: number) => (LE ? b.readUInt32LE(off) : b.readUInt32BE(off));
export const getI32 = (b: Buffer, off: number) => (LE ? b.readInt32LE(off) : b.readInt32BE(off));

// ---------------------------------------------------------------- addresses

export interface IpBytes {
  family: 4 | 6;
  bytes: Buffer;
}

/** Parses a plain IPv4 or IPv6 address (no prefix). Throws InvalidArgument. */
export function parseIp(s: string): IpBytes {
  const v = isIP(s);
  if (v === 0) throw invalidArgument(`not an IP address: ${JSON.stringify(s)}`);
  return { family: v as 4 | 6, bytes: Buffer.from(ipaddr.parse(s).toByteArray()) };
}

/** Parses `addr/len`; a bare address gets the full length (/32, /128). Throws InvalidArgument. */
export function parseCidr(s: string): IpBytes & { prefixLength: number } {
  const slash = s.indexOf("/");
  const ip = parseIp(slash < 0 ? s : s.slice(0, slash));
  const max = ip.family === 4 ? 32 : 128;
  if (slash < 0) return { ...ip, prefixLength: max };
  const lenText = s.slice(slash + 1);
  const prefixLength = Number(lenText);
  if (!/^\d{1,3}$/.test(lenText) || prefixLength > max) {
    throw invalidArgument(`bad prefix length in ${JSON.stringify(s)}`);
  }
  return { ...ip, prefixLength };
}

/** Clears the host bits of an address. */
export function maskBytes(bytes: Buffer, prefixLength: number): Buffer {
  const out = Buffer.from(bytes);
  for (let i = 0; i < out.length; i++) {
    const keep = Math.max(0, Math.min(8, prefixLength - i * 8));
    out[i] = out[i]! & ((0xff << (8 - keep)) & 0xff);
  }
  return out;
}

export function formatIp(bytes: Buffer): string {
  return ipaddr.fromByteArray([...bytes]).toString();
}

/** Parses `aa:bb:cc:dd:ee:ff` (or `-` separated). Throws InvalidArgument. */
export function parseMac(s: string): Buffer {
  if (!/^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$/.test(s))
    throw invalidArgument(`not a MAC address: ${JSON.stringify(s)}`);
  return Buffer.from(s.replace(/[:-]/g, ""), "hex");
}

export function formatMac(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");
}

// ---------------------------------------------------------------- encoding

/** A request without its sequence number. */
export interface NlRequest {
  type: number;
  flags: number;
  body: Buffer;
}

/** The full datagram: nlmsghdr (pid 0: the kernel fills in our port) + body. */
export function encodeRequest(req: NlRequest, seq: number): Buffer {
  const b = Buffer.alloc(NLMSG_HDRLEN + req.body.length);
  putU32(b, 0, b.length);
  putU16(b, 4, req.type);
  putU16(b, 6, req.flags);
  putU32(b, 8, seq);
  putU32(b, 12, 0);
  req.body.copy(b, NLMSG_HDRLEN);
  return b;
}

/** One `rtattr`, padded to 4 bytes (the length field excludes the padding). */
export function attr(type: number, payload: Uint8Array): Buffer {
  const len = 4 + payload.length;
  const b = Buffer.alloc(align4(len));
  putU16(b, 0, len);
  putU16(b, 2, type);
  b.set(payload, 4);
  return b;
}
export const attrU8 = (type: number, v: number) => attr(type, Buffer.of(v & 0xff));
export function attrU32(type: number, v: number): Buffer {
  const p = Buffer.alloc(4);
  putU32(p, 0, v);
  return attr(type, p);
}
/** A 16-bit value in network byte order. */
export function attrBe16(type: number, v: number): Buffer {
  const p = Buffer.alloc(2);
  p.writeUInt16BE(v, 0);
  return attr(type, p);
}
/** NUL-terminated string (`NLA_STRING` names such as IFLA_IFNAME). */
export const attrStrz = (type: number, s: string) => attr(type, Buffer.from(`${s}\0`, "utf8"));
/** String without terminator (IFLA_IFALIAS, IFLA_INFO_KIND as iproute2 sends them). */
export const attrStr = (type: number, s: string) => attr(type, Buffer.from(s, "utf8"));
/** A nested attribute: its payload is the concatenation of `children`. */
export const attrNest = (type: number, ...children: Buffer[]) => attr(type, Buffer.concat(children));

export interface IfInfoMsg {
  family?: number;
  type?: number;
  index?: number;
  flags?: number;
  change?: number;
}
export function ifinfomsg(m: IfInfoMsg = {}): Buffer {
  const b = Buffer.alloc(16);
  b[0] = m.family ?? AF.UNSPEC;
  putU16(b, 2, m.type ?? 0);
  putU32(b, 4, m.index ?? 0);
  putU32(b, 8, m.flags ?? 0);
  putU32(b, 12, m.change ?? 0);
  return b;
}

export function ifaddrmsg(m: {
  family: number;
  prefixLength?: number;
  flags?: number;
  scope?: number;
  index?: number;
}) {
  const b = Buffer.alloc(8);
  b[0] = m.family;
  b[1] = m.prefixLength ?? 0;
  b[2] = (m.flags ?? 0) & 0xff;
  b[3] = m.scope ?? 0;
  putU32(b, 4, m.index ?? 0);
  return b;
}

export interface RtMsg {
  family: number;
  dstLength?: number;
  table?: number;
  protocol?: number;
  scope?: number;
  type?: number;
  flags?: number;
}
export function rtmsg(m: RtMsg): Buffer {
  const b = Buffer.alloc(12);
  b[0] = m.family;
  b[1] = m.dstLength ?? 0;
  b[4] = m.table ?? 0;
  b[5] = m.protocol ?? 0;
  b[6] = m.scope ?? 0;
  b[7] = m.type ?? 0;
  putU32(b, 8, m.flags ?? 0);
  return b;
}

export function ndmsg(m: { family: number; index?: number; state?: number; flags?: number }): Buffer {
  const b = Buffer.alloc(12);
  b[0] = m.family;
  putU32(b, 4, m.index ?? 0);
  putU16(b, 8, m.state ?? 0);
  b[10] = m.flags ?? 0;
  return b;
}

const familyOf = (f: 4 | 6) => (f === 4 ? AF.INET : AF.INET6);

/** Link attributes shared by create and change requests. */
export interface LinkAttrs {
  name?: string;
  mtu?: number;
  mac?: Buffer;
  /** Move / create into the netns of this open fd. */
  netnsFd?: number;
  alias?: string;
  /** ifindex of the master bridge; 0 releases. */
  master?: number;
}

function linkAttrs(a: LinkAttrs): Buffer[] {
  const out: Buffer[] = [];
  if (a.name !== undefined) out.push(attrStrz(IFLA.IFNAME, a.name));
  if (a.mtu !== undefined) out.push(attrU32(IFLA.MTU, a.mtu));
  if (a.mac !== undefined) out.push(attr(IFLA.ADDRESS, a.mac));
  if (a.netnsFd !== undefined) out.push(attrU32(IFLA.NET_NS_FD, a.netnsFd));
  if (a.alias !== undefined) out.push(attrStr(IFLA.IFALIAS, a.alias));
  if (a.master !== undefined) out.push(attrU32(IFLA.MASTER, a.master));
  return out;
}

const CREATE_FLAGS = NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.EXCL;
const REPLACE_FLAGS = NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.REPLACE;
const CHANGE_FLAGS = NLM_F.REQUEST | NLM_F.ACK;
const DUMP_FLAGS = NLM_F.REQUEST | NLM_F.DUMP;

/** RTM_NEWLINK (create, fail if it exists) of a device of `kind`, with `IFLA_INFO_DATA` children. */
export function newLinkRequest(kind: string, link: LinkAttrs & { name: string }, data: Buffer[] = []): NlRequest {
  const info = [attrStr(IFLA_INFO.KIND, kind)];
  if (data.length > 0) info.push(attrNest(IFLA_INFO.DATA, ...data));
  return {
    type: RTM.NEWLINK,
    flags: CREATE_FLAGS,
    body: Buffer.concat([ifinfomsg(), ...linkAttrs(link), attrNest(IFLA.LINKINFO, ...info)]),
  };
}

/** `IFLA_INFO_DATA` of a veth: the peer as an ifinfomsg plus its attributes. */
export function vethData(peer: LinkAttrs & { name: string }): Buffer[] {
  return [attrNest(VETH_INFO_PEER, ifinfomsg(), ...linkAttrs(peer))];
}

export interface VxlanData {
  vni: number;
  port: number;
  local?: IpBytes;
  remote?: IpBytes;
  underlayIndex?: number;
  learning?: boolean;
  ttl?: number;
}
export function vxlanData(v: VxlanData): Buffer[] {
  const out = [attrU32(IFLA_VXLAN.ID, v.vni), attrBe16(IFLA_VXLAN.PORT, v.port)];
  if (v.remote) out.push(attr(v.remote.family === 4 ? IFLA_VXLAN.GROUP : IFLA_VXLAN.GROUP6, v.remote.bytes));
  if (v.local) out.push(attr(v.local.family === 4 ? IFLA_VXLAN.LOCAL : IFLA_VXLAN.LOCAL6, v.local.bytes));
  if (v.underlayIndex !== undefined) out.push(attrU32(IFLA_VXLAN.LINK, v.underlayIndex));
  out.push(attrU8(IFLA_VXLAN.LEARNING, v.learning ? 1 : 0));
  if (v.ttl !== undefined) out.push(attrU8(IFLA_VXLAN.TTL, v.ttl));
  return out;
}

/**
 * RTM_SETLINK of the link `index`, or of the link named `lookupName` when `index` is 0
 * (then `changes.name` must be unset: the kernel reads IFLA_IFNAME as the lookup key).
 */
export function setLinkRequest(index: number, lookupName: string | undefined, changes: LinkAttrs & { up?: boolean }) {
  const IFF_UP = 1;
  const attrs = linkAttrs(index === 0 ? { ...changes, name: lookupName } : changes);
  const info = ifinfomsg({
    index,
    flags: changes.up ? IFF_UP : 0,
    change: changes.up === undefined ? 0 : IFF_UP,
  });
  return { type: RTM.SETLINK, flags: CHANGE_FLAGS, body: Buffer.concat([info, ...attrs]) } satisfies NlRequest;
}

/** RTM_GETLINK of one link, by index or (index 0) by name. */
export function getLinkRequest(index: number, name?: string): NlRequest {
  const attrs = [attrU32(IFLA.EXT_MASK, RTEXT_FILTER_SKIP_STATS)];
  if (index === 0 && name !== undefined) attrs.unshift(attrStrz(IFLA.IFNAME, name));
  return { type: RTM.GETLINK, flags: NLM_F.REQUEST, body: Buffer.concat([ifinfomsg({ index }), ...attrs]) };
}

export function dumpLinksRequest(): NlRequest {
  return {
    type: RTM.GETLINK,
    flags: DUMP_FLAGS,
    body: Buffer.concat([ifinfomsg(), attrU32(IFLA.EXT_MASK, RTEXT_FILTER_SKIP_STATS)]),
  };
}

export function delLinkRequest(index: number, name?: string): NlRequest {
  const attrs = index === 0 && name !== undefined ? [attrStrz(IFLA.IFNAME, name)] : [];
  return { type: RTM.DELLINK, flags: CHANGE_FLAGS, body: Buffer.concat([ifinfomsg({ index }), ...attrs]) };
}

export interface AddrData {
  index: number;
  address: IpBytes & { prefixLength: number };
  peer?: IpBytes;
  nodad?: boolean;
}
/** RTM_NEWADDR with CREATE|REPLACE, or RTM_DELADDR. */
export function addrRequest(op: "replace" | "delete", a: AddrData): NlRequest {
  const family = familyOf(a.address.family);
  const flags = op === "replace" && a.address.family === 6 && a.nodad ? IFA_F.NODAD : 0;
  const attrs = [attr(IFA.LOCAL, a.address.bytes)];
  if (op === "replace") {
    attrs.push(attr(IFA.ADDRESS, (a.peer ?? a.address).bytes));
    attrs.push(attrU32(IFA.FLAGS, flags));
  }
  return {
    type: op === "replace" ? RTM.NEWADDR : RTM.DELADDR,
    flags: op === "replace" ? REPLACE_FLAGS : CHANGE_FLAGS,
    body: Buffer.concat([ifaddrmsg({ family, prefixLength: a.address.prefixLength, flags, index: a.index }), ...attrs]),
  };
}

export function dumpAddrsRequest(family?: 4 | 6): NlRequest {
  const f = family === undefined ? AF.UNSPEC : familyOf(family);
  return { type: RTM.GETADDR, flags: DUMP_FLAGS, body: ifaddrmsg({ family: f }) };
}

export interface RouteData {
  dst: IpBytes & { prefixLength: number };
  gateway?: IpBytes;
  oif?: number;
  scope: number;
  onlink?: boolean;
  table: number;
  metric?: number;
  prefsrc?: IpBytes;
}
/** RTM_NEWROUTE with CREATE|REPLACE (unicast, protocol boot like iproute2), or RTM_DELROUTE. */
export function routeRequest(op: "replace" | "delete", r: RouteData): NlRequest {
  const del = op === "delete";
  const head = rtmsg({
    family: familyOf(r.dst.family),
    dstLength: r.dst.prefixLength,
    table: r.table < 256 ? r.table : 0,
    protocol: del ? 0 : RTPROT_BOOT,
    scope: del ? RT_SCOPE_NOWHERE : r.scope,
    type: del ? 0 : RTN_UNICAST,
    flags: r.onlink ? RTNH_F_ONLINK : 0,
  });
  const attrs = [attrU32(RTA.TABLE, r.table)];
  if (r.dst.prefixLength > 0) attrs.push(attr(RTA.DST, maskBytes(r.dst.bytes, r.dst.prefixLength)));
  if (r.gateway) attrs.push(attr(RTA.GATEWAY, r.gateway.bytes));
  if (r.oif !== undefined) attrs.push(attrU32(RTA.OIF, r.oif));
  if (r.metric !== undefined) attrs.push(attrU32(RTA.PRIORITY, r.metric));
  if (r.prefsrc) attrs.push(attr(RTA.PREFSRC, r.prefsrc.bytes));
  return {
    type: del ? RTM.DELROUTE : RTM.NEWROUTE,
    flags: del ? CHANGE_FLAGS : REPLACE_FLAGS,
    body: Buffer.concat([head, ...attrs]),
  };
}

export function dumpRoutesRequest(family?: 4 | 6): NlRequest {
  const f = family === undefined ? AF.UNSPEC : familyOf(family);
  return { type: RTM.GETROUTE, flags: DUMP_FLAGS, body: rtmsg({ family: f }) };
}

/** `FRA_*` attributes of a policy rule (`<linux/fib_rules.h>`). */
export const FRA = { SRC: 2, PRIORITY: 6, TABLE: 15, IP_PROTO: 22, SPORT_RANGE: 23, DPORT_RANGE: 24 } as const;
/** `FR_ACT_TO_TBL`. */
export const FR_ACT_TO_TBL = 1;

export interface RuleData {
  family: 4 | 6;
  src?: IpBytes & { prefixLength: number };
  ipProto?: number;
  sport?: PortRange;
  dport?: PortRange;
  table: number;
  priority?: number;
}

/** `struct fib_rule_hdr`: family, dst_len, src_len, tos, table, res1, res2, action, flags. */
function fibRuleHdr(family: number, srcLength: number, table: number, action: number): Buffer {
  const b = Buffer.alloc(12);
  b[0] = family;
  b[2] = srcLength;
  b[4] = table;
  b[7] = action;
  return b;
}

function attrPortRange(type: number, r: PortRange): Buffer {
  const p = Buffer.alloc(4);
  putU16(p, 0, r.start);
  putU16(p, 2, r.end);
  return attr(type, p);
}

/** RTM_NEWRULE with CREATE|EXCL (an identical rule is EEXIST), or RTM_DELRULE. */
export function ruleRequest(op: "add" | "delete", r: RuleData): NlRequest {
  const head = fibRuleHdr(familyOf(r.family), r.src?.prefixLength ?? 0, r.table < 256 ? r.table : 0, FR_ACT_TO_TBL);
  const attrs = [attrU32(FRA.TABLE, r.table)];
  if (r.src && r.src.prefixLength > 0) attrs.push(attr(FRA.SRC, maskBytes(r.src.bytes, r.src.prefixLength)));
  if (r.priority !== undefined) attrs.push(attrU32(FRA.PRIORITY, r.priority));
  if (r.ipProto !== undefined) attrs.push(attrU8(FRA.IP_PROTO, r.ipProto));
  if (r.sport) attrs.push(attrPortRange(FRA.SPORT_RANGE, r.sport));
  if (r.dport) attrs.push(attrPortRange(FRA.DPORT_RANGE, r.dport));
  return {
    type: op === "add" ? RTM.NEWRULE : RTM.DELRULE,
    flags: op === "add" ? CREATE_FLAGS : CHANGE_FLAGS,
    body: Buffer.concat([head, ...attrs]),
  };
}

export function dumpRulesRequest(family?: 4 | 6): NlRequest {
  const f = family === undefined ? AF.UNSPEC : familyOf(family);
  return { type: RTM.GETRULE, flags: DUMP_FLAGS, body: fibRuleHdr(f, 0, 0, 0) };
}

export interface NeighData {
  index: number;
  address: IpBytes;
  mac?: Buffer;
  state?: number;
}
/** RTM_NEWNEIGH with CREATE|REPLACE, or RTM_DELNEIGH. */
export function neighRequest(op: "replace" | "delete", n: NeighData): NlRequest {
  const del = op === "delete";
  const attrs = [attr(NDA.DST, n.address.bytes)];
  if (!del && n.mac) attrs.push(attr(NDA.LLADDR, n.mac));
  return {
    type: del ? RTM.DELNEIGH : RTM.NEWNEIGH,
    flags: del ? CHANGE_FLAGS : REPLACE_FLAGS,
    body: Buffer.concat([
      ndmsg({ family: familyOf(n.address.family), index: n.index, state: del ? 0 : n.state }),
      ...attrs,
    ]),
  };
}

export function dumpNeighRequest(family?: 4 | 6): NlRequest {
  const f = family === undefined ? AF.UNSPEC : familyOf(family);
  return { type: RTM.GETNEIGH, flags: DUMP_FLAGS, body: ndmsg({ family: f }) };
}

// ---------------------------------------------------------------- decoding

export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /** Everything after the nlmsghdr, up to nlmsg_len. */
  payload: Buffer;
}

/** Splits a datagram (or several concatenated) into messages; stops at a malformed header. */
export function parseMessages(buf: Buffer): NlMessage[] {
  const out: NlMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = getU32(buf, off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) break;
    out.push({
      type: getU16(buf, off + 4),
      flags: getU16(buf, off + 6),
      seq: getU32(buf, off + 8),
      pid: getU32(buf, off + 12),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return out;
}

/** The attributes in `buf` from `start`, by type (nested/byte-order flag bits removed; last one wins). */
export function parseAttrs(buf: Buffer, start = 0): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = start;
  while (off + 4 <= buf.length) {
    const len = getU16(buf, off);
    if (len < 4 || off + len > buf.length) break;
    out.set(getU16(buf, off + 2) & NLA_TYPE_MASK, buf.subarray(off + 4, off + len));
    off += align4(len);
  }
  return out;
}

/** A string attribute without its NUL terminator(s). */
export function attrString(b: Buffer | undefined): string | undefined {
  if (b === undefined) return undefined;
  let end = b.indexOf(0);
  if (end < 0) end = b.length;
  return b.subarray(0, end).toString("utf8");
}

const u32Attr = (b: Buffer | undefined) => (b !== undefined && b.length >= 4 ? getU32(b, 0) : undefined);

export interface NlError {
  /** Positive errno; 0 for an ACK. */
  errno: number;
  /** `NLMSGERR_ATTR_MSG`, the kernel's extended-ack text. */
  extack?: string;
  /** `NLMSGERR_ATTR_OFFS`: byte offset of the offending attribute in the request. */
  offset?: number;
}

/** Decodes an NLMSG_ERROR payload: `int error; struct nlmsghdr msg; [payload]; [TLVs]`. */
export function decodeError(m: NlMessage): NlError {
  const p = m.payload;
  if (p.length < 4) return { errno: 0 };
  const errno = Math.abs(getI32(p, 0)); // the kernel sends -errno
  const out: NlError = { errno };
  if (!(m.flags & NLM_F.ACK_TLVS) || p.length < 4 + NLMSG_HDRLEN) return out;
  const echoed = m.flags & NLM_F.CAPPED ? NLMSG_HDRLEN : align4(getU32(p, 4));
  const tlvs = parseAttrs(p, 4 + echoed);
  const msg = attrString(tlvs.get(NLMSGERR_ATTR.MSG));
  if (msg) out.extack = msg;
  const offs = u32Attr(tlvs.get(NLMSGERR_ATTR.OFFS));
  if (offs !== undefined) out.offset = offs;
  return out;
}

/** NLMSG_DONE of a dump carries an `int` status (negative errno on a failed dump). */
export function decodeDone(m: NlMessage): number {
  return m.payload.length >= 4 ? Math.abs(getI32(m.payload, 0)) : 0;
}

const familyFromAf = (af: number): 4 | 6 => (af === AF.INET6 ? 6 : 4);

function decodeVxlan(data: Map<number, Buffer>): VxlanInfo {
  const ip = (v4: number, v6: number) => {
    const b = data.get(v4) ?? data.get(v6);
    return b === undefined ? undefined : formatIp(b);
  };
  const port = data.get(IFLA_VXLAN.PORT);
  const info: VxlanInfo = {
    vni: u32Attr(data.get(IFLA_VXLAN.ID)) ?? 0,
    port: port === undefined ? 0 : port.readUInt16BE(0),
  };
  const local = ip(IFLA_VXLAN.LOCAL, IFLA_VXLAN.LOCAL6);
  if (local) info.local = local;
  const remote = ip(IFLA_VXLAN.GROUP, IFLA_VXLAN.GROUP6);
  if (remote) info.remote = remote;
  const underlay = u32Attr(data.get(IFLA_VXLAN.LINK));
  if (underlay) info.underlayIndex = underlay;
  const learning = data.get(IFLA_VXLAN.LEARNING);
  if (learning) info.learning = learning[0] !== 0;
  const ttl = data.get(IFLA_VXLAN.TTL);
  if (ttl) info.ttl = ttl[0]!;
  return info;
}

/** RTM_NEWLINK payload → LinkInfo. */
export function decodeLink(p: Buffer): LinkInfo {
  const attrs = parseAttrs(p, 16);
  const flags = getU32(p, 8);
  const linkinfo = attrs.get(IFLA.LINKINFO);
  const info = linkinfo ? parseAttrs(linkinfo) : undefined;
  const kind = attrString(info?.get(IFLA_INFO.KIND));
  const mac = attrs.get(IFLA.ADDRESS);
  const link: LinkInfo = {
    index: getI32(p, 4),
    name: attrString(attrs.get(IFLA.IFNAME)) ?? "",
    kind,
    alias: attrString(attrs.get(IFLA.IFALIAS)),
    mtu: u32Attr(attrs.get(IFLA.MTU)) ?? 0,
    flags,
    up: (flags & 1) !== 0,
    mac: mac && mac.length === 6 ? formatMac(mac) : undefined,
  };
  const linkIndex = u32Attr(attrs.get(IFLA.LINK));
  if (linkIndex !== undefined) link.linkIndex = linkIndex;
  const nsid = attrs.get(IFLA.LINK_NETNSID);
  if (nsid !== undefined) link.linkNetnsId = getI32(nsid, 0);
  const master = u32Attr(attrs.get(IFLA.MASTER));
  if (master !== undefined) link.masterIndex = master;
  const data = info?.get(IFLA_INFO.DATA);
  if (kind === "vxlan" && data) link.vxlan = decodeVxlan(parseAttrs(data));
  return link;
}

/** RTM_NEWADDR payload → AddressInfo. */
export function decodeAddress(p: Buffer): AddressInfo {
  const attrs = parseAttrs(p, 8);
  const local = attrs.get(IFA.LOCAL);
  const address = attrs.get(IFA.ADDRESS);
  const mine = local ?? address ?? Buffer.alloc(p[0] === AF.INET6 ? 16 : 4);
  const flags = u32Attr(attrs.get(IFA.FLAGS)) ?? p[2]!;
  const text = formatIp(mine);
  const info: AddressInfo = {
    linkIndex: getU32(p, 4),
    family: familyFromAf(p[0]!),
    address: text,
    prefixLength: p[1]!,
    cidr: `${text}/${p[1]}`,
    scope: p[3]!,
    flags,
    tentative: (flags & IFA_F.TENTATIVE) !== 0,
  };
  if (local && address && !local.equals(address)) info.peer = formatIp(address);
  const label = attrString(attrs.get(IFA.LABEL));
  if (label) info.label = label;
  return info;
}

/** RTM_NEWROUTE payload → RouteInfo. */
export function decodeRoute(p: Buffer): RouteInfo {
  const attrs = parseAttrs(p, 12);
  const family = familyFromAf(p[0]!);
  const dst = attrs.get(RTA.DST) ?? Buffer.alloc(family === 4 ? 4 : 16);
  const info: RouteInfo = {
    family,
    dst: `${formatIp(dst)}/${p[1]}`,
    table: u32Attr(attrs.get(RTA.TABLE)) ?? p[4]!,
    protocol: p[5]!,
    scope: p[6]!,
    type: p[7]!,
    onlink: (getU32(p, 8) & RTNH_F_ONLINK) !== 0,
  };
  const gw = attrs.get(RTA.GATEWAY);
  if (gw) info.gateway = formatIp(gw);
  const oif = u32Attr(attrs.get(RTA.OIF));
  if (oif !== undefined) info.linkIndex = oif;
  const metric = u32Attr(attrs.get(RTA.PRIORITY));
  if (metric !== undefined) info.metric = metric;
  const src = attrs.get(RTA.PREFSRC);
  if (src) info.src = formatIp(src);
  return info;
}

const portRangeAttr = (b: Buffer | undefined): PortRange | undefined =>
  b !== undefined && b.length >= 4 ? { start: getU16(b, 0), end: getU16(b, 2) } : undefined;

/** RTM_NEWRULE payload → RuleInfo. */
export function decodeRule(p: Buffer): RuleInfo {
  const attrs = parseAttrs(p, 12);
  const family = familyFromAf(p[0]!);
  const info: RuleInfo = {
    family,
    table: u32Attr(attrs.get(FRA.TABLE)) ?? p[4]!,
    priority: u32Attr(attrs.get(FRA.PRIORITY)) ?? 0,
    action: p[7]!,
  };
  const src = attrs.get(FRA.SRC);
  if (src && p[2]! > 0) info.src = `${formatIp(src)}/${p[2]}`;
  const proto = attrs.get(FRA.IP_PROTO);
  if (proto && proto.length >= 1) info.ipProto = proto[0]!;
  const sport = portRangeAttr(attrs.get(FRA.SPORT_RANGE));
  if (sport) info.sport = sport;
  const dport = portRangeAttr(attrs.get(FRA.DPORT_RANGE));
  if (dport) info.dport = dport;
  return info;
}

/** RTM_NEWNEIGH payload → NeighborInfo. */
export function decodeNeighbor(p: Buffer): NeighborInfo {
  const attrs = parseAttrs(p, 12);
  const family = familyFromAf(p[0]!);
  const dst = attrs.get(NDA.DST) ?? Buffer.alloc(family === 4 ? 4 : 16);
  const info: NeighborInfo = { linkIndex: getI32(p, 4), family, address: formatIp(dst), state: getU16(p, 8) };
  const ll = attrs.get(NDA.LLADDR);
  if (ll && ll.length === 6) info.mac = formatMac(ll);
  return info;
}

// ---------------------------------------------------------------- link statistics

/** `IFLA_STATS64`: a `struct rtnl_link_stats64` (u64 counters, host byte order). */
export const IFLA_STATS64 = 23;

/** RTM_GETLINK of one link (by index, or by name when index is 0) with its statistics. */
export function getLinkStatsRequest(index: number, name?: string): NlRequest {
  const attrs = index === 0 && name !== undefined ? [attrStrz(IFLA.IFNAME, name)] : [];
  return { type: RTM.GETLINK, flags: NLM_F.REQUEST, body: Buffer.concat([ifinfomsg({ index }), ...attrs]) };
}

const STATS64_FIELDS = [
  "rxPackets",
  "txPackets",
  "rxBytes",
  "txBytes",
  "rxErrors",
  "txErrors",
  "rxDropped",
  "txDropped",
] as const;

/** RTM_NEWLINK payload → its IFLA_STATS64 counters, or undefined when the reply carries none. */
export function decodeLinkStats(p: Buffer): LinkStats | undefined {
  const raw = parseAttrs(p, 16).get(IFLA_STATS64);
  if (!raw || raw.length < STATS64_FIELDS.length * 8) return undefined;
  const stats = {} as LinkStats;
  STATS64_FIELDS.forEach((field, i) => {
    stats[field] = Number(LE ? raw.readBigUInt64LE(i * 8) : raw.readBigUInt64BE(i * 8));
  });
  return stats;
}
