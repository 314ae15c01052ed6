// SPDX-License-Identifier: Apache-2.0
/**
 * metadata: per-connection storage for chain elements.
 *
 * Purpose: elements keep per-connection state (a chosen forwarder, a kernel link, a timer)
 * under typed keys instead of their own maps keyed by connection id.
 * Chain placement: after updatepath (the connection id must be final) and after begin
 * (so that storage is never touched by two events of one connection at once).
 * Per-connection state: one entry per connection id with a client-side and a server-side
 * map; deleted after Close, and after a failed first Request. A client chain run inside a
 * server chain (connect) uses the server's entry, so server elements can read what client
 * elements stored (e.g. monitor reads the downstream channel stored by dial).
 * Failure behaviour: {@link metadataOf} throws FailedPrecondition when no metadata element
 * ran earlier in the chain (a chain-order bug).
 */
import type { Connection, NetworkServiceRequest } from "../../../../api/index.js";
import type { NetworkServiceElement, NetworkServiceHandler } from "../../../core/chain.js";
import { type CallContext, createContextKey } from "../../../core/context.js";
import { Code, NsmError } from "../../../core/errors.js";

/** A typed key for one element's per-connection value. */
export interface MetadataKey<T> {
  readonly id: symbol;
  /** Only for type inference. */
  readonly _type?: T;
}

export function createMetadataKey<T>(description: string): MetadataKey<T> {
  return { id: Symbol(description) };
}

interface Entry {
  readonly client: Map<symbol, unknown>;
  readonly server: Map<symbol, unknown>;
}

const entryKey = createContextKey<Entry | undefined>(undefined, "metadata");

/** The per-connection store of this side (client or server) of the chain. */
export class ConnectionMetadata {
  readonly #map: Map<symbol, unknown>;
  constructor(map: Map<symbol, unknown>) {
    this.#map = map;
  }
  load<T>(key: MetadataKey<T>): T | undefined {
    return this.#map.get(key.id) as T | undefined;
  }
  store<T>(key: MetadataKey<T>, value: T): void {
    this.#map.set(key.id, value);
  }
  loadOrStore<T>(key: MetadataKey<T>, make: () => T): T {
    if (!this.#map.has(key.id)) this.#map.set(key.id, make());
    return this.#map.get(key.id) as T;
  }
  loadAndDelete<T>(key: MetadataKey<T>): T | undefined {
    const v = this.#map.get(key.id) as T | undefined;
    this.#map.delete(key.id);
    return v;
  }
  delete(key: MetadataKey<unknown>): void {
    this.#map.delete(key.id);
  }
}

/** The metadata of the current connection for the client (`isClient`) or server side. */
export function metadataOf(ctx: CallContext, isClient: boolean): ConnectionMetadata {
  const e = ctx.get(entryKey);
  if (!e) {
    throw new NsmError("no metadata in context: add a metadata element earlier in the chain", Code.FailedPrecondition, {
      reason: "chain-order",
    });
  }
  return new ConnectionMetadata(isClient ? e.client : e.server);
}

function createMetadata(isClient: boolean): NetworkServiceElement {
  const entries = new Map<string, Entry>();
  return {
    name: isClient ? "metadataClient" : "metadata",
    async request(req: NetworkServiceRequest, ctx: CallContext, next: NetworkServiceHandler) {
      // A client chain run by a server (connect) shares the server's entry: the server owns it.
      if (isClient && ctx.has(entryKey)) return next.request(req, ctx);
      const id = req.connection?.id ?? "";
      let entry = entries.get(id);
      const fresh = entry === undefined;
      if (!entry) {
        entry = { client: new Map(), server: new Map() };
        entries.set(id, entry);
      }
      try {
        return await next.request(req, ctx.with(entryKey, entry));
      } catch (err) {
        if (fresh) entries.delete(id);
        throw err;
      }
    },
    async close(conn: Connection, ctx: CallContext, next: NetworkServiceHandler) {
      if (isClient && ctx.has(entryKey)) return next.close(conn, ctx);
      const entry = entries.get(conn.id) ?? { client: new Map(), server: new Map() };
      try {
        await next.close(conn, ctx.with(entryKey, entry));
      } finally {
        entries.delete(conn.id);
      }
    },
  };
}

export const metadataServer = (): NetworkServiceElement => createMetadata(false);
export const metadataClient = (): NetworkServiceElement => createMetadata(true);
