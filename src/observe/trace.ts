// SPDX-License-Identifier: Apache-2.0
/**
 * OpenTelemetry traces of one role: the {@link ChainTracer} the sdk's chain engine and gRPC glue
 * call (see `src/sdk/core/tracing.ts`), made with the OpenTelemetry JS SDK and exported over OTLP/gRPC.
 *
 * Semantics follow upstream's trace element: one span per chain element and method, named
 * `<element>.<Method>` (e.g. `discover.Request`), with the attributes `id` (the connection id, or
 * the registry record's name as `registryName`) and `type` (`networkService` or `registry`);
 * a failed call records the error and sets the ERROR status. Every process is one service
 * (`service.name` = the role's NSM_NAME). Context crosses processes as the W3C `traceparent`
 * (and `tracestate`) gRPC metadata, so one Request is one trace across every hop.
 *
 * Export: spans are batched in memory and sent in the background (every
 * {@link TracingOptions.exportDelayMs}); a collector that is down or slow only makes exports
 * fail (the batch is dropped, a warning logged at most once a minute): no Request waits for it.
 * The queue is bounded (spans beyond it are dropped). Shutdown flushes for at most
 * {@link TracingOptions.shutdownTimeoutMs}.
 */
import { createRequire } from "node:module";
import { type Context, ROOT_CONTEXT, type Span, SpanStatusCode, trace } from "@opentelemetry/api";
import { setGlobalErrorHandler, W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-grpc";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import type { CallContext } from "../sdk/core/context.js";
import type { Logger } from "../sdk/core/logger.js";
import { type ChainTracer, type ElementSpan, traceStateKey } from "../sdk/core/tracing.js";
import type { OtlpTarget } from "./addresses.js";

export { type OtlpTarget, parseOtlpEndpoint } from "./addresses.js";

export interface TracingOptions {
  /** `service.name` of every span of this process. */
  serviceName: string;
  /** Where to export; ignored when `exporter` is given. */
  target?: OtlpTarget;
  /** An exporter of one's own (tests: an in-memory one). */
  exporter?: SpanExporter;
  log: Logger;
  /** @default 1000 */
  exportDelayMs?: number;
  /** @default 5000 */
  exportTimeoutMs?: number;
  /** @default 2000 */
  shutdownTimeoutMs?: number;
}

export interface Tracing {
  /** For `setChainTracer`. */
  readonly tracer: ChainTracer;
  /** Exports what is queued now (tests). */
  flush(): Promise<void>;
  /** Flushes (bounded by the shutdown timeout) and stops exporting. */
  shutdown(): Promise<void>;
}

const propagator = new W3CTraceContextPropagator();
const setter = {
  set: (carrier: Record<string, string>, key: string, value: string) => {
    carrier[key] = value;
  },
};

/** The tracer of one process (see the module doc). */
export function createTracing(options: TracingOptions): Tracing {
  const exporter = options.exporter ?? otlpExporter(options.target, options.exportTimeoutMs ?? 5000);
  const processor = new BatchSpanProcessor(exporter, {
    scheduledDelayMillis: options.exportDelayMs ?? 1000,
    exportTimeoutMillis: options.exportTimeoutMs ?? 5000,
    maxQueueSize: 4096,
    maxExportBatchSize: 512,
  });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": options.serviceName }),
    spanProcessors: [processor],
  });
  warnOnExportFailures(options.log);
  const otel = provider.getTracer("NSM");
  const tracer: ChainTracer = {
    startElement: (element, method, kind, fields, ctx) => {
      const parent = (ctx.get(traceStateKey) as Context | undefined) ?? ROOT_CONTEXT;
      const span = otel.startSpan(
        `${element}.${capitalized(method)}`,
        { attributes: attributes(kind, fields) },
        parent,
      );
      return elementSpan(span, ctx.with(traceStateKey, trace.setSpan(parent, span)));
    },
    inject: (ctx, carrier) => {
      const current = ctx.get(traceStateKey) as Context | undefined;
      if (current !== undefined) propagator.inject(current, carrier, setter);
    },
    extract: (ctx, get) => extracted(ctx, get),
  };
  const limit = options.shutdownTimeoutMs ?? 2000;
  return {
    tracer,
    flush: () => provider.forceFlush(),
    shutdown: () => withinMs(provider.shutdown(), limit),
  };
}

function otlpExporter(target: OtlpTarget | undefined, timeoutMillis: number): SpanExporter {
  if (!target) throw new Error("tracing needs an OTLP target or an exporter");
  // The credentials must come from the grpc-js the exporter itself loads (node_modules): a role
  // bundled by scripts/build-roles.mjs carries its own copy, whose credentials it would refuse.
  const grpc = createRequire(import.meta.url)("@grpc/grpc-js") as typeof import("@grpc/grpc-js");
  const credentials = target.tls ? grpc.credentials.createSsl() : grpc.credentials.createInsecure();
  return new OTLPTraceExporter({ url: target.url, credentials, timeoutMillis });
}

function capitalized(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** Upstream's span fields: `id` for the connection id, `type` for the kind of chain. */
function attributes(kind: string, fields: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = { type: kind };
  for (const [k, v] of Object.entries(fields)) {
    if (v !== undefined) out[k === "connId" ? "id" : k] = String(v);
  }
  return out;
}

function elementSpan(span: Span, ctx: CallContext): ElementSpan {
  return {
    ctx,
    end: (err?: unknown) => {
      if (err !== undefined) {
        const message = err instanceof Error ? err.message : String(err);
        span.recordException(err instanceof Error ? err : message);
        span.setStatus({ code: SpanStatusCode.ERROR, message });
      }
      span.end();
    },
  };
}

/** `ctx` as the child of the caller's span named in the metadata, or unchanged without one. */
function extracted(ctx: CallContext, get: (header: string) => string | undefined): CallContext {
  const getter = { get: (_: unknown, key: string) => get(key), keys: () => ["traceparent", "tracestate"] };
  const remote = propagator.extract(ROOT_CONTEXT, undefined, getter);
  return trace.getSpanContext(remote) === undefined ? ctx : ctx.with(traceStateKey, remote);
}

let lastWarning = 0;
/** OpenTelemetry reports failed exports to its global error handler: a warning, once a minute. */
function warnOnExportFailures(log: Logger): void {
  setGlobalErrorHandler((err) => {
    const now = Date.now();
    if (now - lastWarning < 60_000) return;
    lastWarning = now;
    log.warn({ err: String(err) }, "cannot export trace spans (collector down?); spans are dropped");
  });
}

function withinMs(p: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    t.unref();
    p.then(
      () => {
        clearTimeout(t);
        resolve();
      },
      () => {
        clearTimeout(t);
        resolve();
      },
    );
  });
}
