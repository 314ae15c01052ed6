// SPDX-License-Identifier: Apache-2.0
/**
 * The hook through which a process traces its chains (OpenTelemetry spans, see `src/observe/trace.ts`),
 * kept as a small interface so that the sdk carries no tracing library.
 *
 * A process installs one {@link ChainTracer} with {@link setChainTracer} at start (the role's
 * `NSM_OPEN_TELEMETRY_ENDPOINT`/`TELEMETRY` env, read in `src/cmd`). Then:
 * - the chain engine opens a span around every element's call (upstream's trace element: one span
 *   per element and method, carrying the connection id), the element and everything it calls
 *   running with the span as the parent of the next ones;
 * - the gRPC glue writes the current span into the metadata of outgoing calls and continues the
 *   caller's trace on incoming ones (W3C `traceparent`), so one Request is one trace across the
 *   processes it crosses.
 * With no tracer installed (the default) each element call costs one check of a module variable.
 */
import { type CallContext, createContextKey } from "./context.js";

/** The span of one element call, open until {@link end}. */
export interface ElementSpan {
  /** The context the element runs with: it carries this span as the parent of later ones. */
  readonly ctx: CallContext;
  /** Ends the span; `err` marks it failed. */
  end(err?: unknown): void;
}

/** What the engine and the gRPC glue need from a tracing implementation. */
export interface ChainTracer {
  /**
   * Opens the span of `element`'s `method` (e.g. "request") under the context's current span.
   * `kind` names the chain ("networkService", "registry"); `fields` are the call's trace fields
   * (e.g. the connection id).
   */
  startElement(
    element: string,
    method: string,
    kind: string,
    fields: Record<string, unknown>,
    ctx: CallContext,
  ): ElementSpan;
  /** Writes the current span of `ctx` into outgoing call metadata. */
  inject(ctx: CallContext, carrier: Record<string, string>): void;
  /** `ctx` continuing the trace named by incoming call metadata (`get` reads one header). */
  extract(ctx: CallContext, get: (header: string) => string | undefined): CallContext;
}

/**
 * Where a tracer keeps the current span of a call; opaque to everyone else. Exported for tracer
 * implementations only.
 */
export const traceStateKey = createContextKey<unknown>(undefined, "traceState");

let installed: ChainTracer | undefined;

/** Installs the process's tracer (undefined: tracing off). */
export function setChainTracer(tracer: ChainTracer | undefined): void {
  installed = tracer;
}

/** The process's tracer, or undefined when tracing is off. */
export function chainTracer(): ChainTracer | undefined {
  return installed;
}
