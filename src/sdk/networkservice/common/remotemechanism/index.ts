// SPDX-License-Identifier: Apache-2.0
/**
 * remotemechanism: what the tunnel mechanism elements (vxlan, wireguard) share, so that each keeps
 * only what differs (VNI rules, port pool and keys).
 *
 * - {@link resolveTunnelOptions}: the tunnel address, the MTU the tunnel leaves on the underlay
 *   and the payloads the client offers the mechanism for;
 * - {@link setTunnelEnd}, {@link setTunnelMtu}, {@link fillTunnelEnd}: this node's end of the
 *   tunnel in a mechanism (`src_*` or `dst_*`) and its `MTU` parameter;
 * - {@link offerMechanism}: the client's outgoing request (refresh the selected mechanism, or add
 *   or refill the preference);
 * - {@link serveTunnel}: the server's Request around what it completes on the selected mechanism;
 * - {@link lowerToMechanismMtu}: an answer of the mechanism's type with `context.MTU` lowered to
 *   the mechanism's MTU.
 * Not an element: a set of helpers for elements.
 */
import {
  Cls,
  type Connection,
  ConnectionSchema,
  clone,
  type Mechanism,
  MechanismSchema,
  type NetworkServiceRequest,
  newMechanism,
  Param,
  Payload,
} from "../../../../api/index.js";
import type { NetworkServiceHandler } from "../../../core/chain.js";
import type { CallContext } from "../../../core/context.js";
import type { IpAddress } from "../../../tools/cidr.js";
import { checkUnderlayMtu, lowerContextMtu, lowerMtu, mechanismMtu, parseTunnelIp } from "../../../tools/tunnel.js";

/** The underlay MTU assumed when none is given. */
export const DEFAULT_UNDERLAY_MTU = 1500;

/** The options every tunnel mechanism element takes. */
export interface TunnelOptions {
  /** This forwarder's tunnel endpoint address (`NSM_TUNNEL_IP`). Required. */
  tunnelIp: string;
  /** MTU of the underlay link. @default 1500 */
  underlayMtu?: number;
}

export interface ResolvedTunnel {
  readonly tunnelIp: string;
  /** The MTU the tunnel leaves for the pods. */
  readonly mtu: number;
  /** Payloads for which the client offers the mechanism. */
  readonly payloads: ReadonlySet<string>;
}

/**
 * Checks the tunnel address and underlay MTU (InvalidArgument naming `what`); `overhead` gives
 * the bytes the tunnel adds over an underlay of the address's family.
 */
export function resolveTunnelOptions(
  what: string,
  o: Readonly<TunnelOptions> & { payloads?: readonly string[] },
  overhead: (ip: IpAddress) => number,
  defaultPayload: string,
): ResolvedTunnel {
  const bytes = overhead(parseTunnelIp(o?.tunnelIp, what));
  const underlayMtu = checkUnderlayMtu(o.underlayMtu ?? DEFAULT_UNDERLAY_MTU, bytes, what);
  return {
    tunnelIp: o.tunnelIp,
    mtu: underlayMtu - bytes,
    payloads: new Set(o.payloads ?? [defaultPayload]),
  };
}

/** This node's end of a tunnel: address, UDP port, and for WireGuard its public key. */
export interface TunnelEnd {
  ip: string;
  port: number;
  publicKey?: string;
}

const endParams = {
  src: { ip: Param.SRC_IP, port: Param.SRC_PORT, key: Param.SRC_PUBLIC_KEY },
  dst: { ip: Param.DST_IP, port: Param.DST_PORT, key: Param.DST_PUBLIC_KEY },
} as const;

/** Sets this node's end in `m`: `src_*` for a client, `dst_*` for a server. */
export function setTunnelEnd(m: Mechanism, side: "src" | "dst", end: TunnelEnd): void {
  const p = m.parameters;
  const names = endParams[side];
  p[names.ip] = end.ip;
  p[names.port] = String(end.port);
  if (end.publicKey !== undefined) p[names.key] = end.publicKey;
}

/** Sets the `MTU` parameter of `m` to what the tunnel leaves (or lower, if it asks for less). */
export function setTunnelMtu(m: Mechanism, tunnelMtu: number): void {
  m.parameters[Param.MTU] = String(lowerMtu(mechanismMtu(m), tunnelMtu));
}

/** {@link setTunnelEnd} then {@link setTunnelMtu}. */
export function fillTunnelEnd(m: Mechanism, side: "src" | "dst", end: TunnelEnd, tunnelMtu: number): void {
  setTunnelEnd(m, side, end);
  setTunnelMtu(m, tunnelMtu);
}

/**
 * The request a client mechanism element sends: on a refresh the connection's mechanism of type
 * `type` refilled by `fill`; otherwise the preferences with that type's preference refilled, or
 * added (REMOTE) when there is none. Undefined when the mechanism is not for this request: another
 * one is selected, or the payload is not in `payloads` (upstream treats an empty payload as IP).
 */
export function offerMechanism(
  req: NetworkServiceRequest,
  type: string,
  payloads: ReadonlySet<string>,
  fill: (m: Mechanism) => void,
): NetworkServiceRequest | undefined {
  const isOurs = (m: Mechanism | undefined): m is Mechanism => m?.type === type;
  const filled = (m: Mechanism) => {
    const c = clone(MechanismSchema, m);
    fill(c);
    return c;
  };
  const conn = req.connection!;
  if (isOurs(conn.mechanism)) {
    const connection = clone(ConnectionSchema, conn);
    connection.mechanism = filled(conn.mechanism);
    return { ...req, connection };
  }
  if (conn.mechanism || !payloads.has(conn.payload || Payload.IP)) return undefined;
  const prefs = req.mechanismPreferences;
  const mechanismPreferences = prefs.some(isOurs)
    ? prefs.map((m) => (isOurs(m) ? filled(m) : m))
    : [...prefs, filled(newMechanism(Cls.REMOTE, type))];
  return { ...req, mechanismPreferences };
}

/** `conn` unchanged when its mechanism is not of `type`; else a copy with `context.MTU` lowered to the mechanism's MTU. */
export function lowerToMechanismMtu(conn: Connection, type: string): Connection {
  if (conn.mechanism?.type !== type) return conn;
  const out = clone(ConnectionSchema, conn);
  lowerContextMtu(out, mechanismMtu(out.mechanism));
  return out;
}

/**
 * A server mechanism element's Request: on a selected mechanism of `type`, `complete` fills a copy
 * of the connection (and may hold resources for it), `context.MTU` is lowered to the mechanism's
 * MTU, and the answer's is lowered as well. When downstream fails, `undo` frees what `complete`
 * held. Any other request goes through untouched.
 */
export async function serveTunnel(
  req: NetworkServiceRequest,
  ctx: CallContext,
  next: NetworkServiceHandler,
  type: string,
  complete: (connection: Connection) => void,
  undo: () => void,
): Promise<Connection> {
  if (!req.connection || req.connection.mechanism?.type !== type) return next.request(req, ctx);
  const connection = clone(ConnectionSchema, req.connection);
  complete(connection);
  lowerContextMtu(connection, mechanismMtu(connection.mechanism));
  let conn: Connection;
  try {
    conn = await next.request({ ...req, connection }, ctx);
  } catch (err) {
    undo();
    throw err;
  }
  return lowerToMechanismMtu(conn, type);
}
