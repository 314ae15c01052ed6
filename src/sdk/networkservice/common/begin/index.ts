// SPDX-License-Identifier: Apache-2.0
/**
 * begin: serializes all events of one connection and lets later elements re-enter the chain.
 *
 * Purpose: the one place that orders work per connection id. A Request, a Close, and the
 * events fired later by refresh, timeout or heal through the {@link EventFactory} run one at a
 * time, in arrival order, for each connection id; no other element needs its own locking.
 * Chain placement: right after updatepath (the id must be this hop's id).
 * Per-connection state: the last successful request and connection, and the context values
 * of that request (peer facts, client URL...) for re-entry.
 * Behaviour (upstream): a server Request carrying state RESELECT_REQUESTED for an established
 * connection first closes the old downstream connection; a successful server Request returns
 * state UP; Close always uses the last connection the chain returned; a failed first Request
 * leaves no state; a Close for an unknown connection does nothing.
 * The client side also merges a caller's repeated Request with the current connection, so
 * that only what the caller changed overrides what the path negotiated.
 */
import {
  type Connection,
  ConnectionContextSchema,
  ConnectionSchema,
  clone,
  equals,
  MechanismSchema,
  type NetworkServiceRequest,
  NetworkServiceRequestSchema,
  PathSchema,
  State,
} from "../../../../api/index.js";
import type { NetworkServiceElement, NetworkServiceHandler } from "../../../core/chain.js";
import { type CallContext, createContextKey } from "../../../core/context.js";
import { Code, NsmError } from "../../../core/errors.js";
import { compactClone } from "../../../tools/compact.js";

/** Lifecycle of a connection as seen by one hop. */
export type ConnectionLifecycle = "requesting" | "established" | "closed";

export interface EventOptions {
  /** Close the current connection first and request a new path (clears mechanism and endpoint). */
  reselect?: boolean;
  /** Deadline for the event. @default the duration of the original request, or 15 s */
  timeoutMs?: number;
}

/** Lets an element fire a Request or Close for its connection later, from the head of the rest of the chain. */
export interface EventFactory {
  readonly state: ConnectionLifecycle;
  /** Re-sends the last good request (refresh, heal). */
  request(options?: EventOptions): Promise<Connection>;
  /** Closes the connection (timeout, heal giving up). */
  close(options?: { timeoutMs?: number }): Promise<void>;
}

const eventFactoryKey = createContextKey<EventFactory | undefined>(undefined, "eventFactory");

/** The event factory of the connection being handled (set by begin). */
export function eventFactoryOf(ctx: CallContext): EventFactory {
  const f = ctx.get(eventFactoryKey);
  if (!f)
    throw new NsmError("no begin element earlier in the chain", Code.FailedPrecondition, { reason: "chain-order" });
  return f;
}

export const DEFAULT_EVENT_TIMEOUT_MS = 15_000;

/** Upstream's default reselect: forget the mechanism and the endpoint, ask for a new path. */
export function defaultReselect(req: NetworkServiceRequest): void {
  const c = req.connection;
  if (!c) return;
  c.mechanism = undefined;
  c.networkServiceEndpointName = "";
  c.state = State.RESELECT_REQUESTED;
}

const settled = (): void => {};

class ConnectionEvents implements EventFactory {
  state: ConnectionLifecycle = "requesting";
  /**
   * The last good request, without its connection (an event re-sends `conn`). The client side
   * keeps the connection the caller asked for, without its path, to see what a repeated Request
   * changes (see mergeClientConnection).
   */
  request_: NetworkServiceRequest | undefined;
  conn: Connection | undefined;
  /** The last Request's context values and logger, without its lifetime (see CallContext.retained). */
  ctx: CallContext | undefined;
  /** The rest of the chain as the last Request or Close of this connection was given it. */
  next: NetworkServiceHandler | undefined;
  eventTimeoutMs = DEFAULT_EVENT_TIMEOUT_MS;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly id: string,
    readonly owner: Begin,
  ) {}

  /** Runs `fn` after every event queued before it for this connection. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    // Settles with undefined: the queue must not keep the last event's result (a connection).
    this.#queue = run.then(settled, settled);
    return run;
  }

  request(options: EventOptions = {}): Promise<Connection> {
    return this.serial(async () => {
      if (this.state !== "established" || !this.request_ || !this.ctx || !this.conn) {
        throw new NsmError(`connection ${this.id} is not established`, Code.FailedPrecondition);
      }
      const ctx = this.ctx.detached(options.timeoutMs ?? this.eventTimeoutMs);
      const req = clone(NetworkServiceRequestSchema, this.request_);
      req.connection = clone(ConnectionSchema, this.conn);
      if (options.reselect) {
        await this.owner.closeDownstream(this, ctx);
        defaultReselect(req);
      }
      return this.owner.forward(this, req, ctx);
    });
  }

  close(options: { timeoutMs?: number } = {}): Promise<void> {
    return this.serial(async () => {
      if (this.state !== "established" || !this.ctx) return;
      await this.owner.finish(this, this.ctx.detached(options.timeoutMs ?? this.eventTimeoutMs));
    });
  }
}

class Begin implements NetworkServiceElement {
  readonly name: string;
  readonly #events = new Map<string, ConnectionEvents>();

  constructor(readonly isClient: boolean) {
    this.name = isClient ? "beginClient" : "begin";
  }

  async request(req: NetworkServiceRequest, ctx: CallContext, next: NetworkServiceHandler): Promise<Connection> {
    const id = req.connection?.id;
    if (!id) throw new NsmError("begin needs a connection id (put updatepath before it)", Code.InvalidArgument);
    let ev = this.#events.get(id);
    if (!ev) {
      ev = new ConnectionEvents(id, this);
      this.#events.set(id, ev);
    }
    const events = ev;
    return events.serial(async () => {
      const request = await this.requestToForward(events, req, ctx);
      if (ctx.deadline !== undefined) events.eventTimeoutMs = Math.max(1000, ctx.deadline - Date.now());
      events.ctx = ctx.retained();
      events.next = next;
      return this.forward(events, request, ctx);
    });
  }

  /**
   * The request to send down for an established connection: a reselect first closes the old
   * path; a client refresh merges what the client knows into the connection. Otherwise `req`.
   */
  private async requestToForward(
    events: ConnectionEvents,
    req: NetworkServiceRequest,
    ctx: CallContext,
  ): Promise<NetworkServiceRequest> {
    if (events.state !== "established" || !events.conn) return req;
    if (req.connection?.state === State.RESELECT_REQUESTED) {
      await this.closeDownstream(events, ctx);
      return req;
    }
    if (!this.isClient) return req;
    const merged = mergeClientConnection(req.connection!, events);
    // A client chain run by a server (connect) forwards the path its server received, and
    // so the path tokens every hop has just renewed (upstream's begin client passes such a
    // request through unchanged).
    if (ctx.get(eventFactoryKey) && req.connection?.path) merged.path = clone(PathSchema, req.connection.path);
    return { ...req, connection: merged };
  }

  async close(conn: Connection, ctx: CallContext, next: NetworkServiceHandler): Promise<void> {
    const events = this.#events.get(conn.id);
    if (!events) return;
    await events.serial(async () => {
      if (events.state !== "established") return;
      events.next = next;
      await this.finish(events, ctx);
    });
  }

  /** Runs the rest of the chain for a Request; records the result. Runs inside the serial executor. */
  async forward(events: ConnectionEvents, req: NetworkServiceRequest, ctx: CallContext): Promise<Connection> {
    try {
      const conn = await events.next!.request(req, ctx.with(eventFactoryKey, events));
      if (!this.isClient) conn.state = State.UP;
      events.request_ = this.lastRequest(req);
      events.conn = compactClone(ConnectionSchema, conn);
      events.state = "established";
      return conn;
    } catch (err) {
      if (events.state !== "established") {
        events.state = "closed";
        this.#events.delete(events.id);
      }
      throw err;
    }
  }

  /** What to keep of a successful request (see ConnectionEvents.request_). */
  private lastRequest(req: NetworkServiceRequest): NetworkServiceRequest {
    const kept = compactClone(NetworkServiceRequestSchema, { ...req, connection: undefined });
    if (this.isClient && req.connection)
      kept.connection = compactClone(ConnectionSchema, { ...req.connection, path: undefined });
    return kept;
  }

  /** Closes downstream and forgets the connection. Runs inside the serial executor. */
  async finish(events: ConnectionEvents, ctx: CallContext): Promise<void> {
    events.state = "closed";
    this.#events.delete(events.id);
    await events.next!.close(clone(ConnectionSchema, events.conn!), ctx.with(eventFactoryKey, events));
  }

  /** Closes the old downstream path before a reselect; failures are logged, not returned. */
  async closeDownstream(events: ConnectionEvents, ctx: CallContext): Promise<void> {
    try {
      await events.next!.close(clone(ConnectionSchema, events.conn!), ctx.with(eventFactoryKey, events));
    } catch (err) {
      ctx.log.warn({ connId: events.id, err: String(err) }, "could not close the old connection before reselect");
    }
  }
}

/**
 * A caller's repeated Request on the client side: start from the connection the path
 * returned, and take from the caller only what it changed since its last request.
 */
function mergeClientConnection(requested: Connection, events: ConnectionEvents): Connection {
  const current = clone(ConnectionSchema, events.conn!);
  const previous = events.request_?.connection;
  if (requested.networkServiceEndpointName !== (previous?.networkServiceEndpointName ?? "")) {
    current.networkServiceEndpointName = requested.networkServiceEndpointName;
  }
  if (requested.networkService !== previous?.networkService) current.networkService = requested.networkService;
  if (!sameLabels(requested.labels, previous?.labels ?? {})) current.labels = requested.labels;
  if (
    requested.context &&
    !(previous?.context && equals(ConnectionContextSchema, requested.context, previous.context))
  ) {
    current.context = requested.context;
  }
  // A changed mechanism (e.g. an NSC sidecar naming the pod's netns by its own pid after taking
  // over from nsc --init) must reach the next hop.
  if (
    requested.mechanism &&
    !(previous?.mechanism && equals(MechanismSchema, requested.mechanism, previous.mechanism))
  ) {
    current.mechanism = requested.mechanism;
  }
  current.state = requested.state;
  return current;
}

export const beginServer = (): NetworkServiceElement => new Begin(false);
export const beginClient = (): NetworkServiceElement => new Begin(true);

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}
