// SPDX-License-Identifier: Apache-2.0
/**
 * registry-store: a registry element that keeps its records in an external store (etcd, the
 * Kubernetes apiserver) instead of in memory, so that several registry replicas serve the same
 * records and a registry restart loses nothing.
 *
 * A {@link RecordStore} knows four operations: put a record, remove one by name, list all with
 * the store's revision, and watch the changes after a revision. {@link registryStore} turns it
 * into the element that ends a registry chain, with the memory element's Find semantics
 * (reference §7.1): without `watch` the current matches, then the rest of the chain; with
 * `watch` the current matches and then every later change that matches (deletions carry the
 * deleted record) until `ctx.signal` aborts. Every Find reads the store itself (a list is a
 * quorum read in etcd and in the apiserver), so a record registered through one replica is
 * found through another at once.
 *
 * Watching: the list's revision starts the watch; a watch that ends is resumed from the last
 * revision it reported; a watch refused because the revision is too old ({@link StoreGone}:
 * etcd compaction, the apiserver's `410 Gone`) is replaced by a new list, and the differences
 * from what the watcher already saw are yielded (updates for every listed record, deletions
 * for the vanished ones).
 *
 * Bad records (someone wrote a custom resource by hand, an old registry left an expired one):
 * a record whose NSE URL is not an NSM URL, whose expiration time has passed, or whose NS
 * payload is unknown is skipped with a `warn` line naming it; the store reports records it
 * cannot decode the same way (through {@link StoreEvent.skipped}). Nothing of it ends a Find.
 */
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { NetworkService, NetworkServiceEndpoint } from "../api/gen/registry_pb.js";
import type { CallContext } from "../sdk/core/context.js";
import type { Logger } from "../sdk/core/logger.js";
import { nsmUrlProblem } from "../sdk/registry/common/validation/index.js";
import type { RegistryElement, RegistryHandler } from "../sdk/registry/core/chain.js";
import type { RegistryKind, RegistryTypes } from "../sdk/registry/core/kind.js";

/** One change seen by a store watch. */
export interface StoreEvent<R> {
  /** The store revision after this change (or of a bookmark without a record). */
  readonly revision: string;
  /** The record written or deleted; undefined for a bookmark or a skipped entry. */
  readonly record?: R;
  readonly deleted: boolean;
  /** Set instead of `record` when the stored entry could not be decoded: names it and says why. */
  readonly skipped?: { readonly name: string; readonly reason: string };
}

/** A list of every stored record and the revision it was read at. */
export interface StoreSnapshot<R> {
  readonly records: readonly R[];
  readonly skipped: readonly { readonly name: string; readonly reason: string }[];
  readonly revision: string;
}

/** Thrown by {@link RecordStore.watch} when the revision is too old to watch from. */
export class StoreGone extends Error {}

/** What {@link registryStore} needs from a store of records of one kind. */
export interface RecordStore<R> {
  /** For logs: `etcd`, `k8s`. */
  readonly backend: string;
  /** Creates or replaces the record (the store handles expiry where it has its own). */
  put(record: R): Promise<void>;
  /** Deletes the record with this name; a missing record is not an error. */
  remove(name: string): Promise<void>;
  list(signal: AbortSignal): Promise<StoreSnapshot<R>>;
  /** The record named `name` (a Find by name reads one record, not the list), or the reason it is skipped. */
  get(name: string): Promise<StoreSnapshot<R>>;
  /** The changes after `revision` until `signal` aborts (or the store ends the watch). */
  watch(revision: string, signal: AbortSignal): AsyncIterable<StoreEvent<R>>;
}

/** Payloads a NetworkService may carry (upstream `payload.IP`, `payload.Ethernet`). */
const KNOWN_PAYLOADS = new Set(["IP", "ETHERNET"]);

/** Why a stored record must not be served, or undefined when it may be. */
export function storedRecordProblem(kindId: "ns" | "nse", record: object, nowMs = Date.now()): string | undefined {
  if (kindId === "ns") {
    const ns = record as NetworkService;
    return KNOWN_PAYLOADS.has(ns.payload) ? undefined : `unknown payload ${JSON.stringify(ns.payload)}`;
  }
  const nse = record as NetworkServiceEndpoint;
  const urlProblem = nse.url === "" ? undefined : nsmUrlProblem(nse.url);
  if (urlProblem) return `url ${JSON.stringify(nse.url)}: ${urlProblem}`;
  if (nse.expirationTime && timestampMs(nse.expirationTime) <= nowMs) return "expired";
  return undefined;
}

class StoreElement<T extends RegistryTypes> implements RegistryElement<T> {
  readonly name = "store";

  constructor(
    readonly kind: RegistryKind<T>,
    readonly store: RecordStore<T["record"]>,
  ) {}

  async register(record: T["record"], ctx: CallContext, next: RegistryHandler<T>): Promise<T["record"]> {
    const resp = await next.register(record, ctx);
    await this.store.put(this.kind.cloneRecord(resp));
    return resp;
  }

  async unregister(record: T["record"], ctx: CallContext, next: RegistryHandler<T>): Promise<void> {
    await this.store.remove(this.kind.nameOf(record));
    await next.unregister(record, ctx);
  }

  async *find(query: T["query"], ctx: CallContext, next: RegistryHandler<T>): AsyncGenerator<T["response"]> {
    const template = this.kind.queryTemplate(query);
    if (!this.kind.isWatch(query)) {
      yield* this.#stored(template, ctx);
      yield* next.find(query, ctx);
      return;
    }
    yield* next.find(query, ctx);
    yield* this.#changes(template, ctx);
  }

  /** The stored records that match `template` (the one named, or all). */
  async *#stored(template: T["record"] | undefined, ctx: CallContext): AsyncGenerator<T["response"]> {
    const name = template ? this.kind.nameOf(template) : "";
    const snap = name ? await this.store.get(name) : await this.store.list(ctx.signal);
    for (const rec of this.#servable(snap, ctx.log)) {
      if (this.kind.matches(template, rec)) yield this.kind.response(rec, false);
    }
  }

  /** Every stored record that matches `template`, then every change to one, until the call ends. */
  async *#changes(template: T["record"] | undefined, ctx: CallContext): AsyncGenerator<T["response"]> {
    for await (const ev of followStore(this.store, ctx.signal, ctx.log)) {
      if (ev.record === undefined) continue;
      if (!ev.deleted && this.#problem(ev.record, ctx.log)) continue;
      if (this.kind.matches(template, ev.record)) yield this.kind.response(ev.record, ev.deleted);
    }
  }

  #servable(snap: StoreSnapshot<T["record"]>, log: Logger): T["record"][] {
    logSkipped(this.store.backend, this.kind.id, snap.skipped, log);
    return snap.records.filter((r) => !this.#problem(r, log));
  }

  #problem(record: T["record"], log: Logger): boolean {
    const reason = storedRecordProblem(this.kind.id, record);
    if (reason) logSkipped(this.store.backend, this.kind.id, [{ name: this.kind.nameOf(record), reason }], log);
    return reason !== undefined;
  }
}

function logSkipped(
  backend: string,
  kindId: string,
  skipped: readonly { name: string; reason: string }[],
  log: Logger,
): void {
  for (const s of skipped)
    log.warn({ backend, kind: kindId, name: s.name, reason: s.reason }, "skipping invalid stored record");
}

/** Every registry record (NS, NSE) has a `name`. */
const nameOf = (record: object): string => (record as { name: string }).name;

/**
 * Every record in the store, then every change, until `signal` aborts; resumes a watch that
 * ends and re-lists when the store says the revision is gone (see the module doc).
 */
export async function* followStore<R extends object>(
  store: RecordStore<R>,
  signal: AbortSignal,
  log: Logger,
): AsyncGenerator<StoreEvent<R>> {
  const seen = new Map<string, R>();
  const cursor: { revision?: string } = {};
  while (!signal.aborted) {
    if (cursor.revision === undefined) {
      const snap = await store.list(signal);
      logSkipped(store.backend, "", snap.skipped, log);
      yield* relistEvents(snap, seen);
      cursor.revision = snap.revision;
      if (signal.aborted) return;
    }
    try {
      yield* watchChanges(store, cursor as { revision: string }, seen, signal, log);
    } catch (err) {
      if (!(err instanceof StoreGone) || signal.aborted) throw err;
      log.info({ backend: store.backend, revision: cursor.revision }, "watch revision gone, listing again");
      cursor.revision = undefined;
    }
  }
}

/** The changes after `cursor.revision`, which follows them; `seen` keeps the records known. */
async function* watchChanges<R extends object>(
  store: RecordStore<R>,
  cursor: { revision: string },
  seen: Map<string, R>,
  signal: AbortSignal,
  log: Logger,
): AsyncGenerator<StoreEvent<R>> {
  for await (const ev of store.watch(cursor.revision, signal)) {
    cursor.revision = ev.revision;
    if (ev.skipped) logSkipped(store.backend, "", [ev.skipped], log);
    if (!ev.record) continue;
    if (ev.deleted) seen.delete(nameOf(ev.record));
    else seen.set(nameOf(ev.record), ev.record);
    yield ev;
  }
}

function* relistEvents<R extends object>(snap: StoreSnapshot<R>, seen: Map<string, R>): Generator<StoreEvent<R>> {
  const listed = new Set(snap.records.map(nameOf));
  for (const [name, rec] of seen) {
    if (listed.has(name)) continue;
    seen.delete(name);
    yield { revision: snap.revision, record: rec, deleted: true };
  }
  for (const rec of snap.records) {
    seen.set(nameOf(rec), rec);
    yield { revision: snap.revision, record: rec, deleted: false };
  }
}

/** Creates the element that stores `kind` records in `store`; it ends the chain (like memory). */
export function registryStore<T extends RegistryTypes>(
  kind: RegistryKind<T>,
  store: RecordStore<T["record"]>,
): RegistryElement<T> {
  return new StoreElement(kind, store);
}
