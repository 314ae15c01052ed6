// SPDX-License-Identifier: Apache-2.0
/** Options of the WireGuard mechanism elements. */
import { Payload } from "../../../../api/index.js";
import { invalidArgument } from "../../../core/errors.js";
import { checkPort, parseTunnelIp } from "../../../tools/tunnel.js";
import { type ResolvedTunnel, resolveTunnelOptions, type TunnelOptions } from "../remotemechanism/index.js";
import { createPortPool, isWireguardKey, type PortPool } from "./common.js";

/** The first UDP port of the per-connection range (WireGuard's customary port; sdk-vpp's default). */
export const DEFAULT_WIREGUARD_PORT = 51820;

/** How many ports the default range holds, i.e. how many WireGuard tunnels a node can have. */
export const DEFAULT_WIREGUARD_PORT_COUNT = 1000;

/**
 * Bytes subtracted from the underlay MTU for the pod interface. The exact overhead is 60 over
 * IPv4 (IPv4 20 + UDP 8 + WireGuard 32) and 80 over IPv6; upstream sdk-vpp uses 60/80. We
 * subtract 80 for both families, as `wg-quick` does: one value that fits either underlay, and
 * wireguard-go's own default (1420 on a 1500 link).
 */
export const WIREGUARD_OVERHEAD = 80;

interface CommonOptions extends TunnelOptions {
  /** This forwarder's public key, base64 (44 characters), sent as `src_public_key`/`dst_public_key`. Required. */
  publicKey: string;
  /**
   * First UDP port of this node's per-connection range (`NSM_WIREGUARD_PORT`); each connection
   * gets its own port from it. Ignored when `ports` is given. @default 51820
   */
  port?: number;
  /**
   * The port pool, shared by the client and server elements of one forwarder.
   * @default 1000 ports from `port`, for this element alone
   */
  ports?: PortPool;
}

export type WireguardClientOptions = CommonOptions & {
  /** Payloads for which the WireGuard preference is offered. @default ["IP"] (upstream) */
  payloads?: readonly string[];
};

export type WireguardServerOptions = CommonOptions;

export interface Resolved extends ResolvedTunnel {
  readonly publicKey: string;
  readonly ports: PortPool;
}

export function resolveOptions(what: string, o: Readonly<CommonOptions> & { payloads?: readonly string[] }): Resolved {
  // A bad address is reported before a bad key.
  parseTunnelIp(o?.tunnelIp, what);
  if (!isWireguardKey(o.publicKey)) throw invalidArgument(`${what}: publicKey must be a base64 32-byte key`);
  const tunnel = resolveTunnelOptions(what, o, () => WIREGUARD_OVERHEAD, Payload.IP);
  const first = checkPort(o.port ?? DEFAULT_WIREGUARD_PORT, what);
  return {
    ...tunnel,
    publicKey: o.publicKey,
    ports: o.ports ?? createPortPool(first, Math.min(DEFAULT_WIREGUARD_PORT_COUNT, 0x10000 - first)),
  };
}
