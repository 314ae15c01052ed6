// SPDX-License-Identifier: Apache-2.0
/**
 * connect: hands a request to the next hop.
 *
 * Purpose: `connectClient()` is the tail of a client chain: it calls
 * `/networkservice.NetworkService/Request` (or Close) on the channel dial put in the context.
 * `connectServer(client)` runs a whole client chain from inside a server chain (nsmgr and
 * forwarder forward to the next hop this way): the connection the client chain returns
 * becomes the request's connection for the rest of the server chain.
 * Chain placement: connectClient last in a client chain; connectServer after the elements
 * that choose the next hop (discover, roundrobin, discoverforwarder).
 * Per-connection state: none of its own.
 * Failure behaviour: gRPC statuses from the next hop come back as NsmErrors with the same
 * code; if the rest of the server chain fails after the client chain succeeded, the client
 * side is closed before the error is returned.
 */

import { NetworkService as NetworkServiceDesc } from "../../../../api/index.js";
import { bind, closeQuietly, type NetworkServiceElement } from "../../../core/chain.js";
import { Code, NsmError } from "../../../core/errors.js";
import { grpcClient } from "../../../grpc/service.js";
import { sharePathTokens } from "../../../tools/pathstrings.js";
import { channelOf } from "../dial/index.js";

export function connectClient(): NetworkServiceElement {
  const clientFor = (ctx: Parameters<NetworkServiceElement["request"]>[1]) => {
    const channel = channelOf(ctx);
    if (!channel) throw new NsmError("no channel to the next hop (put dial before connect)", Code.FailedPrecondition);
    return grpcClient(NetworkServiceDesc, channel);
  };
  return {
    name: "connect",
    async request(req, ctx) {
      const conn = await clientFor(ctx).request(req, ctx);
      // The answer repeats the tokens we sent: keep one copy of each.
      sharePathTokens(conn.path, req.connection?.path);
      return conn;
    },
    close: async (conn, ctx) => {
      await clientFor(ctx).close(conn, ctx);
    },
  };
}

export function connectServer(client: NetworkServiceElement): NetworkServiceElement {
  const bound = bind(client);
  return {
    name: "connectServer",
    async request(req, ctx, next) {
      const conn = await bound.request(req, ctx);
      try {
        return await next.request({ ...req, connection: conn }, ctx);
      } catch (err) {
        await closeQuietly(bound, conn, ctx, "a failure later in the chain");
        throw err;
      }
    },
    async close(conn, ctx, next) {
      let first: unknown;
      try {
        await bound.close(conn, ctx);
      } catch (err) {
        first = err;
      }
      await next.close(conn, ctx);
      if (first) throw first;
    },
  };
}
