// SPDX-License-Identifier: Apache-2.0
/**
 * MonitorConnections authorization (upstream `monitorconnection/authorize`).
 *
 * Wraps a MonitorConnection service implementation: before streaming, checks the policies
 * with `spiffeIdConnectionMap` (what each peer requested from this hop, recorded by the
 * authorize server), `selectorConnectionIds` (the ids in the selector's path segments) and
 * `serviceSpiffeId` (the caller's SPIFFE ID from its TLS certificate). With the
 * `service_connection` policy a caller may only monitor connections it requested. Upstream
 * nsmgr runs this with no policy (any mTLS peer may monitor); that stays the default here.
 * With the built-in service_connection policy the stream is also filtered: every event carries
 * only the connections the caller requested (upstream passes a selector that names one of the
 * caller's connections, then shows everything it selects).
 * Failure behaviour: the stream ends at once with PermissionDenied "no sufficient privileges".
 */
import { type ConnectionEvent, ConnectionEventType, type MonitorScopeSelector } from "../../api/index.js";
import type { CallContext } from "../../sdk/core/context.js";
import { monitorServiceConnection } from "../policy/builtin.js";
import { checkPolicies, type Policy } from "../policy/policy.js";
import { peerCertificateOf } from "../tls.js";
import { trySpiffeIdOfCertificate } from "../x509.js";
import type { SpiffeIdConnectionMap } from "./authorize.js";

/** The shape of a MonitorConnection service implementation (see `monitorConnectionService`). */
export interface MonitorConnectionServiceImpl {
  monitorConnections(selector: MonitorScopeSelector, ctx: CallContext): AsyncIterable<ConnectionEvent>;
}

export interface AuthorizeMonitorOptions {
  /** @default none (upstream default): every caller may monitor */
  readonly policies?: readonly Policy[];
  /** The map the endpoint's authorize server fills. Required when a policy reads it. */
  readonly spiffeIdConnectionMap?: SpiffeIdConnectionMap;
}

/** Wraps `service` so that MonitorConnections is authorized first. */
export function authorizeMonitorConnectionService(
  service: MonitorConnectionServiceImpl,
  options: Readonly<AuthorizeMonitorOptions> = {},
): MonitorConnectionServiceImpl {
  const policies = options.policies ?? [];
  return {
    async *monitorConnections(selector, ctx) {
      if (policies.length > 0) await checkMonitorPolicies(policies, selector, ctx, options);
      if (!policies.includes(monitorServiceConnection)) {
        yield* service.monitorConnections(selector, ctx);
        return;
      }
      // With service_connection, a selector naming one own connection passes the policy (as
      // upstream); the events then carry only the caller's own connections, never others'.
      const caller = trySpiffeIdOfCertificate(peerCertificateOf(ctx)) ?? "";
      for await (const event of service.monitorConnections(selector, ctx)) {
        const map = options.spiffeIdConnectionMap;
        const mine = onlyOwnedConnections(event, (id) => map?.has(caller, id) ?? false);
        if (mine) yield mine;
      }
    },
  };
}

async function checkMonitorPolicies(
  policies: readonly Policy[],
  selector: MonitorScopeSelector,
  ctx: CallContext,
  options: Readonly<AuthorizeMonitorOptions>,
): Promise<void> {
  const peerCertificate = peerCertificateOf(ctx);
  await checkPolicies(
    policies,
    {
      index: 0,
      pathSegments: [],
      peerCertificate,
      spiffeIdConnectionMap: options.spiffeIdConnectionMap?.toRecord() ?? {},
      selectorConnectionIds: selector.pathSegments.map((s) => s.id),
      serviceSpiffeId: trySpiffeIdOfCertificate(peerCertificate) ?? "",
      now: new Date(),
    },
    ctx.log,
    "monitor",
  );
}

/**
 * The event with only the connections whose path passes through one of `owned`; undefined when
 * none is left (except for the initial state transfer, which is always sent).
 */
function onlyOwnedConnections(event: ConnectionEvent, owned: (id: string) => boolean): ConnectionEvent | undefined {
  const connections = Object.fromEntries(
    Object.entries(event.connections).filter(([, c]) => (c.path?.pathSegments ?? []).some((s) => owned(s.id))),
  );
  const kept = Object.keys(connections).length;
  if (kept === 0 && event.type !== ConnectionEventType.INITIAL_STATE_TRANSFER) return undefined;
  return kept === Object.keys(event.connections).length ? event : { ...event, connections };
}
