// SPDX-License-Identifier: Apache-2.0
/**
 * IPv4/IPv6 addresses and CIDR prefixes as numbers, and an address pool.
 *
 * Addresses are handled as `bigint` so that IPv4 and IPv6 share one code path and an IPv6 /64
 * (2^64 addresses) costs no more than an IPv4 /30: a pool keeps sorted ranges of free addresses,
 * never one entry per address. Parsing and formatting go through `ipaddr.js`; formatting follows
 * Go's `net.IP.String()` for the forms NSM uses (dotted quad, RFC 5952 for IPv6).
 *
 * Semantics follow upstream NSM (`sdk:pkg/tools/ippool`, `sdk:pkg/tools/cidr`):
 * - a CIDR is masked to its network, as Go's `net.ParseCIDR` does (`10.0.0.5/24` is `10.0.0.0/24`);
 * - every address of the prefix is usable, the network address included (`172.16.1.100/31` gives
 *   `.100` and `.101`);
 * - `NSM_CIDR_PREFIX` groups: `[v1,v2],v3` is two groups, `{v1,v2}` and `{v3}`.
 */
import ipaddr from "ipaddr.js";
import { Code, invalidArgument, NsmError } from "../core/errors.js";

/** Address family of an {@link IpAddress} or {@link Cidr}. */
export type IpFamily = "ipv4" | "ipv6";

/** Address length in bits per family. */
export const IP_BITS: Readonly<Record<IpFamily, number>> = { ipv4: 32, ipv6: 128 };

/** One parsed address. */
export interface IpAddress {
  readonly family: IpFamily;
  readonly value: bigint;
}

/** One parsed prefix, masked to its network address. */
export interface Cidr {
  readonly family: IpFamily;
  /** The prefix length in bits. */
  readonly prefixLength: number;
  /** The network (first) address. */
  readonly first: bigint;
  /** The last address of the prefix. */
  readonly last: bigint;
  /** Canonical text, e.g. `10.0.0.0/24`. */
  readonly text: string;
}

function bytesToBigint(bytes: readonly number[]): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

function bigintToBytes(value: bigint, bits: number): number[] {
  const out = new Array<number>(bits / 8);
  let v = value;
  for (let i = out.length - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** Parses an address strictly: dotted quad for IPv4, no zone for IPv6. Returns undefined if invalid. */
export function tryParseIp(text: string): IpAddress | undefined {
  const s = text.trim();
  if (ipaddr.IPv4.isValidFourPartDecimal(s)) {
    return { family: "ipv4", value: bytesToBigint(ipaddr.IPv4.parse(s).toByteArray()) };
  }
  if (s.includes(":") && !s.includes("%") && ipaddr.IPv6.isValid(s)) {
    return { family: "ipv6", value: bytesToBigint(ipaddr.IPv6.parse(s).toByteArray()) };
  }
  return undefined;
}

/** Parses an address; anything else is InvalidArgument naming the text. */
export function parseIp(text: string): IpAddress {
  const ip = tryParseIp(text);
  if (!ip) throw invalidArgument(`"${text}" is not a valid IP address`, { reason: "bad-ip" });
  return ip;
}

/** Formats an address as Go does (`192.168.0.1`, `fe80::1`). */
export function formatIp(ip: IpAddress): string {
  return ipaddr.fromByteArray(bigintToBytes(ip.value, IP_BITS[ip.family])).toString();
}

/** Parses `addr/len`, masking host bits (Go `net.ParseCIDR`). Returns undefined if invalid. */
export function tryParseCidr(text: string): Cidr | undefined {
  const s = text.trim();
  const slash = s.indexOf("/");
  if (slash < 0 || slash !== s.lastIndexOf("/")) return undefined;
  const ip = tryParseIp(s.slice(0, slash));
  const lenText = s.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(lenText)) return undefined;
  const prefixLength = Number(lenText);
  const bits = IP_BITS[ip.family];
  if (prefixLength > bits) return undefined;
  const hostBits = BigInt(bits - prefixLength);
  const first = (ip.value >> hostBits) << hostBits;
  const last = first + (1n << hostBits) - 1n;
  return {
    family: ip.family,
    prefixLength,
    first,
    last,
    text: `${formatIp({ family: ip.family, value: first })}/${prefixLength}`,
  };
}

/** Parses `addr/len`; anything else is InvalidArgument naming the text. */
export function parseCidr(text: string): Cidr {
  const c = tryParseCidr(text);
  if (!c)
    throw invalidArgument(`"${text}" is not a valid CIDR prefix (expected e.g. 10.0.0.0/24 or fd00::/64)`, {
      reason: "bad-cidr",
    });
  return c;
}

/** True if `text` is `addr/len` with a valid address and length. */
export function isValidCidr(text: string): boolean {
  return tryParseCidr(text) !== undefined;
}

/** Parses a CIDR, or a bare address as a host prefix (`/32`, `/128`). Invalid input is InvalidArgument. */
export function parsePrefixOrIp(text: string): Cidr {
  const c = tryParseCidr(text);
  if (c) return c;
  const ip = tryParseIp(text);
  if (ip) return parseCidr(`${formatIp(ip)}/${IP_BITS[ip.family]}`);
  throw invalidArgument(`"${text}" is neither a CIDR prefix nor an IP address`, { reason: "bad-cidr" });
}

/** The address of `addr` or `addr/len` (host bits kept), or undefined if it is neither. */
export function addressOf(text: string): IpAddress | undefined {
  const slash = text.indexOf("/");
  return tryParseIp(slash < 0 ? text : text.slice(0, slash));
}

/** `addr/32` or `addr/128`: the host prefix NSM puts in `ip_context` for a point-to-point address. */
export function hostPrefix(ip: IpAddress): string {
  return `${formatIp(ip)}/${IP_BITS[ip.family]}`;
}

/** True if `ip` is inside `cidr` (same family, within its first and last address). */
export function cidrContains(cidr: Cidr, ip: IpAddress): boolean {
  return cidr.family === ip.family && ip.value >= cidr.first && ip.value <= cidr.last;
}

/** One comma-separated item of a CIDR group list, without its brackets; `inside`: in an open group. */
function cidrGroupItem(
  raw: string,
  inside: boolean,
  bad: (why: string) => Error,
): { item: string; opens: boolean; closes: boolean } {
  let item = raw;
  const opens = item.startsWith("[");
  if (opens) {
    if (inside) throw bad(`nested "[" at "${raw}"`);
    item = item.slice(1);
  }
  const closes = item.endsWith("]");
  if (closes) {
    if (!inside && !opens) throw bad(`unbalanced "]" at "${raw}"`);
    item = item.slice(0, -1);
  }
  if (item === "" || item.includes("[") || item.includes("]")) throw bad(`unexpected "${raw}"`);
  return { item, opens, closes };
}

/**
 * Parses the `NSM_CIDR_PREFIX` list syntax into groups: `[a,b],c` → `[["a","b"],["c"]]`.
 * Spaces are ignored; every item is validated. Brackets must balance and not nest.
 */
export function parseCidrGroups(value: string): string[][] {
  const v = value.replaceAll(" ", "");
  if (v === "") return [];
  const bad = (why: string) => invalidArgument(`bad CIDR group list "${value}": ${why}`, { reason: "bad-cidr" });
  const groups: string[][] = [];
  let inside = false;
  for (const raw of v.split(",")) {
    const { item, opens, closes } = cidrGroupItem(raw, inside, bad);
    parseCidr(item);
    if (!inside) groups.push([]);
    groups.at(-1)!.push(item);
    if (opens && !closes) inside = true;
    if (closes) inside = false;
  }
  if (inside) throw bad(`missing "]"`);
  return groups;
}

/** A set of prefixes (both families), for exclusion checks. */
export class PrefixSet {
  readonly #ranges: readonly Cidr[];

  /** Invalid entries are InvalidArgument naming them; bare addresses count as host prefixes. */
  constructor(prefixes: Iterable<string> = []) {
    const ranges: Cidr[] = [];
    for (const p of prefixes) ranges.push(parsePrefixOrIp(p));
    this.#ranges = ranges;
  }

  /** How many prefixes the set holds. */
  get size(): number {
    return this.#ranges.length;
  }

  /** True if one of the prefixes contains `ip`. */
  contains(ip: IpAddress): boolean {
    return this.#ranges.some((r) => cidrContains(r, ip));
  }

  /** The end of the excluded range that contains `ip` (the last excluded address), or undefined. */
  excludedUntil(ip: IpAddress): bigint | undefined {
    let end: bigint | undefined;
    for (const r of this.#ranges) {
      if (cidrContains(r, ip) && (end === undefined || r.last > end)) end = r.last;
    }
    return end;
  }
}

interface Range {
  family: IpFamily;
  start: bigint;
  end: bigint;
}

// Math.min/max do not take bigint.
const minBigint = (a: bigint, b: bigint) => (a < b ? a : b);
const maxBigint = (a: bigint, b: bigint) => (a > b ? a : b);

const familyOrder = (f: IpFamily) => (f === "ipv4" ? 0 : 1);

function compareRanges(a: Range, b: Range): number {
  if (a.family !== b.family) return familyOrder(a.family) - familyOrder(b.family);
  return a.start < b.start ? -1 : a.start > b.start ? 1 : 0;
}

/**
 * A pool of free addresses made of one or several CIDRs (IPv4 and/or IPv6).
 *
 * `allocate` hands out the lowest free address (IPv4 before IPv6) that is not in the given
 * exclusions; `pull` takes one specific address; `release` puts an address back. Addresses
 * outside the pool's CIDRs are never added by `release`.
 */
export class IpPool {
  readonly #cidrs: readonly Cidr[];
  /** Free addresses: sorted, non-overlapping, non-adjacent ranges. */
  #free: Range[] = [];

  /** Bad CIDRs are InvalidArgument naming them. */
  constructor(cidrs: Iterable<string>) {
    const parsed: Cidr[] = [];
    for (const c of cidrs) parsed.push(parseCidr(c));
    this.#cidrs = parsed;
    for (const c of parsed) this.#addRange({ family: c.family, start: c.first, end: c.last });
  }

  /** The pool's prefixes, as given (masked to the network). */
  get cidrs(): readonly string[] {
    return this.#cidrs.map((c) => c.text);
  }

  /** How many addresses are free. */
  get freeCount(): bigint {
    return this.#free.reduce((n, r) => n + (r.end - r.start + 1n), 0n);
  }

  /** True if `ip` belongs to one of the pool's prefixes (free or not). */
  owns(ip: IpAddress): boolean {
    return this.#cidrs.some((c) => cidrContains(c, ip));
  }

  /** True if `ip` is free and not excluded. */
  isFree(ip: IpAddress, exclude?: PrefixSet): boolean {
    if (exclude?.contains(ip)) return false;
    return this.#free.some((r) => r.family === ip.family && ip.value >= r.start && ip.value <= r.end);
  }

  /** The lowest free address outside `exclude`, without taking it; undefined when none is left. */
  peek(exclude?: PrefixSet): IpAddress | undefined {
    for (const r of this.#free) {
      let candidate = r.start;
      while (candidate <= r.end) {
        const until = exclude?.excludedUntil({ family: r.family, value: candidate });
        if (until === undefined) return { family: r.family, value: candidate };
        candidate = until + 1n;
      }
    }
    return undefined;
  }

  /** Takes the lowest free address outside `exclude`. An exhausted pool is ResourceExhausted. */
  allocate(exclude?: PrefixSet): IpAddress {
    const ip = this.peek(exclude);
    if (!ip) {
      throw new NsmError(`no free address left in ${this.cidrs.join(", ")}`, Code.ResourceExhausted, {
        reason: "pool-exhausted",
      });
    }
    this.#remove(ip);
    return ip;
  }

  /** Takes `ip` if it is free and not excluded; returns whether it did. */
  tryPull(ip: IpAddress, exclude?: PrefixSet): boolean {
    if (!this.isFree(ip, exclude)) return false;
    this.#remove(ip);
    return true;
  }

  /** Takes `ip`; an address that is taken, excluded or outside the pool is ResourceExhausted. */
  pull(ip: IpAddress, exclude?: PrefixSet): IpAddress {
    if (!this.tryPull(ip, exclude)) {
      throw new NsmError(
        `address ${formatIp(ip)} is not available in ${this.cidrs.join(", ")}`,
        Code.ResourceExhausted,
        {
          reason: "address-unavailable",
        },
      );
    }
    return ip;
  }

  /** Gives an address back. Addresses outside the pool's prefixes are ignored. */
  release(ip: IpAddress): void {
    if (!this.owns(ip)) return;
    this.#addRange({ family: ip.family, start: ip.value, end: ip.value });
  }

  #remove(ip: IpAddress): void {
    const i = this.#free.findIndex((r) => r.family === ip.family && ip.value >= r.start && ip.value <= r.end);
    if (i < 0) return;
    const r = this.#free[i]!;
    const parts: Range[] = [];
    if (r.start < ip.value) parts.push({ family: r.family, start: r.start, end: ip.value - 1n });
    if (ip.value < r.end) parts.push({ family: r.family, start: ip.value + 1n, end: r.end });
    this.#free.splice(i, 1, ...parts);
  }

  #addRange(add: Range): void {
    const merged: Range[] = [];
    let cur = { ...add };
    for (const r of this.#free) {
      if (r.family !== cur.family || r.end + 1n < cur.start || cur.end + 1n < r.start) {
        merged.push(r);
        continue;
      }
      cur = {
        family: cur.family,
        start: minBigint(r.start, cur.start),
        end: maxBigint(r.end, cur.end),
      };
    }
    merged.push(cur);
    merged.sort(compareRanges);
    this.#free = merged;
  }
}
