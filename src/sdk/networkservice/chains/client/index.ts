// SPDX-License-Identifier: Apache-2.0
/**
 * The client chain: what an NSC (and every hop that forwards) uses to reach the next hop.
 *
 * Order (upstream): updatepath(name) → begin → metadata → refresh slot → clienturl(url) →
 * heal slot → dial → additional… → authorize slot → trimpath → connect.
 */
import {
  bind,
  chain,
  type NetworkServiceElement,
  type NetworkServiceHandler,
  passThrough,
} from "../../../core/chain.js";
import { beginClient } from "../../common/begin/index.js";
import { clientUrlClient } from "../../common/clienturl/index.js";
import { connectClient } from "../../common/connect/index.js";
import { type DialClientOptions, dialClient } from "../../common/dial/index.js";
import { metadataClient } from "../../common/metadata/index.js";
import { trimpathClient } from "../../common/trimpath/index.js";
import { updatePathClient } from "../../common/updatepath/index.js";

/** Options of {@link createClient}. */
export interface ClientOptions extends DialClientOptions {
  /** This hop's name in the path. */
  name: string;
  /** The URL of the next hop; omit when an earlier server element chooses it (discover, roundrobin). */
  connectTo?: string;
  /** Elements between dial and connect (mechanisms, sendfd, clientinfo…). @default [] */
  additional?: NetworkServiceElement[];
  /** Slot for refresh (NSC only; passthrough hops never refresh). @default pass-through */
  refresh?: NetworkServiceElement;
  /** Slot for heal. @default pass-through */
  heal?: NetworkServiceElement;
  /** Slot for the authorize client. @default pass-through */
  authorize?: NetworkServiceElement;
}

export function clientChain(options: ClientOptions): NetworkServiceElement {
  return chain(
    updatePathClient(options.name),
    beginClient(),
    metadataClient(),
    options.refresh ?? passThrough("refresh"),
    options.connectTo ? clientUrlClient(options.connectTo) : passThrough("clienturl"),
    options.heal ?? passThrough("heal"),
    dialClient(options),
    ...(options.additional ?? []),
    options.authorize ?? passThrough("authorizeClient"),
    trimpathClient(),
    connectClient(),
  );
}

/** A ready-to-call client: `request(req, ctx)` and `close(conn, ctx)`. */
export function createClient(options: ClientOptions): NetworkServiceHandler {
  return bind(clientChain(options));
}
