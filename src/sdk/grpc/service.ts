// SPDX-License-Identifier: Apache-2.0
/**
 * grpc-js adapters for the protoc-gen-es service descriptors (part of the gRPC glue, see index.ts).
 *
 * - {@link grpcDefinition} derives a grpc-js `ServiceDefinition` (paths `/<pkg>.<Service>/<Method>`)
 *   from a generated `GenService`, so the wire paths always follow the .proto files.
 * - {@link addService} serves an implementation whose methods take `(request, ctx)` and return a
 *   promise (unary) or an async iterable (server streaming), with a {@link CallContext} carrying
 *   the call's cancellation, deadline and peer facts. NsmErrors become gRPC statuses.
 * - {@link grpcClient} calls a service the same way. It calls grpc-js's generic request functions
 *   directly, so an RPC named `Close` never collides with `grpc.Client#close`.
 */

import type { DescMessage, DescMethod, DescService, MessageShape } from "@bufbuild/protobuf";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import type { AuthContext } from "@grpc/grpc-js/build/src/auth-context.js";
import { CallContext, createContextKey } from "../core/context.js";
import { Code, NsmError, nsmErrorFromGrpc } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { silentLogger } from "../core/logger.js";
import { chainTracer } from "../core/tracing.js";
import type { FdTable } from "./fdsocket.js";
import { fdTableOfCall, sendFdsOnCall } from "./fdtransport.js";

export function grpcDefinition(svc: DescService): grpc.ServiceDefinition {
  const def: Record<string, grpc.MethodDefinition<any, any>> = {};
  for (const m of svc.methods) {
    def[m.localName] = {
      path: `/${svc.typeName}/${m.name}`,
      requestStream: m.methodKind === "client_streaming" || m.methodKind === "bidi_streaming",
      responseStream: m.methodKind === "server_streaming" || m.methodKind === "bidi_streaming",
      requestSerialize: (v: any) => Buffer.from(toBinary(m.input, v)),
      requestDeserialize: (b: Buffer) => fromBinary(m.input, b),
      responseSerialize: (v: any) => Buffer.from(toBinary(m.output, v)),
      responseDeserialize: (b: Buffer) => fromBinary(m.output, b),
      originalName: m.localName,
    } as grpc.MethodDefinition<any, any>;
  }
  return def as grpc.ServiceDefinition;
}

/** Facts about the peer of an incoming call, available to elements via {@link grpcPeerKey}. */
export interface GrpcPeer {
  /** grpc-js peer address string (e.g. `unix:/path` or `ipv4:127.0.0.1:1234`). */
  readonly address: string;
  /** The incoming request metadata. */
  readonly metadata: grpc.Metadata;
  /** TLS facts of the transport (peer certificate), when the transport is TLS. */
  readonly authContext: AuthContext | undefined;
  /** Headers to send back with the response (e.g. the registry `path` header). */
  readonly responseHeaders: grpc.Metadata;
  /**
   * Descriptors received on the connection this call came on, when it came over a unix socket
   * served with descriptor passing (`bindFdUnix`); undefined otherwise.
   */
  readonly fds?: FdTable;
  /** Sends descriptors back on that connection with the next bytes written (the response). */
  readonly sendFds?: (fds: readonly number[]) => boolean;
}

export const grpcPeerKey = createContextKey<GrpcPeer | undefined>(undefined, "grpcPeer");

/**
 * The peer of a call served by {@link addService}. Its response headers are made on first use:
 * begin keeps a Request's context (and so its peer) for the connection's life, and almost no
 * call sends headers back.
 */
class IncomingPeer implements GrpcPeer {
  #responseHeaders: grpc.Metadata | undefined;

  constructor(
    readonly address: string,
    readonly metadata: grpc.Metadata,
    readonly authContext: AuthContext | undefined,
    readonly fds: FdTable | undefined,
    readonly sendFds: ((fds: readonly number[]) => boolean) | undefined,
  ) {}

  get responseHeaders(): grpc.Metadata {
    this.#responseHeaders ??= new grpc.Metadata();
    return this.#responseHeaders;
  }

  /** Whether response headers were made (they may still be empty). */
  get hasResponseHeaders(): boolean {
    return this.#responseHeaders !== undefined;
  }
}

/** The response headers set for the call of `ctx`, if there are any to send. */
function headersToSend(ctx: CallContext): grpc.Metadata | undefined {
  const peer = ctx.get(grpcPeerKey);
  if (!peer || (peer instanceof IncomingPeer && !peer.hasResponseHeaders)) return undefined;
  const headers = peer.responseHeaders;
  return Object.keys(headers.getMap()).length > 0 ? headers : undefined;
}

/** Metadata to add to outgoing calls made with this context. */
export const outgoingMetadataKey = createContextKey<Readonly<Record<string, string>>>({}, "outgoingMetadata");

/**
 * Extra grpc-js call options for outgoing calls made with this context; channel interceptors see
 * them in their options (e.g. the security call observer).
 */
export const callOptionsKey = createContextKey<Readonly<Record<string, unknown>>>({}, "callOptions");

type MethodsOf<S extends DescService> = S["method"];
type Req<M> = M extends DescMethod ? MessageShape<M["input"]> : never;
type Res<M> = M extends DescMethod ? MessageShape<M["output"]> : never;

/** What a served method looks like: unary → promise; server streaming → async iterable. */
export type ServiceImpl<S extends DescService> = {
  [K in keyof MethodsOf<S>]: MethodsOf<S>[K] extends { methodKind: "server_streaming" }
    ? (req: Req<MethodsOf<S>[K]>, ctx: CallContext) => AsyncIterable<Res<MethodsOf<S>[K]>>
    : MethodsOf<S>[K] extends { methodKind: "unary" }
      ? (req: Req<MethodsOf<S>[K]>, ctx: CallContext) => Promise<Res<MethodsOf<S>[K]>>
      : never;
};

export interface AddServiceOptions {
  log?: Logger;
}

/** Longest status message sent back: messages quote what the caller sent, which may be huge. */
export const MAX_STATUS_DETAILS = 2048;

/** `message` cut to {@link MAX_STATUS_DETAILS} characters, saying how much was left out. */
export function boundedDetails(message: string): string {
  if (message.length <= MAX_STATUS_DETAILS) return message;
  return `${message.slice(0, MAX_STATUS_DETAILS)}… (${message.length - MAX_STATUS_DETAILS} more characters)`;
}

function toServiceError(err: unknown): grpc.StatusObject {
  const e = NsmError.from(err, Code.Internal);
  return {
    code: e.code as number as grpc.status,
    details: boundedDetails(e.rawMessage),
    metadata: new grpc.Metadata(),
  };
}

/**
 * The context of one incoming call, and `done()` for when its handler has answered: grpc-js
 * reports every finished call as "cancelled" once its stream closes, and an abort then (a
 * stack-carrying error, every abort listener run) would be pure cost on each Request. The
 * deadline aborts the call's one AbortController through a timer that `done()` clears
 * (`AbortSignal.any` + `AbortSignal.timeout` per call cost more and outlived the call).
 */
function callContext(
  call: grpc.ServerUnaryCall<any, any> | grpc.ServerWritableStream<any, any>,
  log: Logger,
): { ctx: CallContext; done(): void } {
  const ac = new AbortController();
  const onCancel = () => ac.abort(new NsmError("call cancelled by peer", Code.Canceled));
  call.once("cancelled", onCancel);
  const deadline = deadlineOf(call);
  const timer = deadline === undefined ? undefined : abortAtDeadline(ac, deadline);
  const fds = fdTableOfCall(call);
  const sendFds = fds ? (f: readonly number[]) => sendFdsOnCall(call, f) : undefined;
  const peer = new IncomingPeer(call.getPeer(), call.metadata, authContextOf(call), fds, sendFds);
  const ctx = CallContext.create({ signal: ac.signal, deadline, log, signalHasDeadline: true }).with(grpcPeerKey, peer);
  const done = () => {
    call.off("cancelled", onCancel);
    clearTimeout(timer);
  };
  const tracer = chainTracer();
  if (tracer === undefined) return { ctx, done };
  const traced = tracer.extract(ctx, (header) => {
    const v = call.metadata.get(header)[0];
    return typeof v === "string" ? v : undefined;
  });
  return { ctx: traced, done };
}

function deadlineOf(call: grpc.ServerUnaryCall<any, any> | grpc.ServerWritableStream<any, any>): number | undefined {
  const d = call.getDeadline();
  return d instanceof Date ? d.getTime() : Number.isFinite(d) ? Number(d) : undefined;
}

function authContextOf(call: grpc.ServerUnaryCall<any, any> | grpc.ServerWritableStream<any, any>) {
  try {
    return call.getAuthContext() ?? undefined;
  } catch {
    return undefined;
  }
}

/** Aborts `ac` with a TimeoutError (as `AbortSignal.timeout` does) when `deadline` passes. */
function abortAtDeadline(ac: AbortController, deadline: number): NodeJS.Timeout {
  const timer = setTimeout(
    () => ac.abort(new DOMException("The operation was aborted due to timeout", "TimeoutError")),
    Math.max(0, deadline - Date.now()),
  );
  timer.unref();
  return timer;
}

/**
 * The server-streaming calls (monitors, registry watches) each server has open, as functions that
 * end them. A graceful stop ends these first ({@link endOpenStreams}): they never finish by
 * themselves, so a stop that waited for them would always wait out its whole grace period.
 */
const openStreams = new WeakMap<grpc.Server, Set<() => void>>();

/**
 * Ends every server-streaming call open on `server` with UNAVAILABLE ("server is stopping"), as
 * a peer sees when the process dies; their clients heal or watch again elsewhere. Unary calls
 * in flight are left to finish.
 */
export function endOpenStreams(server: grpc.Server): void {
  const open = openStreams.get(server);
  if (!open) return;
  for (const end of [...open]) end();
  open.clear();
}

function trackStream(
  server: grpc.Server,
  call: grpc.ServerWritableStream<any, any>,
): { ended(): boolean; untrack(): void } {
  let ended = false;
  const end = () => {
    if (ended || call.cancelled) return;
    ended = true;
    call.emit("error", { code: grpc.status.UNAVAILABLE, details: "server is stopping", metadata: new grpc.Metadata() });
  };
  const open = openStreams.get(server) ?? new Set<() => void>();
  openStreams.set(server, open);
  open.add(end);
  return { ended: () => ended, untrack: () => open.delete(end) };
}

/** Serves `impl` for the service `svc` on `server`. */
export function addService<S extends DescService>(
  server: grpc.Server,
  svc: S,
  impl: ServiceImpl<S>,
  options: AddServiceOptions = {},
): void {
  const log = options.log ?? silentLogger;
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const m of svc.methods) {
    const fn = (impl as Record<string, (req: unknown, ctx: CallContext) => unknown>)[m.localName];
    if (!fn) throw new NsmError(`no implementation for ${svc.typeName}/${m.name}`, Code.Internal);
    if (m.methodKind === "unary") {
      handlers[m.localName] = (call: grpc.ServerUnaryCall<any, any>, callback: grpc.sendUnaryData<any>) => {
        const { ctx, done } = callContext(call, log);
        Promise.resolve()
          .then(() => fn.call(impl, call.request, ctx) as Promise<unknown>)
          .then(
            (res) => {
              const headers = headersToSend(ctx);
              if (headers) call.sendMetadata(headers);
              done();
              callback(null, res);
            },
            (err: unknown) => {
              done();
              callback(toServiceError(err));
            },
          );
      };
    } else if (m.methodKind === "server_streaming") {
      handlers[m.localName] = (call: grpc.ServerWritableStream<any, any>) => {
        const { ctx, done } = callContext(call, log);
        const tracked = trackStream(server, call);
        void pump(call, fn.call(impl, call.request, ctx) as AsyncIterable<unknown>, ctx, tracked.ended).finally(() => {
          tracked.untrack();
          done();
        });
      };
    } else {
      throw new NsmError(`${m.methodKind} methods are not supported by addService`, Code.Unimplemented);
    }
  }
  server.addService(grpcDefinition(svc), handlers);
}

async function pump(
  call: grpc.ServerWritableStream<any, any>,
  source: AsyncIterable<unknown>,
  ctx: CallContext,
  ended: () => boolean,
) {
  const over = () => call.cancelled || ended();
  let failure: unknown;
  try {
    let first = true;
    for await (const item of source) {
      if (over() || ctx.signal.aborted) break;
      if (first) sendResponseHeaders(call, ctx);
      first = false;
      if (!call.write(item)) await drained(call);
    }
  } catch (err) {
    failure = err ?? new Error("stream failed");
  }
  if (!over()) finishStream(call, ctx, failure);
}

/**
 * Ends a stream whose source is done: OK when it finished by itself, its context's status when
 * the deadline passed or the call was cancelled, else the source's error. grpc-js sends the
 * status as trailers for an "error" event (destroy() would not).
 */
function finishStream(call: grpc.ServerWritableStream<any, any>, ctx: CallContext, failure: unknown): void {
  if (ctx.signal.aborted) call.emit("error", abortStatus(ctx));
  else if (failure !== undefined) call.emit("error", toServiceError(failure));
  else call.end();
}

function sendResponseHeaders(call: grpc.ServerWritableStream<any, any>, ctx: CallContext): void {
  const headers = headersToSend(ctx);
  if (headers) call.sendMetadata(headers);
}

/** Resolves when the stream can take more, or when the peer cancelled it. */
function drained(call: grpc.ServerWritableStream<any, any>): Promise<void> {
  return new Promise<void>((r) => {
    const done = () => {
      call.off("drain", done);
      call.off("cancelled", done);
      r();
    };
    call.once("drain", done);
    call.once("cancelled", done);
  });
}

/**
 * The status of a stream whose own context ended: its deadline passed (the server's timer can
 * fire before the client's) or it was cancelled. Never OK: the stream did not finish.
 */
function abortStatus(ctx: CallContext): grpc.StatusObject {
  // By the abort's reason first: a timer may fire a millisecond before Date.now() reaches the deadline.
  const timedOut = (ctx.signal.reason as { name?: unknown } | undefined)?.name === "TimeoutError";
  const expired = timedOut || (ctx.deadline !== undefined && Date.now() >= ctx.deadline);
  return expired
    ? { code: grpc.status.DEADLINE_EXCEEDED, details: "deadline exceeded", metadata: new grpc.Metadata() }
    : { code: grpc.status.CANCELLED, details: "call cancelled", metadata: new grpc.Metadata() };
}

/** Per-call options of a client created by {@link grpcClient}. */
export interface ClientCallOptions {
  /** Called with the response headers (e.g. the registry `path` header). */
  onHeaders?: (headers: grpc.Metadata) => void;
}

export type ServiceClient<S extends DescService> = {
  [K in keyof MethodsOf<S>]: MethodsOf<S>[K] extends { methodKind: "server_streaming" }
    ? (req: Req<MethodsOf<S>[K]>, ctx: CallContext, opts?: ClientCallOptions) => AsyncIterable<Res<MethodsOf<S>[K]>>
    : MethodsOf<S>[K] extends { methodKind: "unary" }
      ? (req: Req<MethodsOf<S>[K]>, ctx: CallContext, opts?: ClientCallOptions) => Promise<Res<MethodsOf<S>[K]>>
      : never;
};

function callMetadata(ctx: CallContext): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(ctx.get(outgoingMetadataKey))) md.set(k, v);
  const tracer = chainTracer();
  if (tracer !== undefined) {
    const carrier: Record<string, string> = {};
    tracer.inject(ctx, carrier);
    for (const [k, v] of Object.entries(carrier)) md.set(k, v);
  }
  return md;
}

function callOptions(ctx: CallContext): grpc.CallOptions {
  const extra = ctx.get(callOptionsKey);
  return ctx.deadline === undefined ? { ...extra } : { ...extra, deadline: ctx.deadline };
}

/** A client for `svc` over an existing grpc-js channel (`grpc.Client`). */
export function grpcClient<S extends DescService>(svc: S, channel: grpc.Client): ServiceClient<S> {
  const client: Record<string, unknown> = {};
  for (const m of svc.methods) {
    const path = `/${svc.typeName}/${m.name}`;
    const ser = (v: any) => Buffer.from(toBinary(m.input as DescMessage, v));
    const de = (b: Buffer) => fromBinary(m.output as DescMessage, b);
    if (m.methodKind === "unary") {
      client[m.localName] = (req: unknown, ctx: CallContext, opts: ClientCallOptions = {}) =>
        new Promise((resolve, reject) => {
          ctx.throwIfDone();
          const call = channel.makeUnaryRequest(path, ser, de, req, callMetadata(ctx), callOptions(ctx), (err, res) => {
            ctx.signal.removeEventListener("abort", onAbort);
            if (err) reject(nsmErrorFromGrpc(err));
            else resolve(res);
          });
          const onAbort = () => call.cancel();
          ctx.signal.addEventListener("abort", onAbort, { once: true });
          if (opts.onHeaders) call.on("metadata", opts.onHeaders);
        });
    } else if (m.methodKind === "server_streaming") {
      client[m.localName] = (req: unknown, ctx: CallContext, opts: ClientCallOptions = {}) =>
        streamCall(channel.makeServerStreamRequest(path, ser, de, req, callMetadata(ctx), callOptions(ctx)), ctx, opts);
    }
  }
  return client as ServiceClient<S>;
}

async function* streamCall<T>(
  call: grpc.ClientReadableStream<T>,
  ctx: CallContext,
  opts: ClientCallOptions,
): AsyncGenerator<T> {
  const onAbort = () => call.cancel();
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  if (opts.onHeaders) call.on("metadata", opts.onHeaders);
  try {
    for await (const item of call) yield item as T;
  } catch (err) {
    if (ctx.signal.aborted) return;
    throw nsmErrorFromGrpc(err as grpc.ServiceError);
  } finally {
    ctx.signal.removeEventListener("abort", onAbort);
    call.cancel();
  }
}
