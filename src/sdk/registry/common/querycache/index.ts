// SPDX-License-Identifier: Apache-2.0
/**
 * querycache: answers repeated non-watch Finds from a local copy kept fresh by a watch.
 *
 * Purpose: discover (forwarder) and discoverforwarder (nsmgr) look up the same network service
 * and its endpoints for every connection; each look-up is two gRPC hops (forwarder → nsmgr →
 * registry). The first Find for a query goes downstream as usual, and also opens a watch for the
 * same query; from then on the answer comes from the copy, which the watch keeps up to date
 * (registrations, unregistrations, expiries). The upstream SDK has a query cache for the same
 * reason.
 * Chain placement: registry client chains, right before connect.
 * Per-query state: the records by name and the watch; dropped when the watch breaks (the next
 * Find goes downstream again) or when unused for `idleMs`.
 * Failure behaviour: a miss behaves exactly like no cache; Register/Unregister pass through.
 */
import type { CallContext } from "../../../core/context.js";
import type { NseRegistry, NsRegistry } from "../../api.js";
import { nseRegistryFromChain, nsRegistryFromChain } from "../../core/adapters.js";
import { bindRegistry, type RegistryElement, type RegistryHandler, registryChain } from "../../core/chain.js";
import {
  type NseTypes,
  type NsTypes,
  nseKind,
  nsKind,
  type RegistryKind,
  type RegistryTypes,
} from "../../core/kind.js";
import { registryConnect } from "../connect/index.js";

export interface RegistryQueryCacheOptions {
  /** Drop a cached query (and its watch) after this long without a Find. @default 60000 */
  readonly idleMs?: number;
  /** Stops every watch when it aborts (the owner's lifetime). */
  readonly signal?: AbortSignal;
}

interface Entry<R> {
  readonly records: Map<string, R>;
  readonly stop: AbortController;
  lastUse: number;
}

/** Applies the answers of a watch to the cached records until the watch ends. */
async function followWatch<T extends RegistryTypes>(
  kind: RegistryKind<T>,
  entry: Entry<T["record"]>,
  answers: AsyncIterable<T["response"]>,
): Promise<void> {
  for await (const response of answers) {
    const record = kind.responseRecord(response);
    if (!record) continue;
    if (kind.isDeleted(response)) entry.records.delete(kind.nameOf(record));
    else entry.records.set(kind.nameOf(record), record);
  }
}

export function registryQueryCache<T extends RegistryTypes>(
  kind: RegistryKind<T>,
  options: RegistryQueryCacheOptions = {},
): RegistryElement<T> {
  const idleMs = options.idleMs ?? 60_000;
  const entries = new Map<string, Entry<T["record"]>>();
  const keyOf = (query: T["query"]) =>
    JSON.stringify(kind.queryTemplate(query) ?? {}, (_k, v) => (typeof v === "bigint" ? v.toString() : v));

  const watch = (
    key: string,
    entry: Entry<T["record"]>,
    query: T["query"],
    next: RegistryHandler<T>,
    ctx: CallContext,
  ) => {
    const watchCtx = ctx.detached().withCancel({ signal: entry.stop.signal });
    void (async () => {
      try {
        await followWatch(kind, entry, next.find(kind.query(kind.queryTemplate(query), true), watchCtx));
      } catch (err) {
        if (!entry.stop.signal.aborted) ctx.log.debug({ err: String(err) }, "query cache watch broke");
      } finally {
        entry.stop.abort();
        if (entries.get(key) === entry) entries.delete(key);
      }
    })();
  };

  let sweeper: NodeJS.Timeout | undefined;
  const sweep = () => {
    const now = Date.now();
    for (const e of entries.values()) if (now - e.lastUse > idleMs) e.stop.abort();
    if (entries.size === 0 && sweeper) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  };
  const track = (key: string, entry: Entry<T["record"]>) => {
    entries.set(key, entry);
    if (!sweeper) {
      sweeper = setInterval(sweep, Math.max(50, idleMs / 2));
      sweeper.unref();
    }
  };
  options.signal?.addEventListener("abort", () => {
    for (const e of entries.values()) e.stop.abort();
    entries.clear();
    if (sweeper) clearInterval(sweeper);
    sweeper = undefined;
  });

  return {
    name: "querycache",
    register: (record, ctx, next) => next.register(record, ctx),
    unregister: (record, ctx, next) => next.unregister(record, ctx),
    async *find(query, ctx, next) {
      if (kind.isWatch(query) || options.signal?.aborted) {
        yield* next.find(query, ctx);
        return;
      }
      const key = keyOf(query);
      const hit = entries.get(key);
      if (hit && !hit.stop.signal.aborted) {
        hit.lastUse = Date.now();
        for (const record of hit.records.values()) yield kind.response(kind.cloneRecord(record), false);
        return;
      }
      const entry: Entry<T["record"]> = { records: new Map(), stop: new AbortController(), lastUse: Date.now() };
      for await (const response of next.find(query, ctx)) {
        const record = kind.responseRecord(response);
        if (record && !kind.isDeleted(response)) entry.records.set(kind.nameOf(record), kind.cloneRecord(record));
        yield response;
      }
      track(key, entry);
      watch(key, entry, query, next, ctx);
    },
  };
}

/** Wraps registry clients with a query cache each (see {@link registryQueryCache}). */
export function withQueryCache(
  registries: { readonly ns: NsRegistry; readonly nse: NseRegistry },
  options: RegistryQueryCacheOptions = {},
): { ns: NsRegistry; nse: NseRegistry } {
  return {
    ns: nsRegistryFromChain(
      bindRegistry(
        registryChain<NsTypes>(registryQueryCache(nsKind, options), registryConnect<NsTypes>(registries.ns)),
      ),
    ),
    nse: nseRegistryFromChain(
      bindRegistry(
        registryChain<NseTypes>(registryQueryCache(nseKind, options), registryConnect<NseTypes>(registries.nse)),
      ),
    ),
  };
}
