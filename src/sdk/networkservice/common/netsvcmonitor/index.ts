// SPDX-License-Identifier: Apache-2.0
/**
 * netsvcmonitor (server, nsmgr): closes a connection whose endpoint no longer matches its
 * network service.
 *
 * Purpose: when a NetworkService's `matches` change (the upstream change-nse-dynamically
 * example), live clients must move to the newly matching endpoint. nsmgr watches the service of
 * every connection it forwards; when the endpoint in use is no longer among the candidates the
 * service selects for the connection's labels, it closes the connection, and the client's heal
 * reselects.
 * Chain placement: nsmgr, after discoverforwarder (the connection has its endpoint by the time
 * next returns).
 * Per-connection state: the watch (server metadata), stopped by Close.
 * Failure behaviour: never fails a Request; a broken watch (the registry restarted) is started
 * again every `rewatchIntervalMs` while the connection lives, and its first answer re-checks the
 * service. An endpoint missing from the registry does not move a client (it may be
 * re-registering; a dead endpoint is healed through the monitor and the liveness check).
 */
import { create } from "@bufbuild/protobuf";
import {
  NetworkServiceQuerySchema,
  type NetworkServiceResponse,
  NetworkServiceSchema,
} from "../../../../api/gen/registry_pb.js";
import type { Connection } from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { type CallContext, sleep } from "../../../core/context.js";
import type { NseRegistry, NsRegistry } from "../../../registry/api.js";
import { type EventFactory, eventFactoryOf } from "../begin/index.js";
import { findEndpointByName, matchEndpoint } from "../discover/index.js";
import { createMetadataKey, metadataOf } from "../metadata/index.js";

export interface NetSvcMonitorOptions {
  nsRegistry: NsRegistry;
  nseRegistry: NseRegistry;
  /** Stops every watch when aborted (nsmgr's lifetime). */
  signal?: AbortSignal;
  /** Delay before watching again after the watch broke. @default 500 */
  rewatchIntervalMs?: number;
}

export const DEFAULT_REWATCH_INTERVAL_MS = 500;

const watchKey = createMetadataKey<AbortController>("netsvcmonitor");

/** The watch of one connection's network service. */
interface ServiceWatch {
  conn: Connection;
  endpointName: string;
  labels: Record<string, string>;
  ac: AbortController;
  factory: EventFactory;
  ctx: CallContext;
}

export function netSvcMonitorServer(options: NetSvcMonitorOptions): NetworkServiceElement {
  const all = new Set<AbortController>();
  options.signal?.addEventListener("abort", () => {
    for (const ac of all) ac.abort();
    all.clear();
  });
  return {
    name: "netsvcmonitor",
    requires: ["metadata"],
    async request(req, ctx, next) {
      const conn = await next.request(req, ctx);
      const md = metadataOf(ctx, false);
      md.loadAndDelete(watchKey)?.abort();
      const endpointName = conn.networkServiceEndpointName;
      if (!endpointName || options.signal?.aborted) return conn;
      const ac = new AbortController();
      all.add(ac);
      md.store(watchKey, ac);
      const w: ServiceWatch = { conn, endpointName, labels: { ...conn.labels }, ac, factory: eventFactoryOf(ctx), ctx };
      void watchService(options, w).finally(() => all.delete(ac));
      return conn;
    },
    async close(conn, ctx, next) {
      const ac = metadataOf(ctx, false).loadAndDelete(watchKey);
      ac?.abort();
      if (ac) all.delete(ac);
      await next.close(conn, ctx);
    },
  };
}

/** Watches the service until the connection moves or ends; a broken watch is started again. */
async function watchService(options: NetSvcMonitorOptions, w: ServiceWatch): Promise<void> {
  const watchCtx = w.ctx.detached().withCancel({ signal: w.ac.signal });
  const query = create(NetworkServiceQuerySchema, {
    networkService: create(NetworkServiceSchema, { name: w.conn.networkService }),
    watch: true,
  });
  while (!w.ac.signal.aborted) {
    try {
      for await (const response of options.nsRegistry.find(query, watchCtx)) {
        if (await endpointMoved(options, w, response, watchCtx)) {
          await closeMoved(w, response.networkService!.name);
          return;
        }
      }
    } catch (err) {
      if (!w.ac.signal.aborted)
        w.ctx.log.debug({ connId: w.conn.id, err: String(err) }, "network service watch broke, watching again");
    }
    await sleep(options.rewatchIntervalMs ?? DEFAULT_REWATCH_INTERVAL_MS, w.ac.signal).catch(() => {});
  }
}

/**
 * Whether a watch answer about the connection's service moves the client. An endpoint missing
 * from the registry may be re-registering (after a registry or nsmgr restart): only a service
 * deleted, or an endpoint that is there and does not match, moves the client.
 */
async function endpointMoved(
  options: NetSvcMonitorOptions,
  w: ServiceWatch,
  response: NetworkServiceResponse,
  watchCtx: CallContext,
): Promise<boolean> {
  const ns = response.networkService;
  if (!ns || ns.name !== w.conn.networkService) return false;
  const nse = await findEndpointByName(options.nseRegistry, w.endpointName, watchCtx).catch(() => undefined);
  return response.deleted || (nse !== undefined && matchEndpoint(w.labels, ns, [nse]).length === 0);
}

async function closeMoved(w: ServiceWatch, service: string): Promise<void> {
  w.ctx.log.info(
    { connId: w.conn.id, endpoint: w.endpointName, service },
    "the endpoint no longer matches its network service: closing",
  );
  w.ac.abort();
  await w.factory.close().catch(() => {});
}
