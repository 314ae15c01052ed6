// SPDX-License-Identifier: Apache-2.0
/**
 * A pass-through element that records its name in a shared list on every Request and Close:
 * put probes in a chain's slots to see which ran and in what order.
 */
import type { NetworkServiceElement } from "../core/chain.js";

export function probe(name: string, calls: string[]): NetworkServiceElement {
  return {
    name,
    request: (req, ctx, next) => {
      calls.push(name);
      return next.request(req, ctx);
    },
    close: (conn, ctx, next) => {
      calls.push(`close:${name}`);
      return next.close(conn, ctx);
    },
  };
}
