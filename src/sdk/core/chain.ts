// SPDX-License-Identifier: Apache-2.0
/**
 * Chain composition for NetworkService elements.
 *
 * An element is `{ request(req, ctx, next), close(conn, ctx, next) }` with `next` passed
 * explicitly. {@link chain} composes elements in call order (a composed chain is itself an
 * element whose own `next` is whatever follows it); {@link bind} closes a chain with the tail,
 * which returns `request.connection` unchanged and whose close does nothing.
 *
 * Client-side and server-side elements have the same shape; the names
 * `NetworkServiceClient`/`NetworkServiceServer` only say on which side an element is meant
 * to run. Composition, `requires` checks and tracing are the generic engine's (`engine.ts`),
 * shared with the registry chains.
 */
import type { Connection } from "../../api/gen/connection_pb.js";
import type { NetworkServiceRequest } from "../../api/gen/networkservice_pb.js";
import type { CallContext } from "./context.js";
import { type ChainShape, chainEngine, type ElementInfo } from "./engine.js";
import { requestConnection } from "./request.js";

/** What an element calls to continue: the rest of the chain. */
export interface NetworkServiceHandler {
  /** Passes a Request on; resolves to the connection the rest of the chain returned. */
  request(request: NetworkServiceRequest, ctx: CallContext): Promise<Connection>;
  /** Passes a Close on. */
  close(conn: Connection, ctx: CallContext): Promise<void>;
}

/**
 * A chain element: sees every Request and Close, does its part and calls `next` explicitly
 * (before it, to change what goes on; after it, to see or change what comes back).
 */
export interface NetworkServiceElement extends ElementInfo {
  /** Handles a Request; returns the connection, normally `next.request(…)`'s. */
  request(request: NetworkServiceRequest, ctx: CallContext, next: NetworkServiceHandler): Promise<Connection>;
  /** Handles a Close; undoes what `request` did and calls `next.close(…)`. */
  close(conn: Connection, ctx: CallContext, next: NetworkServiceHandler): Promise<void>;
}

/** An element of a server (endpoint, nsmgr, forwarder) chain. */
export type NetworkServiceServer = NetworkServiceElement;
/** An element of a client chain. */
export type NetworkServiceClient = NetworkServiceElement;

const networkServiceShape: ChainShape = {
  label: "chain",
  composedName: "chain",
  traceType: "networkService",
  methods: {
    request: { answers: "promise", traceFields: (req: NetworkServiceRequest) => ({ connId: req.connection?.id }) },
    close: { answers: "promise", traceFields: (conn: Connection) => ({ connId: conn.id }) },
  },
};

const engine = chainEngine<NetworkServiceElement, NetworkServiceHandler>(networkServiceShape);

/** The element that does nothing but call next (Go's `null.NewServer()`). */
export function passThrough(name = "passThrough"): NetworkServiceElement {
  return engine.passThrough(name);
}

/** Composes elements in call order. The result is an element: chains nest. */
export function chain(...elements: NetworkServiceElement[]): NetworkServiceElement {
  return engine.chain(elements);
}

/** The end of every chain: Request returns the connection unchanged, Close does nothing. */
export const tail: NetworkServiceHandler = {
  request: async (req) => requestConnection(req),
  close: async () => {},
};

/** Binds a chain to the tail (or to `outer`), checking `requires` once. */
export function bind(element: NetworkServiceElement, outer: NetworkServiceHandler = tail): NetworkServiceHandler {
  return engine.bind(element, outer);
}

/**
 * Closes what `next` opened when an element's own work fails after `next` succeeded (the element
 * contract), with a fresh deadline since the request's may be spent. A failure of this Close is
 * logged, never thrown: the element's own error is the one to return.
 */
export async function closeQuietly(
  next: NetworkServiceHandler,
  conn: Connection,
  ctx: CallContext,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  try {
    await next.close(conn, ctx.detached(timeoutMs));
  } catch (err) {
    ctx.log.warn({ connId: conn.id, err: String(err) }, `cannot close downstream after ${what}`);
  }
}
