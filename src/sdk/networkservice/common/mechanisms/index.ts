// SPDX-License-Identifier: Apache-2.0
/**
 * mechanisms: hands a connection to the sub-chain of its mechanism type.
 *
 * Purpose: one chain serves several mechanisms (KERNEL, VXLAN, NOOP…). The server dispatches
 * on `connection.mechanism.type`; a request without a mechanism is tried with each
 * `mechanism_preferences` entry in order (set as the connection's mechanism) until one
 * sub-chain succeeds. The client runs the sub-chain of the connection's mechanism on a
 * refresh, or lets the sub-clients add their preferences on a first request.
 * Chain placement: server: after the elements that do not depend on the mechanism (IPAM…),
 * before the ones that do. Client: before filtermechanisms/mechanismpriority, so that those see
 * every preference. Each sub-element's `next` is the rest of the outer chain.
 * Per-connection state: none of its own.
 * Options: a map from mechanism type (e.g. `KERNEL`) to the element handling it.
 * Failure behaviour: a mechanism of a type not in the map, or no preference of a known type,
 * is InvalidArgument "cannot support any of the requested mechanisms" listing the types.
 * When every tried preference fails downstream, the error has the code of the last failure and
 * lists each one. Close for an unknown type goes straight to `next` (cleanup is never refused).
 */
import {
  type Connection,
  ConnectionSchema,
  clone,
  type Mechanism,
  MechanismSchema,
  type NetworkServiceRequest,
} from "../../../../api/index.js";
import { chain, type NetworkServiceElement, type NetworkServiceHandler } from "../../../core/chain.js";
import type { CallContext } from "../../../core/context.js";
import { invalidArgument, NsmError } from "../../../core/errors.js";
import { requestConnection } from "../../../core/request.js";

/** Elements per mechanism type (the wire `Mechanism.type`, e.g. `KERNEL`). */
export type MechanismElements = Readonly<Record<string, NetworkServiceElement>>;

function cannotSupport(types: readonly string[]): NsmError {
  const list = types.length ? types.join(", ") : "none";
  return invalidArgument(`cannot support any of the requested mechanisms: [${list}]`, { reason: "no-mechanism" });
}

function lookup(map: MechanismElements, type: string | undefined): NetworkServiceElement | undefined {
  return type !== undefined && Object.hasOwn(map, type) ? map[type] : undefined;
}

/** Combines the failures of several tried preferences into one error with the last failure's code. */
function allFailed(failures: readonly [string, NsmError][]): NsmError {
  if (failures.length === 1) return failures[0]![1];
  const last = failures.at(-1)![1];
  const detail = failures.map(([type, err]) => `${type}: ${err.rawMessage}`).join("; ");
  return new NsmError(`cannot support any of the requested mechanisms: ${detail}`, last.code, {
    cause: last,
    reason: "no-mechanism",
  });
}

async function tryPreferences(
  map: MechanismElements,
  req: NetworkServiceRequest,
  ctx: CallContext,
  next: NetworkServiceHandler,
  setMechanism: boolean,
): Promise<Connection> {
  const failures: [string, NsmError][] = [];
  for (const pref of req.mechanismPreferences) {
    const sub = lookup(map, pref.type);
    if (!sub) continue;
    const connection = clone(ConnectionSchema, req.connection!);
    if (setMechanism) connection.mechanism = clone(MechanismSchema, pref);
    try {
      return await sub.request({ ...req, connection }, ctx, next);
    } catch (err) {
      ctx.throwIfDone();
      failures.push([pref.type, NsmError.from(err)]);
    }
  }
  if (failures.length === 0) throw cannotSupport(req.mechanismPreferences.map((m: Mechanism) => m.type));
  throw allFailed(failures);
}

function closeFor(map: MechanismElements) {
  return (conn: Connection, ctx: CallContext, next: NetworkServiceHandler): Promise<void> => {
    const sub = lookup(map, conn.mechanism?.type);
    if (!sub) {
      ctx.log.debug({ connId: conn.id, mechanism: conn.mechanism?.type }, "close without a known mechanism");
      return next.close(conn, ctx);
    }
    return sub.close(conn, ctx, next);
  };
}

function copy(mechanisms: MechanismElements): MechanismElements {
  return Object.freeze({ ...mechanisms });
}

/**
 * Dispatches Requests and Closes on the mechanism type (upstream `mechanisms.NewServer`).
 * Without a connection mechanism, the preferences are tried in order.
 */
export function mechanismsServer(mechanisms: MechanismElements): NetworkServiceElement {
  const map = copy(mechanisms);
  return {
    name: "mechanisms",
    async request(req, ctx, next) {
      const mech = requestConnection(req).mechanism;
      if (mech) {
        const sub = lookup(map, mech.type);
        if (!sub) return Promise.reject(cannotSupport([mech.type]));
        return sub.request(req, ctx, next);
      }
      return tryPreferences(map, req, ctx, next, true);
    },
    close: closeFor(map),
  };
}

/**
 * Runs the mechanism sub-clients (upstream `mechanisms.NewClient`).
 *
 * - The connection has a mechanism (refresh): only the sub-client of its type runs.
 * - Some preferences have known types: each of those sub-clients is tried in preference order.
 * - Otherwise every sub-client runs, in map order, so that each adds its own preference.
 */
export function mechanismsClient(mechanisms: MechanismElements): NetworkServiceElement {
  const map = copy(mechanisms);
  const all = Object.values(map);
  const everyone = all.length ? chain(...all) : undefined;
  return {
    name: "mechanismsClient",
    async request(req, ctx, next) {
      const mech = requestConnection(req).mechanism;
      if (mech) {
        const sub = lookup(map, mech.type);
        if (!sub) return Promise.reject(cannotSupport([mech.type]));
        return sub.request(req, ctx, next);
      }
      if (req.mechanismPreferences.some((m) => lookup(map, m.type))) return tryPreferences(map, req, ctx, next, false);
      if (!everyone) return Promise.reject(cannotSupport(req.mechanismPreferences.map((m) => m.type)));
      return everyone.request(req, ctx, next);
    },
    close: closeFor(map),
  };
}
