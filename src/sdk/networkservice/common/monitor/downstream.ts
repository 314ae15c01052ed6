// SPDX-License-Identifier: Apache-2.0
/**
 * Following the next hop's view of this hop's connections (the passthrough half of monitor).
 *
 * One MonitorConnections stream per downstream channel, shared by every connection of this hop
 * through it: the selector names this hop's own path segment by name only (every connection
 * through this hop holds a segment with that name; an empty id is a wildcard), and each event is
 * dispatched by the id of that segment, which is the connection's id at this hop. 1000
 * connections through one forwarder cost one stream, not 1000 (each with its call objects,
 * buffers and timers on both ends).
 * A next hop that refuses the shared selector (PermissionDenied: a monitor policy that wants
 * connection ids in the selector) is followed per connection on that channel from then on
 * (selector: the connection's own segment id and name, as upstream does).
 * A stream that ends or breaks marks every connection following it broken; the next Request of
 * a connection follows again.
 * A stream whose last follower leaves stays open for a while ({@link DOWNSTREAM_LINGER_MS}) for
 * the next connection through the same hop: connections that come and go one after another
 * would otherwise open and cancel a stream each (both ends), which was a tenth of a Request's
 * CPU. A connection that joins a running stream gets no initial state from it (the same as any
 * connection after the first on a shared stream): its Request's answer is that state.
 */
import type * as grpc from "@grpc/grpc-js";
import {
  type Connection,
  type ConnectionEventType,
  create,
  MonitorConnection,
  type MonitorScopeSelector,
  MonitorScopeSelectorSchema,
  PathSegmentSchema,
} from "../../../../api/index.js";
import type { CallContext } from "../../../core/context.js";
import { Code, NsmError } from "../../../core/errors.js";
import type { Logger } from "../../../core/logger.js";
import { grpcClient } from "../../../grpc/service.js";

/** Where the next hop's view goes: `id` is the connection's id at this hop. */
export interface DownstreamSink {
  event(id: string, down: Connection, type: ConnectionEventType): void;
  broken(id: string): void;
}

interface SharedStream {
  /** This hop's segment name (the selector). */
  readonly name: string;
  readonly channel: grpc.Client;
  readonly stop: AbortController;
  /** The ids of the connections following it. */
  readonly followers: Set<string>;
  /** Set while nobody follows it: ends the stream when it fires. */
  linger?: NodeJS.Timeout;
}

/** How long a shared stream stays open without followers. Less than the dial pool's channel linger. */
export const DOWNSTREAM_LINGER_MS = 5_000;

interface Following {
  readonly channel: grpc.Client;
  readonly shared?: SharedStream;
  readonly own?: AbortController;
}

const selectorOf = (name: string, id = "") =>
  create(MonitorScopeSelectorSchema, { pathSegments: [create(PathSegmentSchema, { id, name })] });

export class DownstreamFollower {
  readonly #sink: DownstreamSink;
  readonly #log: Logger;
  readonly #shared = new Map<grpc.Client, Map<string, SharedStream>>();
  /** Channels whose next hop refused the shared selector. */
  readonly #perConnection = new WeakSet<grpc.Client>();
  readonly #following = new Map<string, Following>();
  readonly #lingerMs: number;

  constructor(sink: DownstreamSink, log: Logger, lingerMs = DOWNSTREAM_LINGER_MS) {
    this.#sink = sink;
    this.#log = log;
    this.#lingerMs = lingerMs;
  }

  /** Follows connection `id` (this hop's segment `name`) through `channel`; nothing if it already does. */
  follow(id: string, name: string, channel: grpc.Client, ctx: CallContext): void {
    const current = this.#following.get(id);
    if (current?.channel === channel) return;
    if (current) this.unfollow(id);
    if (this.#perConnection.has(channel)) {
      this.#followAlone(id, name, channel, ctx);
      return;
    }
    const byName = this.#shared.get(channel) ?? new Map<string, SharedStream>();
    this.#shared.set(channel, byName);
    let stream = byName.get(name);
    if (!stream) {
      stream = { name, channel, stop: new AbortController(), followers: new Set() };
      byName.set(name, stream);
      this.#runShared(stream, ctx);
    }
    clearTimeout(stream.linger);
    stream.linger = undefined;
    stream.followers.add(id);
    this.#following.set(id, { channel, shared: stream });
  }

  /** Stops following `id`; a shared stream stops with its last follower. */
  unfollow(id: string): void {
    const f = this.#following.get(id);
    if (!f) return;
    this.#following.delete(id);
    f.own?.abort();
    if (!f.shared) return;
    f.shared.followers.delete(id);
    if (f.shared.followers.size === 0) this.#lingerOrEnd(f.shared);
  }

  /** Stops following everything, and ends every stream. */
  close(): void {
    for (const id of [...this.#following.keys()]) this.unfollow(id);
    for (const byName of [...this.#shared.values()]) for (const stream of [...byName.values()]) this.#endShared(stream);
  }

  #lingerOrEnd(stream: SharedStream): void {
    if (this.#lingerMs <= 0) {
      this.#endShared(stream);
      return;
    }
    stream.linger = setTimeout(() => {
      if (stream.followers.size === 0) this.#endShared(stream);
    }, this.#lingerMs);
    stream.linger.unref();
  }

  #endShared(stream: SharedStream): void {
    clearTimeout(stream.linger);
    stream.stop.abort();
    const byName = this.#shared.get(stream.channel);
    if (byName?.get(stream.name) !== stream) return;
    byName.delete(stream.name);
    if (byName.size === 0) this.#shared.delete(stream.channel);
  }

  #runShared(stream: SharedStream, ctx: CallContext): void {
    void (async () => {
      const refused = await this.#readShared(stream, ctx);
      if (stream.stop.signal.aborted) return;
      this.#endShared(stream);
      const followers = [...stream.followers].filter((id) => this.#following.get(id)?.shared === stream);
      for (const id of followers) this.#following.delete(id);
      if (refused) this.#perConnection.add(stream.channel);
      for (const id of followers) {
        if (refused) this.#followAlone(id, stream.name, stream.channel, ctx);
        else this.#sink.broken(id);
      }
    })();
  }

  /** Reads the shared stream until it breaks; true when the next hop refused it (PermissionDenied). */
  async #readShared(stream: SharedStream, ctx: CallContext): Promise<boolean> {
    const streamCtx = ctx.detached().withCancel({ signal: stream.stop.signal });
    try {
      await this.#read(stream.channel, selectorOf(stream.name), streamCtx, (down, type) => {
        const id = down.path?.pathSegments.find((s) => s.name === stream.name)?.id;
        if (id !== undefined && stream.followers.has(id)) this.#sink.event(id, down, type);
      });
      return false;
    } catch (err) {
      if (stream.stop.signal.aborted) return false;
      this.#log.debug({ name: stream.name, err: String(err) }, "downstream monitor stream broke");
      return NsmError.from(err).code === Code.PermissionDenied;
    }
  }

  #followAlone(id: string, name: string, channel: grpc.Client, ctx: CallContext): void {
    const own = new AbortController();
    this.#following.set(id, { channel, own });
    const streamCtx = ctx.detached().withCancel({ signal: own.signal });
    void (async () => {
      try {
        await this.#read(channel, selectorOf(name, id), streamCtx, (down, type) => this.#sink.event(id, down, type));
      } catch (err) {
        if (!own.signal.aborted) this.#log.debug({ connId: id, err: String(err) }, "downstream monitor stream broke");
      }
      if (own.signal.aborted) return;
      if (this.#following.get(id)?.own === own) this.#following.delete(id);
      this.#sink.broken(id);
    })();
  }

  async #read(
    channel: grpc.Client,
    selector: MonitorScopeSelector,
    ctx: CallContext,
    each: (down: Connection, type: ConnectionEventType) => void,
  ): Promise<void> {
    for await (const event of grpcClient(MonitorConnection, channel).monitorConnections(selector, ctx)) {
      for (const down of Object.values(event.connections)) each(down, event.type);
    }
  }
}
