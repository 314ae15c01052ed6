// SPDX-License-Identifier: Apache-2.0
/**
 * monitor: serves MonitorConnections and keeps it true.
 *
 * Purpose: every hop publishes its connections. A subscriber first gets one
 * INITIAL_STATE_TRANSFER with every connection matching its selector (possibly none), then an
 * UPDATE after each successful Request (state UP, as begin returns it: the RESELECT_REQUESTED
 * a healing client's Request carries down the path is not kept), a DELETE after each Close, and
 * an UPDATE with state DOWN when a re-request of a live connection fails. A passthrough hop (nsmgr, forwarder)
 * also subscribes to the next hop (one stream per channel shared by the connections through
 * it, selector `{path_segments: [{name: own segment name}]}`, see ./downstream.ts) and
 * re-publishes what it sees as its own connection (a downstream DELETE, or a broken stream,
 * becomes an UPDATE with state DOWN), which is how an NSC learns that something behind it died.
 * Chain placement: endpoint chains, after metadata; the downstream subscription uses the
 * channel dial stored for the connection, so it starts only on hops that forward.
 * Per-connection state: the last connection and the downstream subscription, both kept in
 * the {@link ConnectionMonitor} (they must outlive a Request's metadata lifetime).
 * Failure behaviour: never fails a Request or Close; downstream stream errors are events.
 */

import {
  type Connection,
  ConnectionContextSchema,
  type ConnectionEvent,
  ConnectionEventSchema,
  ConnectionEventType,
  ConnectionSchema,
  clone,
  create,
  type MonitorScopeSelector,
  PathSchema,
  State,
} from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import type { CallContext } from "../../../core/context.js";
import type { Logger } from "../../../core/logger.js";
import { silentLogger } from "../../../core/logger.js";
import { compactClone } from "../../../tools/compact.js";
import { sharePathTokens } from "../../../tools/pathstrings.js";
import { storedChannelOf } from "../dial/index.js";
import { DownstreamFollower } from "./downstream.js";
import { matchesSelector } from "./selector.js";

export { matchesSelector } from "./selector.js";

type Subscriber = (event: ConnectionEvent) => void;

interface Subscription {
  readonly selector: MonitorScopeSelector;
  readonly push: Subscriber;
}

/**
 * The subscriptions of one hop, indexed so that publishing one connection's event costs the
 * same with 10 or 1000 subscribers: a selector whose first path segment names an id (each NSC's
 * heal and each upstream hop select their own segment) can only match connections whose path
 * holds that id; the others (empty selectors, by service or by name) are checked one by one.
 */
class Subscriptions {
  readonly #byId = new Map<string, Set<Subscription>>();
  readonly #other = new Set<Subscription>();

  add(sub: Subscription): void {
    const id = sub.selector.pathSegments[0]?.id;
    if (!id) {
      this.#other.add(sub);
      return;
    }
    const set = this.#byId.get(id) ?? new Set<Subscription>();
    this.#byId.set(id, set);
    set.add(sub);
  }

  delete(sub: Subscription): void {
    const id = sub.selector.pathSegments[0]?.id;
    if (!id) {
      this.#other.delete(sub);
      return;
    }
    const set = this.#byId.get(id);
    set?.delete(sub);
    if (set?.size === 0) this.#byId.delete(id);
  }

  /** Every subscription that selects `conn`. */
  *matching(conn: Connection): Generator<Subscription> {
    for (const s of this.#other) if (matchesSelector(conn, s.selector)) yield s;
    const seen = new Set<string>();
    for (const segment of conn.path?.pathSegments ?? []) {
      if (seen.has(segment.id)) continue;
      seen.add(segment.id);
      for (const s of this.#byId.get(segment.id) ?? []) if (matchesSelector(conn, s.selector)) yield s;
    }
  }
}

/** The connections of one hop and their subscribers. */
export class ConnectionMonitor {
  readonly #connections = new Map<string, Connection>();
  /**
   * The ids of the connections whose path holds a segment id (for selectors by segment id): one
   * id as a string (almost every segment id is in one connection), a set only for several.
   */
  readonly #bySegment = new Map<string, string | Set<string>>();
  readonly #subscribers = new Subscriptions();
  readonly #downstream: DownstreamFollower;
  readonly log: Logger;

  constructor(log: Logger = silentLogger) {
    this.log = log;
    this.#downstream = new DownstreamFollower(
      { event: (id, down, type) => this.#fromDownstream(id, down, type), broken: (id) => this.down(id) },
      log,
    );
  }

  /** A snapshot of the current connections. */
  connections(): Connection[] {
    return [...this.#connections.values()].map((c) => clone(ConnectionSchema, c));
  }

  /** Records `conn` and sends an UPDATE event to the watchers that select it. */
  update(conn: Connection): void {
    const c = compactClone(ConnectionSchema, conn);
    this.#store(c);
    this.#publish(ConnectionEventType.UPDATE, c);
  }

  #store(c: Connection): void {
    this.#forget(c.id);
    this.#connections.set(c.id, c);
    for (const segment of c.path?.pathSegments ?? []) {
      const ids = this.#bySegment.get(segment.id);
      if (ids === undefined || ids === c.id) this.#bySegment.set(segment.id, c.id);
      else if (typeof ids === "string") this.#bySegment.set(segment.id, new Set([ids, c.id]));
      else ids.add(c.id);
    }
  }

  #forget(id: string): void {
    const old = this.#connections.get(id);
    if (!old) return;
    this.#connections.delete(id);
    for (const segment of old.path?.pathSegments ?? []) {
      const ids = this.#bySegment.get(segment.id);
      if (ids === id) this.#bySegment.delete(segment.id);
      else if (typeof ids === "object") {
        ids.delete(id);
        if (ids.size === 0) this.#bySegment.delete(segment.id);
      }
    }
  }

  /** The connections `selector` may select: those holding its first segment's id, when it names one. */
  *#candidates(selector: MonitorScopeSelector): Generator<Connection> {
    const id = selector.pathSegments[0]?.id;
    if (!id) {
      yield* this.#connections.values();
      return;
    }
    const ids = this.#bySegment.get(id);
    for (const connId of typeof ids === "string" ? [ids] : (ids ?? [])) {
      const c = this.#connections.get(connId);
      if (c) yield c;
    }
  }

  /** Forgets `conn` and sends a DELETE event to the watchers that select it. */
  delete(conn: Connection): void {
    const c = this.#connections.get(conn.id) ?? clone(ConnectionSchema, conn);
    this.#forget(conn.id);
    this.#stopDownstream(conn.id);
    this.#publish(ConnectionEventType.DELETE, c);
  }

  /** Marks a live connection DOWN (failed re-request, broken downstream). */
  down(id: string): void {
    const c = this.#connections.get(id);
    if (!c) return;
    c.state = State.DOWN;
    this.#publish(ConnectionEventType.UPDATE, c);
  }

  /**
   * Asks the client of a live connection to refresh it now (state REFRESH_REQUESTED on the
   * monitor stream; passthrough hops re-publish it, the NSC's heal re-requests): an endpoint
   * whose offer changed (addresses, routes) has its clients come back for it.
   */
  refreshRequested(id: string): void {
    const c = this.#connections.get(id);
    if (!c) return;
    c.state = State.REFRESH_REQUESTED;
    this.#publish(ConnectionEventType.UPDATE, c);
  }

  #publish(type: ConnectionEventType, conn: Connection): void {
    for (const s of this.#subscribers.matching(conn)) {
      s.push(create(ConnectionEventSchema, { type, connections: { [conn.id]: clone(ConnectionSchema, conn) } }));
    }
  }

  /** The MonitorConnections stream: initial state, then matching updates until `signal` aborts. */
  async *events(selector: MonitorScopeSelector, signal: AbortSignal): AsyncGenerator<ConnectionEvent> {
    const queue: ConnectionEvent[] = [];
    let wake: (() => void) | undefined;
    const sub = {
      selector,
      push: (e: ConnectionEvent) => {
        queue.push(e);
        wake?.();
      },
    };
    const initial: Record<string, Connection> = {};
    for (const c of this.#candidates(selector))
      if (matchesSelector(c, selector)) initial[c.id] = clone(ConnectionSchema, c);
    this.#subscribers.add(sub);
    const onAbort = () => wake?.();
    signal.addEventListener("abort", onAbort);
    try {
      yield create(ConnectionEventSchema, { type: ConnectionEventType.INITIAL_STATE_TRANSFER, connections: initial });
      while (!signal.aborted) {
        const e = queue.shift();
        if (e) {
          yield e;
          continue;
        }
        await new Promise<void>((r) => {
          wake = r;
        });
        wake = undefined;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.#subscribers.delete(sub);
    }
  }

  /** Follows the next hop's view of `conn` and re-publishes it as ours. */
  followDownstream(conn: Connection, channel: import("@grpc/grpc-js").Client, ctx: CallContext): void {
    const own = conn.path?.pathSegments[conn.path.index];
    if (own) this.#downstream.follow(conn.id, own.name, channel, ctx);
  }

  #fromDownstream(id: string, down: Connection, type: ConnectionEventType): void {
    const mine = this.#connections.get(id);
    if (!mine?.path || !down.path) return;
    const index = down.path.pathSegments.findIndex((s) => s.id === id);
    if (index < 0) return;
    // Our own view stays (id, index, mechanism: the next hop's mechanism is not ours); the path,
    // context and state are the next hop's (upstream's monitor client filter).
    const c = compactClone(ConnectionSchema, { ...mine, path: undefined });
    c.path = compactClone(PathSchema, down.path);
    c.path.index = index;
    sharePathTokens(c.path, mine.path);
    if (down.context) c.context = compactClone(ConnectionContextSchema, down.context);
    c.state = type === ConnectionEventType.DELETE ? State.DOWN : down.state;
    this.#store(c);
    this.#publish(ConnectionEventType.UPDATE, c);
  }

  /** Stops re-publishing the next hop's view of a connection. */
  unfollow(id: string): void {
    this.#stopDownstream(id);
  }

  #stopDownstream(id: string): void {
    this.#downstream.unfollow(id);
  }

  /** Stops every downstream subscription. */
  close(): void {
    this.#downstream.close();
  }
}

export function monitorServer(monitor: ConnectionMonitor): NetworkServiceElement {
  return {
    name: "monitor",
    requires: ["metadata"],
    async request(req, ctx, next) {
      let conn: Connection;
      try {
        conn = await next.request(req, ctx);
      } catch (err) {
        if (req.connection) monitor.down(req.connection.id);
        throw err;
      }
      // A Request that succeeded leaves the connection UP, whatever state it carried on its
      // way (RESELECT_REQUESTED after a heal): begin returns it UP, and so is it reported.
      monitor.update(conn.state === State.UP ? conn : { ...conn, state: State.UP });
      const channel = storedChannelOf(ctx);
      if (channel) monitor.followDownstream(conn, channel, ctx);
      return conn;
    },
    async close(conn, ctx, next) {
      // Stop following downstream first: its DELETE must not reach subscribers as a DOWN.
      monitor.unfollow(conn.id);
      try {
        await next.close(conn, ctx);
      } finally {
        monitor.delete(conn);
      }
    },
  };
}

/** The MonitorConnection service implementation for addService. */
export function monitorConnectionService(monitor: ConnectionMonitor) {
  return {
    monitorConnections: (selector: MonitorScopeSelector, ctx: CallContext) => monitor.events(selector, ctx.signal),
  };
}
