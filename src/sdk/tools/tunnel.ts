// SPDX-License-Identifier: Apache-2.0
/**
 * Small pure helpers shared by the remote mechanism elements (VXLAN, WireGuard): tunnel
 * endpoint parameters, the MTU a tunnel leaves, and the bytewise address comparison of the
 * VNI parity rule.
 */
import { type Connection, ConnectionContextSchema, create, type Mechanism } from "../../api/index.js";
import { invalidArgument } from "../core/errors.js";
import { type IpAddress, tryParseIp } from "./cidr.js";

/** Largest UDP port. */
const MAX_PORT = 0xffff;

/** Parses a tunnel address option; InvalidArgument naming `what` otherwise. */
export function parseTunnelIp(text: string | undefined, what: string): IpAddress {
  const ip = text === undefined ? undefined : tryParseIp(text);
  if (!ip) throw invalidArgument(`${what}: tunnelIp ${JSON.stringify(text)} is not an IP address`);
  return ip;
}

/** Checks a UDP port option (1 … 65535). */
export function checkPort(port: number, what: string, field = "port"): number {
  if (!Number.isInteger(port) || port < 1 || port > MAX_PORT) {
    throw invalidArgument(`${what}: ${field} must be an integer in 1..65535, got ${port}`);
  }
  return port;
}

/** Checks an MTU option (at least 1280 + the tunnel overhead, at most 65535). */
export function checkUnderlayMtu(mtu: number, overhead: number, what: string): number {
  if (!Number.isInteger(mtu) || mtu - overhead < 576 || mtu > MAX_PORT) {
    throw invalidArgument(`${what}: underlayMtu ${mtu} leaves no usable MTU after ${overhead} bytes of overhead`);
  }
  return mtu;
}

/**
 * The address as the 16 bytes Go's `net.ParseIP` returns (IPv4 as `::ffff:a.b.c.d`), as one
 * number: comparing two of these compares the bytes, as upstream's `bytes.Compare` does.
 */
export function ipAs16Bytes(ip: IpAddress): bigint {
  return ip.family === "ipv4" ? 0xffff00000000n | ip.value : ip.value;
}

/** −1, 0 or 1 as `bytes.Compare(net.ParseIP(a), net.ParseIP(b))`; unparsable text sorts first. */
export function compareIpBytes(a: string, b: string): number {
  const x = tryParseIp(a);
  const y = tryParseIp(b);
  const vx = x ? ipAs16Bytes(x) : -1n;
  const vy = y ? ipAs16Bytes(y) : -1n;
  return vx < vy ? -1 : vx > vy ? 1 : 0;
}

/** A mechanism's `MTU` parameter as a number; 0 when absent or not a positive integer. */
export function mechanismMtu(m: Mechanism | undefined): number {
  const v = Number(m?.parameters.MTU ?? "");
  return Number.isInteger(v) && v > 0 ? v : 0;
}

/** `current` lowered to `limit` when it is 0 (unset) or larger. */
export const lowerMtu = (current: number, limit: number): number =>
  limit > 0 && (current === 0 || current > limit) ? limit : current;

/** Sets `conn.context.MTU` to `limit` when it is 0 or larger (mutates `conn`, a clone the caller owns). */
export function lowerContextMtu(conn: Connection, limit: number): void {
  if (limit <= 0) return;
  if (!conn.context) conn.context = create(ConnectionContextSchema, {});
  conn.context.MTU = lowerMtu(conn.context.MTU, limit);
}

/** The smallest non-zero of the values; 0 when all are 0. */
export function minNonZero(...values: number[]): number {
  const set = values.filter((v) => v > 0);
  return set.length ? Math.min(...set) : 0;
}
