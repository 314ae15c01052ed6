// SPDX-License-Identifier: Apache-2.0
/**
 * NSM URLs to gRPC targets, and channel creation (part of the gRPC glue, see index.ts).
 *
 * NSM names peers with URLs: `unix:///path/to.sock` and `tcp://host:port` (as in NSM_LISTEN_ON,
 * NSM_CONNECT_TO, NSE records). grpc-js wants `unix:///path` or `host:port`.
 */
import * as grpc from "@grpc/grpc-js";
import { invalidArgument } from "../core/errors.js";
import { markFdChannel, passesFds } from "./fdtransport.js";

export interface ParsedUrl {
  readonly scheme: "unix" | "tcp";
  /** Socket path for unix, `host:port` for tcp. */
  readonly address: string;
  readonly host?: string;
  readonly port?: number;
}

/** Parses an NSM endpoint URL; anything else is InvalidArgument with the reason. */
export function parseNsmUrl(url: string): ParsedUrl {
  if (url.startsWith("unix://")) {
    const path = url.slice("unix://".length);
    if (!path.startsWith("/"))
      throw invalidArgument(`bad URL "${url}": a unix URL needs an absolute path (unix:///path)`);
    return { scheme: "unix", address: path };
  }
  if (url.startsWith("tcp://")) {
    const rest = url.slice("tcp://".length);
    const m = /^(\[[0-9a-fA-F:.]+\]|[^:/\s]*):(\d{1,5})\/?$/.exec(rest);
    const port = m ? Number(m[2]) : Number.NaN;
    if (!m || port < 1 || port > 65535) throw invalidArgument(`bad URL "${url}": expected tcp://host:port`);
    return { scheme: "tcp", address: `${m[1] || "0.0.0.0"}:${port}`, host: m[1] || "0.0.0.0", port };
  }
  throw invalidArgument(`bad URL "${url}": expected unix:///path or tcp://host:port`);
}

/** The grpc-js target for an NSM URL. */
export function grpcTarget(url: string): string {
  const u = parseNsmUrl(url);
  return u.scheme === "unix" ? `unix://${u.address}` : u.address;
}

export interface DialOptions {
  credentials?: grpc.ChannelCredentials;
  channelOptions?: grpc.ChannelOptions;
  /** How long a pooled channel stays open after its last lease (`acquireChannel`). @default CHANNEL_LINGER_MS */
  lingerMs?: number;
}

/**
 * grpc-js waits 1 s, then up to 120 s between reconnection attempts; a mesh hop that restarts
 * (nsmgr, forwarder, registry) is back within a second or two and every connection healing
 * through it waits for the channel, so reconnect fast and often.
 */
export const RECONNECT_BACKOFF_OPTIONS: grpc.ChannelOptions = {
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 500,
};

/** Opens a grpc-js channel to an NSM URL (insecure unless credentials are given). */
export function dialChannel(url: string, options: DialOptions = {}): grpc.Client {
  const channel = new grpc.Client(grpcTarget(url), options.credentials ?? grpc.credentials.createInsecure(), {
    "grpc.enable_retries": 0,
    ...RECONNECT_BACKOFF_OPTIONS,
    ...options.channelOptions,
  });
  if (passesFds(options.credentials)) markFdChannel(channel);
  return channel;
}

/**
 * Waits until a channel is connected. Fails at the deadline, and also as soon as a connection
 * attempt made by this call fails (TRANSIENT_FAILURE after CONNECTING: nothing listens there,
 * the TLS handshake was refused…): a dead next hop costs one attempt, not the whole dial
 * timeout, and the caller (roundrobin's next candidate, heal's next retry) moves on at once.
 * A channel already backing off from an earlier failure gets until its next attempt.
 */
export function waitForReady(channel: grpc.Client, deadlineMs: number): Promise<void> {
  const ch = channel.getChannel();
  const deadline = Date.now() + deadlineMs;
  return new Promise((resolve, reject) => {
    let attempted = false;
    const check = () => {
      const state = ch.getConnectivityState(true);
      if (state === grpc.connectivityState.READY) return resolve();
      if (state === grpc.connectivityState.CONNECTING) attempted = true;
      if (state === grpc.connectivityState.TRANSIENT_FAILURE && attempted)
        return reject(new Error("the connection attempt failed"));
      if (state === grpc.connectivityState.SHUTDOWN) return reject(new Error("the channel is closed"));
      ch.watchConnectivityState(state, deadline, (err) =>
        err ? reject(new Error(`not connected within ${deadlineMs} ms`)) : check(),
      );
    };
    check();
  });
}

/** Closes a channel. `grpc.Client#close` may be shadowed by an RPC named Close, so call the prototype. */
export function closeChannel(channel: grpc.Client): void {
  grpc.Client.prototype.close.call(channel);
}

interface Pooled {
  channel: grpc.Client;
  refs: number;
  /** Set while no lease holds the channel: closes it when it fires. */
  linger?: NodeJS.Timeout;
}

const pools = new WeakMap<object, Map<string, Pooled>>();
const insecureKey = {};

/**
 * How long a pooled channel stays open after its last lease is released. A node's next hops
 * (forwarders, endpoints) take one connection after another: closing the channel with each
 * Close made every next Request pay a new socket, HTTP/2 handshake and grpc-js subchannel.
 */
export const CHANNEL_LINGER_MS = 10_000;

/** A reference to a pooled channel: release it when the connection that uses it ends. */
export interface ChannelLease {
  readonly url: string;
  readonly channel: grpc.Client;
  release(): void;
}

/** A lingering channel is reused only while it is not failing: a fresh one tries at once, without backoff. */
function reusable(entry: Pooled): boolean {
  if (entry.refs > 0) return true;
  const state = entry.channel.getChannel().getConnectivityState(false);
  return state === grpc.connectivityState.READY || state === grpc.connectivityState.IDLE;
}

function pooledEntry(pool: Map<string, Pooled>, key: string, url: string, options: DialOptions): Pooled {
  const entry = pool.get(key);
  if (entry && reusable(entry)) {
    clearTimeout(entry.linger);
    entry.linger = undefined;
    return entry;
  }
  if (entry) {
    clearTimeout(entry.linger);
    closeChannel(entry.channel);
  }
  const fresh: Pooled = { channel: dialChannel(url, options), refs: 0 };
  pool.set(key, fresh);
  return fresh;
}

/**
 * A channel to `url` shared by every caller with the same URL and credentials, closed
 * `lingerMs` after the last lease is released (unless leased again meanwhile; at once when it is
 * failing).
 * Connections keep their own lease (redialing means releasing one and acquiring another), so
 * per-connection semantics stay as upstream's while many connections to the same next hop share
 * one HTTP/2 connection and one set of grpc-js channel objects.
 */
export function acquireChannel(url: string, options: DialOptions = {}): ChannelLease {
  const credKey = options.credentials ?? insecureKey;
  let pool = pools.get(credKey);
  if (!pool) {
    pool = new Map();
    pools.set(credKey, pool);
  }
  const key = `${url}|${JSON.stringify(options.channelOptions ?? {})}`;
  const e = pooledEntry(pool, key, url, options);
  e.refs++;
  const p = pool;
  let released = false;
  return {
    url,
    channel: e.channel,
    release() {
      if (released) return;
      released = true;
      e.refs--;
      if (e.refs > 0) return;
      const close = () => {
        if (p.get(key) === e) p.delete(key);
        closeChannel(e.channel);
      };
      const lingerMs = options.lingerMs ?? CHANNEL_LINGER_MS;
      if (lingerMs <= 0 || !reusable(e)) return close();
      e.linger = setTimeout(close, lingerMs);
      e.linger.unref();
    },
  };
}
