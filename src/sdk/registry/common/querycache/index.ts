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
 * Failure behaviour: a miss behaves like no cache, with one exception: when the watch broke
 * (the registry restarted) and the Find that follows fails with Unavailable before any answer,
 * the records the broken watch last held answer it, those whose registration has not run out
 * (an endpoint's expiration time; at most `idleMs` after the break for records without one).
 * So a refresh during a registry restart still finds its forwarder and endpoint, as upstream's
 * cache does, instead of failing and making the client reselect. Register/Unregister pass through.
 */
import type { CallContext } from "../../../core/context.js";
import { Code } from "../../../core/errors.js";
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
  /** Set when the entry was dropped for being unused (not for a broken watch). */
  idle?: boolean;
}

/** The records of a watch that broke, kept to answer while the registry cannot. */
interface Stale<R> {
  readonly records: Map<string, R>;
  readonly since: number;
}

function isUnavailable(err: unknown): boolean {
  return (err as { code?: unknown })?.code === Code.Unavailable;
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

/** The cached queries of one element: entries with their watches, and the stale copies of broken ones. */
class QueryStore<T extends RegistryTypes> {
  readonly entries = new Map<string, Entry<T["record"]>>();
  readonly #stale = new Map<string, Stale<T["record"]>>();
  #sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly kind: RegistryKind<T>,
    private readonly idleMs: number,
    private readonly lifetime: AbortSignal | undefined,
  ) {
    lifetime?.addEventListener("abort", () => this.#close());
  }

  keyOf(query: T["query"]): string {
    return JSON.stringify(this.kind.queryTemplate(query) ?? {}, (_k, v) => (typeof v === "bigint" ? v.toString() : v));
  }

  /** Starts following `query` for `entry`; when the watch breaks, its records become stale. */
  watch(key: string, entry: Entry<T["record"]>, query: T["query"], next: RegistryHandler<T>, ctx: CallContext): void {
    this.entries.set(key, entry);
    this.#stale.delete(key);
    if (!this.#sweeper) {
      this.#sweeper = setInterval(() => this.#sweep(), Math.max(50, this.idleMs / 2));
      this.#sweeper.unref();
    }
    const watchCtx = ctx.detached().withCancel({ signal: entry.stop.signal });
    const kind = this.kind;
    void (async () => {
      try {
        await followWatch(kind, entry, next.find(kind.query(kind.queryTemplate(query), true), watchCtx));
      } catch (err) {
        if (!entry.stop.signal.aborted) ctx.log.debug({ err: String(err) }, "query cache watch broke");
      } finally {
        entry.stop.abort();
        if (this.entries.get(key) === entry) this.entries.delete(key);
        if (!entry.idle && !this.lifetime?.aborted) this.#stale.set(key, { records: entry.records, since: Date.now() });
      }
    })();
  }

  /** The stale records for `key` that may still answer (see the module doc), or undefined. */
  staleAnswer(key: string): T["record"][] | undefined {
    const old = this.#stale.get(key);
    const now = Date.now();
    if (!old || now - old.since > this.idleMs) return undefined;
    return [...old.records.values()].filter((r) => (this.kind.expiresAt?.(r) ?? Number.POSITIVE_INFINITY) > now);
  }

  #sweep(): void {
    const now = Date.now();
    for (const e of this.entries.values()) {
      if (now - e.lastUse <= this.idleMs) continue;
      e.idle = true;
      e.stop.abort();
    }
    for (const [key, old] of this.#stale) if (now - old.since > this.idleMs) this.#stale.delete(key);
    if (this.entries.size === 0 && this.#stale.size === 0 && this.#sweeper) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  #close(): void {
    for (const e of this.entries.values()) e.stop.abort();
    this.entries.clear();
    this.#stale.clear();
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }
}

/**
 * A Find that missed the cache: downstream, its records copied into `entry`; when it fails with
 * Unavailable before any answer, the stale records of `key` answer instead (if there are any).
 */
async function* findDownstream<T extends RegistryTypes>(
  store: QueryStore<T>,
  kind: RegistryKind<T>,
  key: string,
  answers: AsyncIterable<T["response"]>,
  entry: Entry<T["record"]>,
  ctx: CallContext,
): AsyncGenerator<T["response"]> {
  let answered = false;
  try {
    for await (const response of answers) {
      const record = kind.responseRecord(response);
      if (record && !kind.isDeleted(response)) entry.records.set(kind.nameOf(record), kind.cloneRecord(record));
      answered = true;
      yield response;
    }
  } catch (err) {
    const old = answered || !isUnavailable(err) ? undefined : store.staleAnswer(key);
    if (!old) throw err;
    ctx.log.warn(
      { err: String(err), records: old.length },
      "registry unreachable: answering from the last known records",
    );
    for (const record of old) yield kind.response(kind.cloneRecord(record), false);
    entry.stop.abort();
  }
}

export function registryQueryCache<T extends RegistryTypes>(
  kind: RegistryKind<T>,
  options: RegistryQueryCacheOptions = {},
): RegistryElement<T> {
  const store = new QueryStore(kind, options.idleMs ?? 60_000, options.signal);
  return {
    name: "querycache",
    register: (record, ctx, next) => next.register(record, ctx),
    unregister: (record, ctx, next) => next.unregister(record, ctx),
    async *find(query, ctx, next) {
      if (kind.isWatch(query) || options.signal?.aborted) {
        yield* next.find(query, ctx);
        return;
      }
      const key = store.keyOf(query);
      const hit = store.entries.get(key);
      if (hit && !hit.stop.signal.aborted) {
        hit.lastUse = Date.now();
        for (const record of hit.records.values()) yield kind.response(kind.cloneRecord(record), false);
        return;
      }
      const entry: Entry<T["record"]> = { records: new Map(), stop: new AbortController(), lastUse: Date.now() };
      yield* findDownstream(store, kind, key, next.find(query, ctx), entry, ctx);
      // A stale answer (the entry stopped) starts no watch: the next Find tries the registry again.
      if (!entry.stop.signal.aborted) store.watch(key, entry, query, next, ctx);
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
