// SPDX-License-Identifier: Apache-2.0
/**
 * clienturl: where the client side of a chain connects to.
 *
 * Purpose: the URL of the next hop travels in the call context (upstream `clienturlctx`).
 * {@link clientUrlClient} puts a fixed URL there (an NSC dialling its nsmgr); on a server,
 * discover, roundrobin and discoverforwarder put the URL of the chosen endpoint or forwarder.
 * `dial` reads it with {@link clientUrlOf}.
 * Chain placement: clientUrlClient before dial in a client chain.
 * Per-connection state: none (the URL lives in the context of each call).
 * Options: the URL (`unix:///path`, `tcp://host:port`, or whatever the registry holds).
 * Failure behaviour: an empty URL is InvalidArgument when the element is built.
 */
import type { NetworkServiceElement } from "../../../core/chain.js";
import { type CallContext, createContextKey } from "../../../core/context.js";
import { invalidArgument } from "../../../core/errors.js";

const clientUrlKey = createContextKey<string | undefined>(undefined, "clientUrl");

/** A context whose client URL is `url`. */
export function withClientUrl(ctx: CallContext, url: string): CallContext {
  return ctx.with(clientUrlKey, url);
}

/** The client URL of this call, if an earlier element chose one. */
export function clientUrlOf(ctx: CallContext): string | undefined {
  return ctx.get(clientUrlKey);
}

/** Puts `url` into the context of every Request and Close (upstream `clienturl.NewClient`). */
export function clientUrlClient(url: string): NetworkServiceElement {
  if (!url) throw invalidArgument("clienturl needs a non-empty URL");
  return {
    name: "clienturl",
    request: (req, ctx, next) => next.request(req, withClientUrl(ctx, url)),
    close: (conn, ctx, next) => next.close(conn, withClientUrl(ctx, url)),
  };
}
