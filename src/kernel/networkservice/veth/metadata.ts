// SPDX-License-Identifier: Apache-2.0
/**
 * Per-connection state of the kernel cross-connect, in the connection's metadata.
 *
 * - client side: the endpoint's KERNEL mechanism, stored by `kernelXconnectClient` when the
 *   NSE answers and read by `kernelXconnectServer` once `next` has returned (the forwarder's
 *   client chain shares the server's metadata entry);
 * - server side: what `kernelXconnectServer` programmed, compared on each refresh.
 */
import type { Mechanism } from "../../../api/index.js";
import type { CallContext } from "../../../sdk/core/context.js";
import { createMetadataKey, metadataOf } from "../../../sdk/networkservice/common/metadata/index.js";
import type { PodPlan } from "../xconnect/pod.js";

const endpointMechanismKey = createMetadataKey<Mechanism>("kernelXconnect.endpointMechanism");

export function storeEndpointMechanism(ctx: CallContext, mechanism: Mechanism | undefined): void {
  const md = metadataOf(ctx, true);
  if (mechanism) md.store(endpointMechanismKey, mechanism);
  else md.delete(endpointMechanismKey);
}

export function loadEndpointMechanism(ctx: CallContext): Mechanism | undefined {
  return metadataOf(ctx, true).load(endpointMechanismKey);
}

export function deleteEndpointMechanism(ctx: CallContext): void {
  metadataOf(ctx, true).delete(endpointMechanismKey);
}

/** Everything the kernel should hold for one connection. Plans compare as JSON. */
export interface VethPlan {
  client: PodPlan;
  endpoint: PodPlan;
  /** `context.MTU`; 0 = leave the kernel's default. */
  mtu: number;
}

/** The server side's record. */
export interface VethState {
  /** What was programmed (undefined: nothing, e.g. the endpoint side is not KERNEL). */
  programmed: VethPlan | undefined;
  /**
   * A refresh failed halfway: `programmed` is the union of the old and the new plan, and the
   * next refresh re-applies everything instead of trusting the record.
   */
  stale: boolean;
}

const stateKey = createMetadataKey<VethState>("kernelXconnect.state");

export function loadVethState(ctx: CallContext): VethState | undefined {
  return metadataOf(ctx, false).load(stateKey);
}

export function storeVethState(ctx: CallContext, state: VethState): void {
  metadataOf(ctx, false).store(stateKey, state);
}

export function loadAndDeleteVethState(ctx: CallContext): VethState | undefined {
  return metadataOf(ctx, false).loadAndDelete(stateKey);
}
