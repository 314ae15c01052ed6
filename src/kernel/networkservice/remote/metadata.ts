// SPDX-License-Identifier: Apache-2.0
/**
 * Per-connection state of the remote (VXLAN / WireGuard) cross-connect, in the connection's
 * metadata:
 * - client side: the mechanism the next hop answered with, stored by
 *   `kernelRemoteXconnectClient` and read by `kernelRemoteXconnectServer` once `next` has
 *   returned (the forwarder's client chain shares the server's metadata entry);
 * - server side: what `kernelRemoteXconnectServer` programmed, compared on each refresh.
 */
import type { Mechanism } from "../../../api/index.js";
import type { CallContext } from "../../../sdk/core/context.js";
import { createMetadataKey, metadataOf } from "../../../sdk/networkservice/common/metadata/index.js";
import type { WireguardDevice } from "../wireguard/wireguard-go.js";
import type { PodPlan } from "../xconnect/pod.js";

const outgoingKey = createMetadataKey<Mechanism>("kernelRemoteXconnect.outgoingMechanism");

export function storeOutgoingMechanism(ctx: CallContext, mechanism: Mechanism | undefined): void {
  const md = metadataOf(ctx, true);
  if (mechanism) md.store(outgoingKey, mechanism);
  else md.delete(outgoingKey);
}

export function loadOutgoingMechanism(ctx: CallContext): Mechanism | undefined {
  return metadataOf(ctx, true).load(outgoingKey);
}

/** A VXLAN tunnel as the kernel gets it. */
export interface VxlanTunnelPlan {
  type: "VXLAN";
  vni: number;
  /** Our tunnel address. */
  local: string;
  /** The peer's tunnel address. */
  remote: string;
  /** UDP port, the same at both ends. */
  port: number;
}

/** A WireGuard tunnel as wireguard-go gets it. */
export interface WireguardTunnelPlan {
  type: "WIREGUARD";
  local: string;
  listenPort: number;
  remote: string;
  remotePort: number;
  /** base64. */
  peerPublicKey: string;
}

export type TunnelPlan = VxlanTunnelPlan | WireguardTunnelPlan;

/** Everything the kernel should hold for one remote connection. Plans compare as JSON. */
export interface RemotePlan {
  pod: PodPlan;
  tunnel: TunnelPlan;
  /** 0 = leave the device's default. */
  mtu: number;
}

/** The server side's record. */
export interface RemoteState {
  programmed: RemotePlan | undefined;
  /** The wireguard-go process of a WIREGUARD plan. */
  device: WireguardDevice | undefined;
  /** A refresh failed halfway: the next one re-applies everything. */
  stale: boolean;
}

const stateKey = createMetadataKey<RemoteState>("kernelRemoteXconnect.state");

export function loadRemoteState(ctx: CallContext): RemoteState | undefined {
  return metadataOf(ctx, false).load(stateKey);
}

export function storeRemoteState(ctx: CallContext, state: RemoteState): void {
  metadataOf(ctx, false).store(stateKey, state);
}

export function loadAndDeleteRemoteState(ctx: CallContext): RemoteState | undefined {
  return metadataOf(ctx, false).loadAndDelete(stateKey);
}
