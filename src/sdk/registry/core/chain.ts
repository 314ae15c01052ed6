// SPDX-License-Identifier: Apache-2.0
/**
 * Chain composition for registry elements, generic over the NS and NSE registries.
 *
 * It mirrors `src/sdk/core/chain.ts`: an element is
 * `{ register(rec, ctx, next), find(query, ctx, next), unregister(rec, ctx, next) }` with
 * `next` passed explicitly; {@link registryChain} composes elements in call order (a composed
 * chain is itself an element); {@link bindRegistry} closes a chain with the tail, whose
 * Register returns the record it is given, whose Find yields nothing and whose Unregister does
 * nothing. Every element is wrapped by a trace decorator that logs at `trace` level only.
 *
 * A bound chain ({@link RegistryHandler}) has the same shape as the registry clients in
 * `../api.ts` (`NsRegistry`, `NseRegistry`), so it can be served over gRPC or called in process.
 */
import type { CallContext } from "../../core/context.js";
import { Code, NsmError } from "../../core/errors.js";
import type { RegistryTypes } from "./kind.js";

/** What an element calls to continue: the rest of the chain. */
export interface RegistryHandler<T extends RegistryTypes> {
  register(record: T["record"], ctx: CallContext): Promise<T["record"]>;
  /** Ends after the current matches, or (with `watch`) follows changes until `ctx.signal` aborts. */
  find(query: T["query"], ctx: CallContext): AsyncIterable<T["response"]>;
  unregister(record: T["record"], ctx: CallContext): Promise<void>;
}

/**
 * Anything that serves the three registry calls: a bound chain, a gRPC client made by
 * `registryClients`, or an adapter. `NsRegistry` is `RegistryClient<NsTypes>` and
 * `NseRegistry` is `RegistryClient<NseTypes>`.
 */
export interface RegistryClient<T extends RegistryTypes> {
  register(record: T["record"], ctx: CallContext): Promise<T["record"]>;
  find(query: T["query"], ctx: CallContext): AsyncIterable<T["response"]>;
  unregister(record: T["record"], ctx: CallContext): Promise<unknown>;
}

export interface RegistryElement<T extends RegistryTypes> {
  /** Used by the trace decorator and by `requires` checks. */
  readonly name?: string;
  /** Names of elements that must come earlier in the bound chain (checked by {@link bindRegistry}). */
  readonly requires?: readonly string[];
  register(record: T["record"], ctx: CallContext, next: RegistryHandler<T>): Promise<T["record"]>;
  find(query: T["query"], ctx: CallContext, next: RegistryHandler<T>): AsyncIterable<T["response"]>;
  unregister(record: T["record"], ctx: CallContext, next: RegistryHandler<T>): Promise<void>;
}

const chainElements = Symbol("registryChainElements");

interface ComposedRegistryChain<T extends RegistryTypes> extends RegistryElement<T> {
  readonly [chainElements]: readonly RegistryElement<T>[];
}

/** The element that only calls next (Go's `null` registry server). */
export function registryPassThrough<T extends RegistryTypes>(name = "passThrough"): RegistryElement<T> {
  return {
    name,
    register: (rec, ctx, next) => next.register(rec, ctx),
    find: (query, ctx, next) => next.find(query, ctx),
    unregister: (rec, ctx, next) => next.unregister(rec, ctx),
  };
}

/** The end of every registry chain. */
export function registryTail<T extends RegistryTypes>(): RegistryHandler<T> {
  return {
    register: async (rec) => rec,
    find: () => emptyStream<T["response"]>(),
    unregister: async () => {},
  };
}

async function* emptyStream<R>(): AsyncGenerator<R> {}

function flatten<T extends RegistryTypes>(elements: readonly RegistryElement<T>[]): RegistryElement<T>[] {
  const out: RegistryElement<T>[] = [];
  for (const e of elements) {
    const inner = (e as Partial<ComposedRegistryChain<T>>)[chainElements];
    if (inner) out.push(...inner);
    else out.push(e);
  }
  return out;
}

/** Composes registry elements in call order. The result is an element: chains nest. */
export function registryChain<T extends RegistryTypes>(...elements: RegistryElement<T>[]): RegistryElement<T> {
  const flat = flatten(elements);
  const linked = new WeakMap<RegistryHandler<T>, RegistryHandler<T>>();
  const run = (outer: RegistryHandler<T>) => {
    let h = linked.get(outer);
    if (!h) {
      h = link(flat, outer);
      linked.set(outer, h);
    }
    return h;
  };
  const composed: ComposedRegistryChain<T> = {
    name: "registryChain",
    [chainElements]: flat,
    register: (rec, ctx, next) => run(next).register(rec, ctx),
    find: (query, ctx, next) => run(next).find(query, ctx),
    unregister: (rec, ctx, next) => run(next).unregister(rec, ctx),
  };
  return composed;
}

/** Binds a chain to the tail (or to `outer`), checking `requires` once. */
export function bindRegistry<T extends RegistryTypes>(
  element: RegistryElement<T>,
  outer: RegistryHandler<T> = registryTail<T>(),
): RegistryHandler<T> {
  const flat = flatten([element]);
  checkRequires(flat);
  return link(flat, outer);
}

function checkRequires<T extends RegistryTypes>(flat: readonly RegistryElement<T>[]): void {
  const seen = new Set<string>();
  for (const e of flat) {
    for (const r of e.requires ?? []) {
      if (!seen.has(r)) {
        throw new NsmError(`registry chain element "${e.name}" must come after "${r}"`, Code.FailedPrecondition, {
          reason: "chain-order",
        });
      }
    }
    if (e.name) seen.add(e.name);
  }
}

function link<T extends RegistryTypes>(
  flat: readonly RegistryElement<T>[],
  outer: RegistryHandler<T>,
): RegistryHandler<T> {
  let next = outer;
  for (let i = flat.length - 1; i >= 0; i--) next = traced(flat[i]!, next);
  return next;
}

/** The trace decorator: entry, exit and failure at trace level; one level check otherwise. */
function traced<T extends RegistryTypes>(element: RegistryElement<T>, next: RegistryHandler<T>): RegistryHandler<T> {
  const name = element.name ?? "element";
  const recordName = (rec: T["record"]) => (rec as { name?: string }).name;
  return {
    register: (rec, ctx) => {
      if (!ctx.log.isLevelEnabled("trace")) return element.register(rec, ctx, next);
      const log = ctx.log.child({ element: name, registryName: recordName(rec) });
      log.trace("register");
      return element.register(rec, ctx, next).then(
        (out) => {
          log.trace("register done");
          return out;
        },
        (err: unknown) => {
          log.trace({ err: String(err) }, "register failed");
          throw err;
        },
      );
    },
    find: (query, ctx) => {
      if (ctx.log.isLevelEnabled("trace")) ctx.log.trace({ element: name }, "find");
      return element.find(query, ctx, next);
    },
    unregister: (rec, ctx) => {
      if (!ctx.log.isLevelEnabled("trace")) return element.unregister(rec, ctx, next);
      const log = ctx.log.child({ element: name, registryName: recordName(rec) });
      log.trace("unregister");
      return element.unregister(rec, ctx, next).then(
        () => log.trace("unregister done"),
        (err: unknown) => {
          log.trace({ err: String(err) }, "unregister failed");
          throw err;
        },
      );
    },
  };
}
