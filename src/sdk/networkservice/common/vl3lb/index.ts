// SPDX-License-Identifier: Apache-2.0
/**
 * vl3lb: which vL3 clients a vL3 load balancer spreads its service over (upstream
 * cmd-lb-vl3-vpp's real servers, chosen by NSM_SELECTOR). The balancer follows nsmgr's
 * MonitorConnections stream: a connection of the balancer's network service whose labels contain
 * every selector label is a backend, at its vL3 address (the first `src_ip_addrs`). Its own
 * connection never is. The stream is opened again `retryMs` after it breaks; `onChange` gets the
 * sorted backend addresses whenever they change.
 * Limit: nsmgr reports the connections that pass through it, so backends are the selected clients
 * on the balancer's node (upstream's balancer sees the whole vL3 network).
 */

import type * as grpc from "@grpc/grpc-js";
import {
  type Connection,
  type ConnectionEvent,
  ConnectionEventType,
  create,
  MonitorConnection,
  MonitorScopeSelectorSchema,
} from "../../../../api/index.js";
import { CallContext, sleep } from "../../../core/context.js";
import { NsmError } from "../../../core/errors.js";
import type { Logger } from "../../../core/logger.js";
import { grpcClient } from "../../../grpc/service.js";

/** The backends among `connections` (see the module doc), sorted. */
export function backendsOf(
  connections: Iterable<Connection>,
  service: string,
  selector: Readonly<Record<string, string>>,
  ownIds: ReadonlySet<string>,
): string[] {
  const out = new Set<string>();
  for (const c of connections) {
    const clientId = c.path?.pathSegments[0]?.id ?? c.id;
    if (c.networkService !== service || ownIds.has(clientId) || ownIds.has(c.id)) continue;
    if (!Object.entries(selector).every(([k, v]) => c.labels[k] === v)) continue;
    const ip = c.context?.ipContext?.srcIpAddrs[0]?.split("/")[0];
    if (ip) out.add(ip);
  }
  return [...out].sort();
}

/** Applies one monitor event to `known` (by connection id). */
export function applyEvent(known: Map<string, Connection>, event: ConnectionEvent): void {
  if (event.type === ConnectionEventType.INITIAL_STATE_TRANSFER) known.clear();
  for (const [id, c] of Object.entries(event.connections)) {
    if (event.type === ConnectionEventType.DELETE) known.delete(id);
    else known.set(id, c);
  }
}

/** Options of {@link watchBackends}. */
export interface WatchBackendsOptions {
  /** A channel to nsmgr (the caller owns it). */
  readonly channel: grpc.Client;
  readonly service: string;
  readonly selector: Readonly<Record<string, string>>;
  /** The balancer's own connection ids. */
  readonly ownIds: ReadonlySet<string>;
  readonly onChange: (backends: string[]) => void;
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** @default 1000 */
  readonly retryMs?: number;
}

/** Follows nsmgr's connections until `signal` aborts (see the module doc). */
export async function watchBackends(o: WatchBackendsOptions): Promise<void> {
  let last = "";
  while (!o.signal.aborted) {
    const known = new Map<string, Connection>();
    try {
      const ctx = CallContext.create({ signal: o.signal, log: o.log });
      const stream = grpcClient(MonitorConnection, o.channel).monitorConnections(
        create(MonitorScopeSelectorSchema, {}),
        ctx,
      );
      for await (const event of stream) {
        applyEvent(known, event);
        const backends = backendsOf(known.values(), o.service, o.selector, o.ownIds);
        if (backends.join() === last) continue;
        last = backends.join();
        o.onChange(backends);
      }
    } catch (err) {
      if (!o.signal.aborted) o.log.warn({ err: NsmError.from(err).toStatusString() }, "connection monitor broke");
    }
    await sleep(o.retryMs ?? 1000, o.signal).catch(() => {});
  }
}
