// SPDX-License-Identifier: Apache-2.0
/**
 * passthrough: an endpoint that is also a client of the next hop (upstream's passthrough
 * composition: cmd-nse-firewall-vpp's `connect` + client chain).
 *
 * Purpose: a hop of a service chain (firewall, passthrough) serves one connection and, inside
 * the same Request, requests the same network service again with its own labels
 * (replacelabels), so the NetworkService's `matches` lead to the next hop. The path continues:
 * the outgoing request keeps this hop's segment, the next nsmgr adds its own; it names the
 * endpoint chosen downstream before (or none), never this hop. The IP context
 * comes back from the final endpoint unchanged, and the connection returned upstream keeps the
 * incoming mechanism (mechanismtranslation).
 * The outgoing KERNEL mechanism names this hop's netns; on a descriptor-passing unix dial it
 * goes as a descriptor (sendfd: only this process's own netns is sent so).
 * The hop owns two KERNEL interfaces in its netns: the incoming one (named by the incoming
 * mechanism) and the outgoing one, named here `<outgoingPrefix><random>` and kept per
 * connection. {@link passthroughLinksOf} gives both names to elements before this one (a data
 * plane joins them after `next.request()` returns).
 * Chain placement: last of an endpoint's additional elements, after the KERNEL mechanism server.
 * Per-connection state: the two interface names (server metadata; deleted on Close).
 * Options: {@link PassthroughOptions}.
 * Failure behaviour: errors of the next hop come back with their code; nothing is kept.
 */
import { Cls, ConnectionSchema, clone, MechanismType, newMechanism, Param } from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { type CallContext, createContextKey } from "../../../core/context.js";
import { requestConnection } from "../../../core/request.js";
import { randomString } from "../../../tools/ifname.js";
import { clientChain } from "../../chains/client/index.js";
import { connectServer } from "../connect/index.js";
import type { DialClientOptions } from "../dial/index.js";
import { kernelMechanismClient } from "../kernelmechanism/index.js";
import { mechanismsClient } from "../mechanisms/index.js";
import { mechanismTranslationClient } from "../mechanismtranslation/index.js";
import { createMetadataKey, metadataOf } from "../metadata/index.js";
import { replaceLabelsClient } from "../replacelabels/index.js";
import { sendFdClient } from "../sendfd/index.js";

/** Options of {@link passthroughServer}. */
export interface PassthroughOptions extends DialClientOptions {
  /** This hop's name in the path (NSM_NAME). */
  readonly name: string;
  /** Where the next request goes: the nsmgr (NSM_CONNECT_TO). */
  readonly connectTo: string;
  /** The labels the next hop's `matches` see (NSM_LABELS). */
  readonly labels: Readonly<Record<string, string>>;
  /** This hop's netns URL for the outgoing KERNEL mechanism. */
  readonly inodeUrl: string;
  /** First characters of outgoing interface names (≤ 8). @default "out-" */
  readonly outgoingPrefix?: string;
  /** Client elements before the mechanisms (e.g. a metrics or trace element). @default none */
  readonly additional?: readonly NetworkServiceElement[];
  /** Slot for the authorize client. @default pass-through */
  readonly authorize?: NetworkServiceElement;
}

/** The two interfaces of one passthrough connection in this hop's netns. */
export interface PassthroughLinks {
  /** Towards the previous hop (the connection's own KERNEL mechanism `name`). */
  readonly incoming: string;
  /** Towards the next hop. */
  readonly outgoing: string;
}

const linksKey = createMetadataKey<PassthroughLinks>("passthrough.links");
const outgoingNameKey = createContextKey<string | undefined>(undefined, "passthrough.outgoingName");

/** The interfaces of the current connection, once {@link passthroughServer} has seen its Request. */
export function passthroughLinksOf(ctx: CallContext): PassthroughLinks | undefined {
  return metadataOf(ctx, false).load(linksKey);
}

const nextEndpointKey = createMetadataKey<string>("passthrough.nextEndpoint");

/**
 * The endpoint name towards the next hop: the one chosen downstream last time (a refresh stays
 * on it), never this hop's own (which the incoming connection carries: nsmgr would send the
 * request back here). The connection handed back keeps the incoming name.
 */
function nextEndpointClient(): NetworkServiceElement {
  return {
    name: "passthroughNextEndpoint",
    async request(req, ctx, next) {
      const incoming = requestConnection(req);
      const md = metadataOf(ctx, true);
      const connection = clone(ConnectionSchema, incoming);
      connection.networkServiceEndpointName = md.load(nextEndpointKey) ?? "";
      const out = await next.request({ ...req, connection }, ctx);
      md.store(nextEndpointKey, out.networkServiceEndpointName);
      const back = clone(ConnectionSchema, out);
      back.networkServiceEndpointName = incoming.networkServiceEndpointName;
      return back;
    },
    async close(conn, ctx, next) {
      const c = clone(ConnectionSchema, conn);
      c.networkServiceEndpointName = metadataOf(ctx, true).loadAndDelete(nextEndpointKey) ?? "";
      await next.close(c, ctx);
    },
  };
}

/** Offers a KERNEL preference named as the passthrough server chose (before kernelMechanismClient completes it). */
function outgoingNameClient(): NetworkServiceElement {
  return {
    name: "passthroughOutgoingName",
    request(req, ctx, next) {
      const name = ctx.get(outgoingNameKey);
      if (!name || req.mechanismPreferences.some((m) => m.type === MechanismType.KERNEL)) return next.request(req, ctx);
      const pref = newMechanism(Cls.LOCAL, MechanismType.KERNEL, { [Param.NAME]: name });
      return next.request({ ...req, mechanismPreferences: [...req.mechanismPreferences, pref] }, ctx);
    },
    close: (conn, ctx, next) => next.close(conn, ctx),
  };
}

/** The server element: runs a client chain to the next hop inside this hop's Request and Close. */
export function passthroughServer(options: PassthroughOptions): NetworkServiceElement {
  const prefix = options.outgoingPrefix ?? "out-";
  const connect = connectServer(
    clientChain({
      ...options,
      additional: [
        mechanismTranslationClient(),
        replaceLabelsClient(options.labels),
        nextEndpointClient(),
        ...(options.additional ?? []),
        outgoingNameClient(),
        mechanismsClient({ KERNEL: kernelMechanismClient({ inodeUrl: options.inodeUrl }) }),
        // This hop's own netns goes to nsmgr as a descriptor (upstream's grpcfd), as an NSC's does.
        sendFdClient(),
      ],
    }),
  );
  return {
    name: "passthrough",
    requires: ["metadata"],
    request(req, ctx, next) {
      const md = metadataOf(ctx, false);
      const incoming = requestConnection(req).mechanism?.parameters[Param.NAME] ?? "";
      const previous = md.load(linksKey);
      const links = { incoming, outgoing: previous?.outgoing ?? `${prefix}${randomString(15 - prefix.length)}` };
      md.store(linksKey, links);
      return connect.request(req, ctx.with(outgoingNameKey, links.outgoing), next);
    },
    async close(conn, ctx, next) {
      try {
        await connect.close(conn, ctx, next);
      } finally {
        metadataOf(ctx, false).delete(linksKey);
      }
    },
  };
}
