// SPDX-License-Identifier: Apache-2.0
/**
 * mechanismpriority: re-orders the mechanism preferences (upstream `mechanismpriority`).
 *
 * Purpose: the next hop takes the first preference it supports, so the order decides, e.g.
 * a forwarder that prefers WIREGUARD over VXLAN. Preferences of the listed types come first,
 * in the listed order (stable among equal types); the others follow in their original order.
 * Chain placement: client chains, after the mechanism clients and filtermechanisms.
 * Per-connection state: none.
 * Options: {@link MechanismPriorityOptions}.
 * Failure behaviour: none.
 */
import type { Mechanism } from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";

export interface MechanismPriorityOptions {
  /** Mechanism types, most preferred first (case-insensitive, e.g. `["WIREGUARD", "VXLAN"]`). @default [] */
  priorities?: readonly string[];
}

/** Orders `mechanisms` by `priorities` (type → rank); unranked ones keep their order at the end. */
export function prioritizeMechanisms(
  mechanisms: readonly Mechanism[],
  priorities: ReadonlyMap<string, number>,
): Mechanism[] {
  const ranked = mechanisms.filter((m) => priorities.has(m.type));
  const rest = mechanisms.filter((m) => !priorities.has(m.type));
  ranked.sort((a, b) => priorities.get(a.type)! - priorities.get(b.type)!);
  return [...ranked, ...rest];
}

/** Puts the preferred mechanism types first. */
export function mechanismPriorityClient(options: Readonly<MechanismPriorityOptions> = {}): NetworkServiceElement {
  const priorities = new Map<string, number>();
  for (const [i, t] of (options.priorities ?? []).entries()) {
    const type = t.toUpperCase();
    if (!priorities.has(type)) priorities.set(type, i);
  }
  return {
    name: "mechanismpriority",
    request(req, ctx, next) {
      if (priorities.size === 0) return next.request(req, ctx);
      return next.request(
        { ...req, mechanismPreferences: prioritizeMechanisms(req.mechanismPreferences, priorities) },
        ctx,
      );
    },
    close: (conn, ctx, next) => next.close(conn, ctx),
  };
}
