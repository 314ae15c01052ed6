// SPDX-License-Identifier: Apache-2.0
/**
 * memory (registry): in-memory storage of records with watch fan-out.
 *
 * Purpose: the store behind the memory registry (and behind nsmgr when it has no remote
 * registry). Register stores what the rest of the chain returns; Unregister deletes by name;
 * Find answers from the store with the upstream matching rules (reference §7.1):
 * - `watch=false`: every current match, then whatever the rest of the chain yields, then the
 *   stream ends;
 * - `watch=true`: every current match, then every later Register (as an update) and every
 *   Unregister or expiry (as `deleted: true`, carrying the deleted record) that matches, until
 *   `ctx.signal` aborts. Aborting ends the stream quietly.
 * Chain placement: last (or before elements that only post-process Register, like the tail).
 * Per-name state: one stored record per name; one bounded event queue per open watch.
 * Options: {@link RegistryMemoryOptions}.
 * Failure behaviour: a watcher that falls more than `maxPendingEvents` events behind is ended
 * with ResourceExhausted (its client re-watches); other watchers are unaffected. Records are
 * copied in and out, so callers and watchers never share objects with the store.
 */
import type { CallContext } from "../../../core/context.js";
import { Code, invalidArgument, NsmError } from "../../../core/errors.js";
import type { RegistryElement, RegistryHandler } from "../../core/chain.js";
import type { RegistryKind, RegistryTypes } from "../../core/kind.js";

/** Events a watcher may have queued before it is ended as too slow. */
export const DEFAULT_MAX_PENDING_EVENTS = 10_000;

export interface RegistryMemoryOptions {
  /** Events a watcher may have queued (not yet consumed) before it is ended with ResourceExhausted. @default 10000 */
  readonly maxPendingEvents?: number;
}

interface Watcher<T extends RegistryTypes> {
  readonly template: T["record"] | undefined;
  readonly queue: T["response"][];
  overflow: boolean;
  wake: (() => void) | undefined;
}

/** Resolves when `wake` is called or `signal` aborts, whichever is first; leaves no listener behind. */
function waitFor(signal: AbortSignal, arm: (wake: () => void) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      signal.removeEventListener("abort", done);
      resolve();
    };
    signal.addEventListener("abort", done, { once: true });
    arm(done);
  });
}

class MemoryRegistry<T extends RegistryTypes> implements RegistryElement<T> {
  readonly name = "memory";
  readonly #records = new Map<string, T["record"]>();
  readonly #watchers = new Set<Watcher<T>>();
  readonly #maxPending: number;

  constructor(
    readonly kind: RegistryKind<T>,
    options: RegistryMemoryOptions,
  ) {
    const max = options.maxPendingEvents ?? DEFAULT_MAX_PENDING_EVENTS;
    if (!Number.isInteger(max) || max < 1) throw invalidArgument("maxPendingEvents must be a positive integer");
    this.#maxPending = max;
  }

  #publish(record: T["record"], deleted: boolean): void {
    for (const w of this.#watchers) {
      if (w.overflow || !this.kind.matches(w.template, record)) continue;
      if (w.queue.length >= this.#maxPending) w.overflow = true;
      else w.queue.push(this.kind.response(this.kind.cloneRecord(record), deleted));
      w.wake?.();
    }
  }

  #matches(template: T["record"] | undefined): T["response"][] {
    const out: T["response"][] = [];
    for (const rec of this.#records.values()) {
      if (this.kind.matches(template, rec)) out.push(this.kind.response(this.kind.cloneRecord(rec), false));
    }
    return out;
  }

  async register(record: T["record"], ctx: CallContext, next: RegistryHandler<T>): Promise<T["record"]> {
    const resp = await next.register(record, ctx);
    const stored = this.kind.cloneRecord(resp);
    this.#records.set(this.kind.nameOf(stored), stored);
    this.#publish(stored, false);
    return resp;
  }

  async *find(query: T["query"], ctx: CallContext, next: RegistryHandler<T>): AsyncGenerator<T["response"]> {
    const template = this.kind.queryTemplate(query);
    if (!this.kind.isWatch(query)) {
      yield* this.#matches(template);
      yield* next.find(query, ctx);
      return;
    }
    yield* next.find(query, ctx);
    if (ctx.signal.aborted) return;
    // Snapshot and subscription happen in one synchronous step: nothing is missed or repeated.
    const watcher: Watcher<T> = { template, queue: this.#matches(template), overflow: false, wake: undefined };
    this.#watchers.add(watcher);
    // Unsubscribe on abort even if the consumer never pulls again (its queue would only grow).
    const unsubscribe = () => this.#watchers.delete(watcher);
    ctx.signal.addEventListener("abort", unsubscribe, { once: true });
    try {
      while (!ctx.signal.aborted) {
        const item = watcher.queue.shift();
        if (item !== undefined) {
          yield item;
          continue;
        }
        if (watcher.overflow) {
          throw new NsmError(`${this.kind.id} watcher fell too far behind`, Code.ResourceExhausted);
        }
        await waitFor(ctx.signal, (wake) => {
          watcher.wake = wake;
        });
        watcher.wake = undefined;
      }
    } finally {
      ctx.signal.removeEventListener("abort", unsubscribe);
      unsubscribe();
    }
  }

  async unregister(record: T["record"], ctx: CallContext, next: RegistryHandler<T>): Promise<void> {
    const name = this.kind.nameOf(record);
    const stored = this.#records.get(name);
    if (stored) {
      this.#records.delete(name);
      this.#publish(stored, true);
    }
    await next.unregister(record, ctx);
  }
}

/** Creates the memory registry element for `kind` (`nsKind` or `nseKind`). */
export function registryMemory<T extends RegistryTypes>(
  kind: RegistryKind<T>,
  options: Readonly<RegistryMemoryOptions> = {},
): RegistryElement<T> {
  return new MemoryRegistry(kind, options);
}
