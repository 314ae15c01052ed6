// SPDX-License-Identifier: Apache-2.0
/**
 * Test-only helpers for registry chains (registry counterparts of `src/sdk/testing/elements.ts`).
 * Never imported by production code.
 */
import type { CallContext } from "../core/context.js";
import type { NsmError } from "../core/errors.js";
import type { RegistryElement } from "../registry/core/chain.js";
import type { RegistryKind, RegistryTypes } from "../registry/core/kind.js";

/** Counts the calls that pass through and remembers the last record registered. */
export interface RegistryCounter<T extends RegistryTypes> extends RegistryElement<T> {
  readonly registers: number;
  readonly finds: number;
  readonly unregisters: number;
  readonly lastRegistered: T["record"] | undefined;
}

export function registryCount<T extends RegistryTypes>(): RegistryCounter<T> {
  const c = {
    name: "count",
    registers: 0,
    finds: 0,
    unregisters: 0,
    lastRegistered: undefined as T["record"] | undefined,
    register(rec: T["record"], ctx: CallContext, next: Parameters<RegistryElement<T>["register"]>[2]) {
      c.registers++;
      c.lastRegistered = rec;
      return next.register(rec, ctx);
    },
    find(query: T["query"], ctx: CallContext, next: Parameters<RegistryElement<T>["find"]>[2]) {
      c.finds++;
      return next.find(query, ctx);
    },
    unregister(rec: T["record"], ctx: CallContext, next: Parameters<RegistryElement<T>["unregister"]>[2]) {
      c.unregisters++;
      return next.unregister(rec, ctx);
    },
  };
  return c;
}

/** Fails Register (and/or Unregister) with `error()` while `when` returns true. */
export function registryInjectError<T extends RegistryTypes>(
  error: () => NsmError,
  when: { register?: (rec: T["record"]) => boolean; unregister?: (rec: T["record"]) => boolean } = {
    register: () => true,
  },
): RegistryElement<T> {
  return {
    name: "injectError",
    register: (rec, ctx, next) => (when.register?.(rec) ? Promise.reject(error()) : next.register(rec, ctx)),
    find: (query, ctx, next) => next.find(query, ctx),
    unregister: (rec, ctx, next) => (when.unregister?.(rec) ? Promise.reject(error()) : next.unregister(rec, ctx)),
  };
}

/** Breaks the watch Finds that pass through it, as a registry or nsmgr restart does. */
export interface RegistryWatchBreaker<T extends RegistryTypes> extends RegistryElement<T> {
  /** Watch Finds open now. */
  readonly openWatches: number;
  /** Watch Finds opened so far. */
  readonly watchesOpened: number;
  /** Ends every open watch: with `error` (thrown to the watcher), or as a plain end of stream. */
  breakWatches(error?: NsmError): void;
}

export function registryWatchBreaker<T extends RegistryTypes>(kind: RegistryKind<T>): RegistryWatchBreaker<T> {
  const open = new Set<(error: NsmError | undefined) => void>();
  let opened = 0;
  return {
    name: "watchBreaker",
    get openWatches() {
      return open.size;
    },
    get watchesOpened() {
      return opened;
    },
    breakWatches(error) {
      for (const brk of [...open]) brk(error);
    },
    register: (rec, ctx, next) => next.register(rec, ctx),
    async *find(query, ctx, next) {
      if (!kind.isWatch(query)) {
        yield* next.find(query, ctx);
        return;
      }
      const ac = new AbortController();
      let broken: { error: NsmError | undefined } | undefined;
      const brk = (error: NsmError | undefined) => {
        broken = { error };
        ac.abort();
      };
      open.add(brk);
      opened++;
      try {
        for await (const resp of next.find(query, ctx.withCancel({ signal: ac.signal }))) {
          if (broken) break;
          yield resp;
        }
      } finally {
        open.delete(brk);
      }
      if (broken?.error) throw broken.error;
    },
    unregister: (rec, ctx, next) => next.unregister(rec, ctx),
  };
}

// Moved to ./async.ts (they are not registry-specific); kept here for existing imports.
export { activeTimers, delay, eventually, nextWithin, testContext } from "./async.js";
