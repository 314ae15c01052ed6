// SPDX-License-Identifier: Apache-2.0
/**
 * filtermechanisms: offers the next hop only mechanisms it can use (upstream `filtermechanisms`).
 *
 * Purpose: a next hop reached over a unix socket (`unix://`, or `inode://` after fd passing)
 * is on the same node, so only LOCAL mechanisms make sense; over the network (`tcp://`…) only
 * REMOTE ones.
 * Chain placement: forwarder client chains, after the mechanism clients have added their
 * preferences; needs the client URL in the context (clienturl, discover, roundrobin).
 * Per-connection state: none.
 * Options: none.
 * Failure behaviour: no client URL in the context is FailedPrecondition (a chain-order bug).
 */
import { Cls } from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { Code, NsmError } from "../../../core/errors.js";
import { clientUrlOf } from "../clienturl/index.js";

const LOCAL_SCHEMES = new Set(["unix", "inode"]);

/** Keeps LOCAL preferences for unix/inode client URLs, REMOTE ones otherwise. */
export function filterMechanismsClient(): NetworkServiceElement {
  return {
    name: "filtermechanisms",
    request(req, ctx, next) {
      const url = clientUrlOf(ctx);
      if (url === undefined) {
        return Promise.reject(
          new NsmError("filtermechanisms needs a client URL in the context", Code.FailedPrecondition, {
            reason: "chain-order",
          }),
        );
      }
      const colon = url.indexOf(":");
      const scheme = colon < 0 ? "" : url.slice(0, colon).toLowerCase();
      const cls = LOCAL_SCHEMES.has(scheme) ? Cls.LOCAL : Cls.REMOTE;
      const mechanismPreferences = req.mechanismPreferences.filter((m) => m.cls === cls);
      return next.request({ ...req, mechanismPreferences }, ctx);
    },
    close: (conn, ctx, next) => next.close(conn, ctx),
  };
}
