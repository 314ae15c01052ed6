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
 * to run. Every element is wrapped by the trace decorator, which logs entry/exit at `trace`
 * level (and does no work when that level is off).
 */
import type { Connection } from "../../api/gen/connection_pb.js";
import type { NetworkServiceRequest } from "../../api/gen/networkservice_pb.js";
import type { CallContext } from "./context.js";
import { Code, NsmError } from "./errors.js";

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
export interface NetworkServiceElement {
  /** Used by the trace decorator and by `requires` checks. */
  readonly name?: string;
  /** Names of elements that must come earlier in the bound chain (checked by {@link bind}). */
  readonly requires?: readonly string[];
  /** Handles a Request; returns the connection, normally `next.request(…)`'s. */
  request(request: NetworkServiceRequest, ctx: CallContext, next: NetworkServiceHandler): Promise<Connection>;
  /** Handles a Close; undoes what `request` did and calls `next.close(…)`. */
  close(conn: Connection, ctx: CallContext, next: NetworkServiceHandler): Promise<void>;
}

/** An element of a server (endpoint, nsmgr, forwarder) chain. */
export type NetworkServiceServer = NetworkServiceElement;
/** An element of a client chain. */
export type NetworkServiceClient = NetworkServiceElement;

const chainElements = Symbol("chainElements");

interface ComposedChain extends NetworkServiceElement {
  readonly [chainElements]: readonly NetworkServiceElement[];
}

/** The element that does nothing but call next (Go's `null.NewServer()`). */
export function passThrough(name = "passThrough"): NetworkServiceElement {
  return {
    name,
    request: (req, ctx, next) => next.request(req, ctx),
    close: (conn, ctx, next) => next.close(conn, ctx),
  };
}

/** Flattens nested chains so that `requires` checks and tracing see every element. */
function flatten(elements: readonly NetworkServiceElement[]): NetworkServiceElement[] {
  const out: NetworkServiceElement[] = [];
  for (const e of elements) {
    const inner = (e as Partial<ComposedChain>)[chainElements];
    if (inner) out.push(...inner);
    else out.push(e);
  }
  return out;
}

/** Composes elements in call order. The result is an element: chains nest. */
export function chain(...elements: NetworkServiceElement[]): NetworkServiceElement {
  const flat = flatten(elements);
  // Bound chains are flattened by bind(); this cache only serves a chain called directly as an element.
  const linked = new WeakMap<NetworkServiceHandler, NetworkServiceHandler>();
  const run = (outer: NetworkServiceHandler) => {
    let h = linked.get(outer);
    if (!h) {
      h = link(flat, outer);
      linked.set(outer, h);
    }
    return h;
  };
  const composed: ComposedChain = {
    name: "chain",
    [chainElements]: flat,
    request: (req, ctx, next) => run(next).request(req, ctx),
    close: (conn, ctx, next) => run(next).close(conn, ctx),
  };
  return composed;
}

/** The end of every chain: Request returns the connection unchanged, Close does nothing. */
export const tail: NetworkServiceHandler = {
  request: async (req) => {
    if (!req.connection) throw new NsmError("request has no connection", Code.InvalidArgument);
    return req.connection;
  },
  close: async () => {},
};

/** Binds a chain to the tail (or to `outer`), checking `requires` once. */
export function bind(element: NetworkServiceElement, outer: NetworkServiceHandler = tail): NetworkServiceHandler {
  const flat = flatten([element]);
  checkRequires(flat);
  return link(flat, outer);
}

function checkRequires(flat: readonly NetworkServiceElement[]): void {
  const seen = new Set<string>();
  for (const e of flat) {
    for (const r of e.requires ?? []) {
      if (!seen.has(r)) {
        throw new NsmError(`chain element "${e.name}" must come after "${r}"`, Code.FailedPrecondition, {
          reason: "chain-order",
        });
      }
    }
    if (e.name) seen.add(e.name);
  }
}

function link(flat: readonly NetworkServiceElement[], outer: NetworkServiceHandler): NetworkServiceHandler {
  let next = outer;
  for (let i = flat.length - 1; i >= 0; i--) next = traced(flat[i]!, next);
  return next;
}

/** Turns a synchronous throw of a non-async element into a rejection. */
function settle<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return fn();
  } catch (err) {
    return Promise.reject(err);
  }
}

/** The trace decorator: logs element entry, exit and failures at trace level, costs one check otherwise. */
function traced(element: NetworkServiceElement, next: NetworkServiceHandler): NetworkServiceHandler {
  const name = element.name ?? "element";
  return {
    request: (req, ctx) => {
      if (!ctx.log.isLevelEnabled("trace")) return settle(() => element.request(req, ctx, next));
      const log = ctx.log.child({ element: name });
      log.trace({ connId: req.connection?.id }, "request");
      return settle(() => element.request(req, ctx, next)).then(
        (conn) => {
          log.trace({ connId: conn.id }, "request done");
          return conn;
        },
        (err: unknown) => {
          log.trace({ connId: req.connection?.id, err: String(err) }, "request failed");
          throw err;
        },
      );
    },
    close: (conn, ctx) => {
      if (!ctx.log.isLevelEnabled("trace")) return settle(() => element.close(conn, ctx, next));
      const log = ctx.log.child({ element: name });
      log.trace({ connId: conn.id }, "close");
      return settle(() => element.close(conn, ctx, next)).then(
        () => log.trace({ connId: conn.id }, "close done"),
        (err: unknown) => {
          log.trace({ connId: conn.id, err: String(err) }, "close failed");
          throw err;
        },
      );
    },
  };
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

/**
 * Runs a client chain as a server element (Go's `adapters.NewClientToServer`): the client
 * chain is bound in front of the server chain's `next`.
 */
export function clientToServer(client: NetworkServiceElement): NetworkServiceElement {
  return client;
}
