// SPDX-License-Identifier: Apache-2.0
/**
 * The one chain engine: composition, binding, `requires` checks and tracing, generic over the
 * methods a chain serves.
 *
 * An element has the methods of its handler, each with one more argument: the explicit `next`
 * (the rest of the chain). The networkservice chains (`request`/`close`, see `chain.ts`) and the
 * registry chains (`register`/`find`/`unregister`, see `../registry/core/chain.ts`) are two
 * {@link ChainShape}s of this engine; each says which of its methods answer with a promise and
 * which with a stream, and which fields of the argument a trace line carries.
 *
 * What every shape gets: a composed chain is itself an element and nests (nested chains are
 * flattened so that `requires` checks and tracing see every element); binding checks
 * `requires` once; every element is wrapped by a trace decorator that logs entry, exit and
 * failure at `trace` level, and opens a span per call when the process installed a tracer
 * (`tracing.ts`), and costs one level check and one variable read otherwise; a synchronous throw of a
 * non-async element becomes a rejected promise (or a stream that fails when read), so callers
 * see one kind of failure.
 */
import type { CallContext } from "./context.js";
import { Code, NsmError } from "./errors.js";
import type { Logger } from "./logger.js";
import { type ChainTracer, chainTracer } from "./tracing.js";

/** What every element may declare besides its methods. */
export interface ElementInfo {
  /** Used by the trace decorator and by `requires` checks. */
  readonly name?: string;
  /** Names of elements that must come earlier in the bound chain (checked when binding). */
  readonly requires?: readonly string[];
}

/** How one method of a chain answers, and the fields of its argument a trace line carries. */
export interface MethodShape {
  readonly answers: "promise" | "stream";
  /** Declared as a method so that a shape may type `arg` as its own method's argument. */
  traceFields(arg: unknown): Record<string, unknown>;
}

/** The methods of one kind of chain. */
export interface ChainShape {
  /** Names the chain in errors ("chain element "x" must come after "y""). */
  readonly label: string;
  /** The `name` of a composed chain. */
  readonly composedName: string;
  /** The `type` attribute of this chain's spans (upstream: "networkService"). @default composedName */
  readonly traceType?: string;
  readonly methods: Readonly<Record<string, MethodShape>>;
}

/** The operations of a chain engine for one shape; E is the element type, H the handler type. */
export interface ChainEngine<E extends ElementInfo, H> {
  /** Composes elements in call order. The result is an element: chains nest. */
  chain(elements: readonly E[]): E;
  /** Binds an element (or chain) to `outer`, checking `requires` once. */
  bind(element: E, outer: H): H;
  /** The element that only calls next. */
  passThrough(name: string): E;
}

type Handler = Record<string, (arg: unknown, ctx: CallContext) => unknown>;
type Method = (arg: unknown, ctx: CallContext, next: Handler) => unknown;
/** An element seen by the engine: its methods are looked up by the names the shape lists. */
type Element = ElementInfo & { [method: string]: unknown };

const composedElements = Symbol("composedElements");

/** Creates the engine for one shape of chain. */
export function chainEngine<E extends ElementInfo, H>(shape: ChainShape): ChainEngine<E, H> {
  const methods = Object.entries(shape.methods);
  const passThrough = (name: string): Element => {
    const element: Element = { name };
    for (const [method] of methods) element[method] = ((arg, ctx, next) => next[method]!(arg, ctx)) satisfies Method;
    return element;
  };
  return {
    chain: (elements) => composed(shape, flatten(elements as unknown as readonly Element[])) as unknown as E,
    bind: (element, outer) => {
      const flat = flatten([element as unknown as Element]);
      checkRequires(flat, shape.label);
      return link(shape, flat, outer as unknown as Handler) as unknown as H;
    },
    passThrough: (name) => passThrough(name) as unknown as E,
  };
}

/** Flattens nested chains so that `requires` checks and tracing see every element. */
function flatten(elements: readonly Element[]): Element[] {
  const out: Element[] = [];
  for (const e of elements) {
    const inner = (e as { [composedElements]?: readonly Element[] })[composedElements];
    if (inner) out.push(...inner);
    else out.push(e);
  }
  return out;
}

/** A chain called as an element: linked once per `next` it is given. */
function composed(shape: ChainShape, flat: readonly Element[]): Element {
  const linked = new WeakMap<Handler, Handler>();
  const run = (outer: Handler): Handler => {
    let h = linked.get(outer);
    if (!h) {
      h = link(shape, flat, outer);
      linked.set(outer, h);
    }
    return h;
  };
  const element: Element & { [composedElements]: readonly Element[] } = {
    name: shape.composedName,
    [composedElements]: flat,
  };
  for (const method of Object.keys(shape.methods)) {
    element[method] = ((arg, ctx, next) => run(next)[method]!(arg, ctx)) satisfies Method;
  }
  return element;
}

function checkRequires(flat: readonly Element[], label: string): void {
  const seen = new Set<string>();
  for (const e of flat) {
    for (const r of e.requires ?? []) {
      if (!seen.has(r)) {
        throw new NsmError(`${label} element "${e.name}" must come after "${r}"`, Code.FailedPrecondition, {
          reason: "chain-order",
        });
      }
    }
    if (e.name) seen.add(e.name);
  }
}

function link(shape: ChainShape, flat: readonly Element[], outer: Handler): Handler {
  let next = outer;
  for (let i = flat.length - 1; i >= 0; i--) next = traced(shape, flat[i]!, next);
  return next;
}

/**
 * The trace decorator around one element: trace-level log lines, and a span per call when the
 * process has a {@link ChainTracer} (promise methods only: a watching stream has no end). With
 * neither, one level check and one variable read.
 */
function traced(shape: ChainShape, element: Element, next: Handler): Handler {
  const name = element.name ?? "element";
  const handler: Handler = {};
  for (const [method, spec] of Object.entries(shape.methods)) {
    const fn = element[method] as Method;
    const call = (arg: unknown, ctx: CallContext) => fn.call(element, arg, ctx, next);
    const logFor = (arg: unknown, ctx: CallContext) => ctx.log.child({ element: name, ...spec.traceFields(arg) });
    const logged = (arg: unknown, ctx: CallContext) =>
      ctx.log.isLevelEnabled("trace")
        ? tracePromise(method, logFor(arg, ctx), () => call(arg, ctx) as Promise<unknown>)
        : settle(() => call(arg, ctx) as Promise<unknown>);
    const type = shape.traceType ?? shape.composedName;
    handler[method] =
      spec.answers === "promise"
        ? (arg, ctx) => {
            const tracer = chainTracer();
            if (tracer === undefined) return logged(arg, ctx);
            return spanned(tracer, { name, method, type, fields: spec.traceFields(arg) }, ctx, (c) => logged(arg, c));
          }
        : (arg, ctx) => {
            const stream = settleStream(() => call(arg, ctx) as AsyncIterable<unknown>);
            if (!ctx.log.isLevelEnabled("trace")) return stream;
            return traceStream(method, logFor(arg, ctx), stream);
          };
  }
  return handler;
}

interface SpanInfo {
  name: string;
  method: string;
  type: string;
  fields: Record<string, unknown>;
}

/** Runs one element call inside its span; a tracer that throws never fails the call. */
function spanned<T>(tracer: ChainTracer, info: SpanInfo, ctx: CallContext, run: (ctx: CallContext) => Promise<T>) {
  let span: ReturnType<ChainTracer["startElement"]>;
  try {
    span = tracer.startElement(info.name, info.method, info.type, info.fields, ctx);
  } catch {
    return run(ctx);
  }
  return run(span.ctx).then(
    (out) => {
      span.end();
      return out;
    },
    (err: unknown) => {
      span.end(err);
      throw err;
    },
  );
}

/** Turns a synchronous throw of a non-async element into a rejection. */
function settle<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return fn();
  } catch (err) {
    return Promise.reject(err);
  }
}

/** Turns a synchronous throw of a non-generator stream method into a stream that fails when read. */
function settleStream<T>(fn: () => AsyncIterable<T>): AsyncIterable<T> {
  try {
    return fn();
  } catch (err) {
    return failedStream<T>(err);
  }
}

// biome-ignore lint/correctness/useYield: a stream whose first read fails.
async function* failedStream<T>(err: unknown): AsyncGenerator<T> {
  throw err;
}

function tracePromise<T>(method: string, log: Logger, run: () => Promise<T>): Promise<T> {
  log.trace(method);
  return settle(run).then(
    (out) => {
      log.trace(`${method} done`);
      return out;
    },
    (err: unknown) => {
      log.trace({ err: String(err) }, `${method} failed`);
      throw err;
    },
  );
}

async function* traceStream<T>(method: string, log: Logger, stream: AsyncIterable<T>): AsyncGenerator<T> {
  log.trace(method);
  let items = 0;
  let outcome = "ended by the reader";
  try {
    for await (const item of stream) {
      items++;
      yield item;
    }
    outcome = "done";
  } catch (err) {
    outcome = "failed";
    log.trace({ items, err: String(err) }, `${method} failed`);
    throw err;
  } finally {
    if (outcome !== "failed") log.trace({ items }, `${method} ${outcome}`);
  }
}
