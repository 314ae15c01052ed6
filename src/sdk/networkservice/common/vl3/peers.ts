// SPDX-License-Identifier: Apache-2.0
/**
 * vL3 peering: a vL3 endpoint connects, as a client of its own service, to the other vL3
 * endpoints of the service (upstream cmd-nse-vl3-vpp), so that each endpoint routes the others'
 * blocks and clients on different endpoints and nodes reach one another.
 *
 * It watches the registry for the service's endpoints. Of each pair exactly one side connects:
 * the endpoint whose name sorts after the other's (upstream: the one registered later, which
 * races when two start together). A peer that appears is requested until the Request works
 * (every `retryMs`); a peer that leaves the registry (unregistered or expired) is closed. The
 * watch is opened again when it breaks. A connection that broke under us (the peer client's heal,
 * with reselect off, closed it: the peer died) is reported through {@link Vl3Peers.lost}: the
 * peer is forgotten at once (its routes and DNS go) and requested again until it is back or
 * leaves the registry. {@link Vl3Peers.reannounce} requests the peers again (the endpoint's block
 * changed); {@link Vl3Peers.stop} closes every peer connection.
 * Failure behaviour: nothing throws; failures are logged and retried.
 */

import { NetworkServiceEndpointQuerySchema, NetworkServiceEndpointSchema } from "../../../../api/gen/registry_pb.js";
import {
  type Connection,
  ConnectionSchema,
  create,
  NetworkServiceRequestSchema,
  Payload,
} from "../../../../api/index.js";
import type { NetworkServiceHandler } from "../../../core/chain.js";
import { CallContext, sleep } from "../../../core/context.js";
import { NsmError } from "../../../core/errors.js";
import type { Logger } from "../../../core/logger.js";
import type { NseRegistry } from "../../../registry/api.js";

/** Options of {@link vl3Peers}. */
export interface Vl3PeersOptions {
  /** This endpoint's name (NSM_NAME). */
  readonly name: string;
  /** The vL3 service (the first of NSM_SERVICE_NAMES). */
  readonly service: string;
  /** Where the service's endpoints are found (nsmgr's registry). */
  readonly registry: NseRegistry;
  /** The client chain of the peer connections (with vl3Client and a KERNEL mechanism). */
  readonly client: NetworkServiceHandler;
  /** Labels of the peer requests (NSM_REQUEST_LABELS). @default none */
  readonly labels?: Readonly<Record<string, string>>;
  readonly log: Logger;
  /** @default 1000 */
  readonly retryMs?: number;
  /** Deadline of each Request and Close. @default 15000 */
  readonly requestTimeoutMs?: number;
}

/** A running peering. */
export interface Vl3Peers {
  /** The peers with a working connection, by endpoint name. */
  readonly connected: ReadonlyMap<string, Connection>;
  /** Requests every connected peer again (after this endpoint's block changed: the peers route the new one). */
  reannounce(): Promise<void>;
  /** The connection to a peer was closed under us (heal gave up on it): forget it and request the peer again. */
  lost(conn: Connection): void;
  /** Stops watching and closes every peer connection. */
  stop(): Promise<void>;
}

interface Peer {
  readonly stop: AbortController;
  conn?: Connection;
}

/** True when `self` is the side that connects to `other`. */
export const connectsTo = (self: string, other: string) => other !== self && other < self;

/** The Request of the peer connection to `name`. */
function peerRequest(o: Vl3PeersOptions, name: string) {
  return create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, {
      id: `${o.name}-to-${name}`,
      networkService: o.service,
      networkServiceEndpointName: name,
      payload: Payload.IP,
      labels: { ...o.labels },
    }),
  });
}

/** Re-requests each peer with a connection; failures are logged (the next refresh tries again). */
async function reannounce(o: Vl3PeersOptions, peers: Map<string, Peer>, connected: Map<string, Connection>) {
  const ctx = () => CallContext.create({ deadline: Date.now() + (o.requestTimeoutMs ?? 15_000), log: o.log });
  await Promise.all(
    [...peers].map(async ([name, peer]) => {
      if (!peer.conn) return;
      try {
        peer.conn = await o.client.request(create(NetworkServiceRequestSchema, { connection: peer.conn }), ctx());
        if (!peer.stop.signal.aborted) connected.set(name, peer.conn);
      } catch (err) {
        o.log.warn({ peer: name, err: NsmError.from(err).toStatusString() }, "vL3 peer not told of the new block");
      }
    }),
  );
}

/** Follows the service's endpoints in the registry (opened again when it breaks) until `signal` aborts. */
async function watchService(
  o: Vl3PeersOptions,
  retryMs: number,
  signal: AbortSignal,
  seen: (name: string, deleted: boolean) => void,
): Promise<void> {
  const query = create(NetworkServiceEndpointQuerySchema, {
    networkServiceEndpoint: create(NetworkServiceEndpointSchema, { networkServiceNames: [o.service] }),
    watch: true,
  });
  while (!signal.aborted) {
    try {
      const watchCtx = CallContext.create({ signal, log: o.log });
      for await (const r of o.registry.find(query, watchCtx)) seen(r.networkServiceEndpoint?.name ?? "", r.deleted);
    } catch (err) {
      if (!signal.aborted) o.log.warn({ err: NsmError.from(err).toStatusString() }, "vL3 peer watch broke");
    }
    await sleep(retryMs, signal).catch(() => {});
  }
}

/** Starts the peering (see the module doc). */
export function vl3Peers(o: Vl3PeersOptions): Vl3Peers {
  const lifetime = new AbortController();
  const peers = new Map<string, Peer>();
  const connected = new Map<string, Connection>();
  const retryMs = o.retryMs ?? 1000;
  const ctx = () => CallContext.create({ deadline: Date.now() + (o.requestTimeoutMs ?? 15_000), log: o.log });

  const connect = async (name: string, peer: Peer) => {
    while (!peer.stop.signal.aborted) {
      try {
        peer.conn = await o.client.request(peerRequest(o, name), ctx());
        if (peer.stop.signal.aborted) break;
        connected.set(name, peer.conn);
        o.log.info(
          { peer: name, ip: peer.conn.context?.ipContext?.srcRoutes.map((r) => r.prefix) },
          "vL3 peer connected",
        );
        return;
      } catch (err) {
        o.log.warn({ peer: name, err: NsmError.from(err).toStatusString() }, "vL3 peer request failed");
      }
      await sleep(retryMs, peer.stop.signal).catch(() => {});
    }
  };

  const drop = async (name: string) => {
    const peer = peers.get(name);
    if (!peer) return;
    peers.delete(name);
    connected.delete(name);
    peer.stop.abort();
    if (!peer.conn) return;
    try {
      await o.client.close(peer.conn, ctx());
      o.log.info({ peer: name }, "vL3 peer closed");
    } catch (err) {
      o.log.warn({ peer: name, err: NsmError.from(err).toStatusString() }, "vL3 peer close failed");
    }
  };

  const lost = (conn: Connection) => {
    const name = conn.networkServiceEndpointName;
    const peer = peers.get(name);
    if (!peer?.conn || peer.conn.id !== conn.id) return;
    peer.conn = undefined;
    connected.delete(name);
    o.log.warn({ peer: name }, "vL3 peer connection lost: requesting it again");
    void connect(name, peer);
  };

  const seen = (name: string, deleted: boolean) => {
    if (!connectsTo(o.name, name)) return;
    if (deleted) return void drop(name);
    if (peers.has(name)) return;
    const peer: Peer = { stop: new AbortController() };
    peers.set(name, peer);
    void connect(name, peer);
  };

  void watchService(o, retryMs, lifetime.signal, seen);

  return {
    connected,
    reannounce: () => reannounce(o, peers, connected),
    lost,
    async stop() {
      lifetime.abort();
      await Promise.all([...peers.keys()].map(drop));
    },
  };
}
