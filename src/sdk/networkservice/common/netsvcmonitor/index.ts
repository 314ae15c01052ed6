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
 * One watch per network service, shared by all the connections to it (1000 connections to one
 * service cost one registry stream, not 1000): each connection subscribes to its service's
 * watch, and is checked against every answer; a new subscriber is checked at once against the
 * service's last answer.
 * Per-connection state: the subscription (server metadata), ended by Close; the watch of a
 * service stops `lingerMs` after its last subscriber left (unless one came meanwhile):
 * connections that come and go one after another would otherwise open and cancel a registry
 * stream each.
 * Failure behaviour: never fails a Request; a broken watch (the registry restarted) is started
 * again every `rewatchIntervalMs` while it has subscribers, and its first answer re-checks every
 * one. An endpoint missing from the registry does not move a client (it may be re-registering;
 * a dead endpoint is healed through the monitor and the liveness check).
 */
import { create } from "@bufbuild/protobuf";
import {
  NetworkServiceQuerySchema,
  type NetworkServiceResponse,
  NetworkServiceSchema,
} from "../../../../api/gen/registry_pb.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { type CallContext, sleep } from "../../../core/context.js";
import type { NseRegistry, NsRegistry } from "../../../registry/api.js";
import { eventFactoryOf } from "../begin/index.js";
import { findEndpointByName, matchEndpoint } from "../discover/index.js";
import { createMetadataKey, metadataOf } from "../metadata/index.js";

export interface NetSvcMonitorOptions {
  nsRegistry: NsRegistry;
  nseRegistry: NseRegistry;
  /** Stops every watch when aborted (nsmgr's lifetime). */
  signal?: AbortSignal;
  /** Delay before watching again after the watch broke. @default 500 */
  rewatchIntervalMs?: number;
  /** How long a service's watch stays on without subscribers. @default 5000 */
  lingerMs?: number;
}

export const DEFAULT_REWATCH_INTERVAL_MS = 500;
export const DEFAULT_WATCH_LINGER_MS = 5_000;

/** Checks one connection against an answer of its service's watch. */
type Check = (response: NetworkServiceResponse) => void;

interface ServiceWatch {
  readonly checks: Set<Check>;
  readonly stop: AbortController;
  /** The service as last seen (what a new subscriber is checked against). */
  last?: NetworkServiceResponse;
  /** Set while nobody subscribes: stops the watch when it fires. */
  linger?: NodeJS.Timeout;
}

/** One registry watch per network service, its answers fanned out to the service's connections. */
class ServiceWatches {
  readonly #watches = new Map<string, ServiceWatch>();
  readonly #options: NetSvcMonitorOptions;

  constructor(options: NetSvcMonitorOptions) {
    this.#options = options;
    options.signal?.addEventListener("abort", () => {
      for (const w of this.#watches.values()) {
        clearTimeout(w.linger);
        w.stop.abort();
      }
      this.#watches.clear();
    });
  }

  /** Checks `check` against every answer about `service` until the returned function is called. */
  subscribe(service: string, check: Check, ctx: CallContext): () => void {
    let w = this.#watches.get(service);
    if (!w) {
      w = { checks: new Set(), stop: new AbortController() };
      this.#watches.set(service, w);
      this.#run(service, w, ctx.detached().withCancel({ signal: w.stop.signal }));
    } else if (w.last) check(w.last);
    clearTimeout(w.linger);
    w.linger = undefined;
    w.checks.add(check);
    const watch = w;
    return () => {
      watch.checks.delete(check);
      if (watch.checks.size > 0 || watch.linger) return;
      const lingerMs = this.#options.lingerMs ?? DEFAULT_WATCH_LINGER_MS;
      if (lingerMs <= 0) return this.#stop(service, watch);
      watch.linger = setTimeout(() => this.#stop(service, watch), lingerMs);
      watch.linger.unref();
    };
  }

  #stop(service: string, watch: ServiceWatch): void {
    clearTimeout(watch.linger);
    if (watch.checks.size > 0) return;
    watch.stop.abort();
    if (this.#watches.get(service) === watch) this.#watches.delete(service);
  }

  #run(service: string, w: ServiceWatch, ctx: CallContext): void {
    void (async () => {
      while (!w.stop.signal.aborted) {
        await this.#watchOnce(service, w, ctx);
        await sleep(this.#options.rewatchIntervalMs ?? DEFAULT_REWATCH_INTERVAL_MS, w.stop.signal).catch(() => {});
      }
    })();
  }

  /** Follows the registry's watch of `service` until it breaks, passing each answer to the checks. */
  async #watchOnce(service: string, w: ServiceWatch, ctx: CallContext): Promise<void> {
    const query = create(NetworkServiceQuerySchema, {
      networkService: create(NetworkServiceSchema, { name: service }),
      watch: true,
    });
    try {
      for await (const response of this.#options.nsRegistry.find(query, ctx)) {
        if (response.networkService?.name !== service) continue;
        w.last = response;
        for (const check of [...w.checks]) check(response);
      }
    } catch (err) {
      if (!w.stop.signal.aborted)
        ctx.log.debug({ service, err: String(err) }, "network service watch broke, watching again");
    }
  }
}

const subscriptionKey = createMetadataKey<() => void>("netsvcmonitor");

export function netSvcMonitorServer(options: NetSvcMonitorOptions): NetworkServiceElement {
  const watches = new ServiceWatches(options);
  return {
    name: "netsvcmonitor",
    requires: ["metadata"],
    async request(req, ctx, next) {
      const conn = await next.request(req, ctx);
      const md = metadataOf(ctx, false);
      md.loadAndDelete(subscriptionKey)?.();
      const endpointName = conn.networkServiceEndpointName;
      if (!endpointName || options.signal?.aborted) return conn;
      const factory = eventFactoryOf(ctx);
      const labels = { ...conn.labels };
      const connId = conn.id;
      // Kept for the connection's life: the context without the Request's lifetime, not the
      // Request's context or connection.
      const kept = ctx.retained();
      let done = false;
      const unsubscribe = watches.subscribe(
        conn.networkService,
        (response) => {
          void (async () => {
            const ns = response.networkService!;
            const nse = await findEndpointByName(options.nseRegistry, endpointName, kept.detached()).catch(
              () => undefined,
            );
            // An endpoint missing from the registry may be re-registering (after a registry or
            // nsmgr restart): only a service deleted, or an endpoint that is there and does not
            // match, moves the client.
            const moved = response.deleted || (nse !== undefined && matchEndpoint(labels, ns, [nse]).length === 0);
            if (!moved || done) return;
            done = true;
            unsubscribe();
            kept.log.info(
              { connId, endpoint: endpointName, service: ns.name },
              "the endpoint no longer matches its network service: closing",
            );
            await factory.close().catch(() => {});
          })();
        },
        ctx,
      );
      md.store(subscriptionKey, () => {
        done = true;
        unsubscribe();
      });
      return conn;
    },
    async close(conn, ctx, next) {
      metadataOf(ctx, false).loadAndDelete(subscriptionKey)?.();
      await next.close(conn, ctx);
    },
  };
}
