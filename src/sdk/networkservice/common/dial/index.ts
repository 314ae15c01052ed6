// SPDX-License-Identifier: Apache-2.0
/**
 * dial: opens (and caches per connection) the gRPC channel to the client URL.
 *
 * Purpose: the next hop of a connection is reached through one grpc-js channel, taken on the
 * first Request and reused by refreshes; a changed client URL (reselect) redials and lets the
 * old one go. Channels come from a pool shared by the connections to the same URL
 * ({@link acquireChannel}): each connection holds a lease, and a channel closes a while after its
 * last lease (the next connection to the same hop reuses it; `lingerMs`).
 * Chain placement: client chains, after clienturl (or discover/roundrobin on a server) and
 * before connect; needs metadata.
 * Per-connection state: the channel and its URL (client-side metadata, key exported through
 * {@link channelOf}); closed after Close, or when the first Request fails.
 * Options: dial timeout and credentials.
 * Failure behaviour: no client URL → InvalidArgument; a peer that does not answer within the
 * dial timeout → Unavailable naming the URL.
 */
import type * as grpc from "@grpc/grpc-js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { type CallContext, createContextKey } from "../../../core/context.js";
import { Code, NsmError } from "../../../core/errors.js";
import { acquireChannel, type ChannelLease, type DialOptions, waitForReady } from "../../../grpc/dial.js";
import { clientUrlOf } from "../clienturl/index.js";
import { createMetadataKey, metadataOf } from "../metadata/index.js";

export interface DialClientOptions extends DialOptions {
  /** How long to wait for the next hop to accept the connection. @default 5000 */
  dialTimeoutMs?: number;
}

export const DEFAULT_DIAL_TIMEOUT_MS = 5_000;

type Dialed = ChannelLease;

const dialedKey = createMetadataKey<Dialed>("dial");
const channelKey = createContextKey<grpc.Client | undefined>(undefined, "clientChannel");

/** The channel to the next hop, set by dial for the rest of the chain (connect uses it). */
export function channelOf(ctx: CallContext): grpc.Client | undefined {
  return ctx.get(channelKey);
}

/** The channel dial keeps for the current connection (readable by server elements after next returns). */
export function storedChannelOf(ctx: CallContext): grpc.Client | undefined {
  return metadataOf(ctx, true).load(dialedKey)?.channel;
}

async function dial(url: string, options: DialClientOptions): Promise<ChannelLease> {
  const lease = acquireChannel(url, options);
  try {
    await waitForReady(lease.channel, options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS);
  } catch (err) {
    lease.release();
    throw new NsmError(`cannot reach ${url}: ${(err as Error).message}`, Code.Unavailable, { cause: err });
  }
  return lease;
}

export function dialClient(options: DialClientOptions = {}): NetworkServiceElement {
  return {
    name: "dial",
    requires: ["metadataClient"],
    async request(req, ctx, next) {
      const url = clientUrlOf(ctx);
      if (!url) throw new NsmError("no client URL to dial", Code.InvalidArgument);
      const md = metadataOf(ctx, true);
      let d = md.load(dialedKey);
      const fresh = !d;
      if (d && d.url !== url) {
        d.release();
        md.delete(dialedKey);
        d = undefined;
      }
      if (!d) {
        d = await dial(url, options);
        md.store(dialedKey, d);
      }
      try {
        return await next.request(req, ctx.with(channelKey, d.channel));
      } catch (err) {
        if (fresh) {
          d.release();
          md.delete(dialedKey);
        }
        throw err;
      }
    },
    async close(conn, ctx, next) {
      const md = metadataOf(ctx, true);
      let d = md.load(dialedKey);
      const url = clientUrlOf(ctx);
      if (!d && url) {
        // Close after a restart: we have no channel yet, so dial for the Close only.
        try {
          d = await dial(url, options);
        } catch (err) {
          ctx.log.warn({ connId: conn.id, err: String(err) }, "cannot dial to close the connection downstream");
          return;
        }
      }
      try {
        await next.close(conn, d ? ctx.with(channelKey, d.channel) : ctx);
      } finally {
        d?.release();
        md.delete(dialedKey);
      }
    },
  };
}
