// SPDX-License-Identifier: Apache-2.0
/**
 * Chain composition for registry elements, generic over the NS and NSE registries.
 *
 * A second shape of the one chain engine (`src/sdk/core/engine.ts`, which the networkservice
 * chains use too): an element is
 * `{ register(rec, ctx, next), find(query, ctx, next), unregister(rec, ctx, next) }` with
 * `next` passed explicitly; {@link registryChain} composes elements in call order (a composed
 * chain is itself an element); {@link bindRegistry} closes a chain with the tail, whose
 * Register returns the record it is given, whose Find yields nothing and whose Unregister does
 * nothing. Every element is traced at `trace` level (Find: entry, end and failure of the
 * stream); a synchronous throw becomes a rejection (Find: a stream that fails when read).
 *
 * A bound chain ({@link RegistryHandler}) has the same shape as the registry clients in
 * `../api.ts` (`NsRegistry`, `NseRegistry`), so it can be served over gRPC or called in process.
 */
import type { CallContext } from "../../core/context.js";
import { type ChainShape, chainEngine, type ElementInfo } from "../../core/engine.js";
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

export interface RegistryElement<T extends RegistryTypes> extends ElementInfo {
  register(record: T["record"], ctx: CallContext, next: RegistryHandler<T>): Promise<T["record"]>;
  find(query: T["query"], ctx: CallContext, next: RegistryHandler<T>): AsyncIterable<T["response"]>;
  unregister(record: T["record"], ctx: CallContext, next: RegistryHandler<T>): Promise<void>;
}

const registryShape: ChainShape = {
  label: "registry chain",
  composedName: "registryChain",
  traceType: "registry",
  methods: {
    register: { answers: "promise", traceFields: (rec: { name?: string }) => ({ registryName: rec.name }) },
    find: { answers: "stream", traceFields: () => ({}) },
    unregister: { answers: "promise", traceFields: (rec: { name?: string }) => ({ registryName: rec.name }) },
  },
};

// The engine is the same for every record type; T only narrows what the caller sees.
const engine = chainEngine<RegistryElement<RegistryTypes>, RegistryHandler<RegistryTypes>>(registryShape);

/** The element that only calls next (Go's `null` registry server). */
export function registryPassThrough<T extends RegistryTypes>(name = "passThrough"): RegistryElement<T> {
  return engine.passThrough(name) as RegistryElement<T>;
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

/** Composes registry elements in call order. The result is an element: chains nest. */
export function registryChain<T extends RegistryTypes>(...elements: RegistryElement<T>[]): RegistryElement<T> {
  return engine.chain(elements as readonly RegistryElement<RegistryTypes>[]) as RegistryElement<T>;
}

/** Binds a chain to the tail (or to `outer`), checking `requires` once. */
export function bindRegistry<T extends RegistryTypes>(
  element: RegistryElement<T>,
  outer: RegistryHandler<T> = registryTail<T>(),
): RegistryHandler<T> {
  return engine.bind(
    element as RegistryElement<RegistryTypes>,
    outer as RegistryHandler<RegistryTypes>,
  ) as RegistryHandler<T>;
}
