// SPDX-License-Identifier: Apache-2.0
/**
 * mechanismtranslation: keeps the two sides of a passthrough hop's mechanisms apart
 * (upstream `mechanismtranslation`).
 *
 * Purpose: a forwarder receives a connection whose mechanism describes its link to the
 * previous hop (e.g. KERNEL into the client's netns) and requests a new one towards the next
 * hop. The outgoing request must not carry the incoming mechanism or its preferences: they are
 * removed, and on a refresh the mechanism negotiated downstream last time is sent instead. The
 * connection handed back upstream has the incoming mechanism again; Close sends the outgoing one.
 * Chain placement: forwarder client chains (inside connect), first after the client base,
 * before the mechanism clients that add the outgoing preferences.
 * Per-connection state: the outgoing mechanism (client-side metadata; deleted on Close).
 * Options: none.
 * Failure behaviour: none of its own; errors pass through and leave the stored mechanism as is.
 */
import { ConnectionSchema, clone, type Mechanism, MechanismSchema } from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { requestConnection } from "../../../core/request.js";
import { createMetadataKey, metadataOf } from "../metadata/index.js";

const outgoingKey = createMetadataKey<Mechanism>("mechanismtranslation");

/** Swaps the incoming mechanism for the outgoing one on the way down, and back on the way up. */
export function mechanismTranslationClient(): NetworkServiceElement {
  return {
    name: "mechanismtranslation",
    async request(req, ctx, next) {
      const requested = requestConnection(req);
      const connection = clone(ConnectionSchema, requested);
      const md = metadataOf(ctx, true);
      const stored = md.load(outgoingKey);
      connection.mechanism = stored ? clone(MechanismSchema, stored) : undefined;
      const out = await next.request({ ...req, connection, mechanismPreferences: [] }, ctx);
      if (out.mechanism) md.store(outgoingKey, clone(MechanismSchema, out.mechanism));
      const back = clone(ConnectionSchema, out);
      back.mechanism = requested.mechanism ? clone(MechanismSchema, requested.mechanism) : undefined;
      return back;
    },
    async close(conn, ctx, next) {
      const stored = metadataOf(ctx, true).loadAndDelete(outgoingKey);
      const c = clone(ConnectionSchema, conn);
      c.mechanism = stored;
      await next.close(c, ctx);
    },
  };
}
