// SPDX-License-Identifier: Apache-2.0
/**
 * updatetoken (server): puts path tokens into the connection's path.
 *
 * Purpose (upstream `updatetoken`): on every Request and Close,
 * 1. the caller's token from the per-RPC metadata (`nsm-client-token`,
 *    `nsm-client-token-expires`) goes into the previous segment (`path_segments[index-1]`):
 *    the token the previous hop minted for us replaces whatever that hop put there itself;
 * 2. this hop mints its own token for the peer that called it and puts it, with its expiry,
 *    into its own segment (`path_segments[index]`). A later hop replaces it with the token this
 *    hop mints for that hop, so every segment but the last ends up holding the token its owner
 *    minted for the next hop, and the tokens chain.
 * A missing or malformed caller token is logged and skipped (as upstream); the authorize
 * policies then decide. Mint failures fail the call (Internal).
 * Chain placement: endpoint chains' `updateToken` slot: after updatepath and begin, before
 * authorize.
 * Per-connection state: none.
 */
import { create } from "@bufbuild/protobuf";
import { TimestampSchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Connection, ConnectionSchema, clone } from "../../api/index.js";
import type { NetworkServiceElement } from "../../sdk/core/chain.js";
import type { CallContext } from "../../sdk/core/context.js";
import { internal, invalidArgument } from "../../sdk/core/errors.js";
import { requestConnection } from "../../sdk/core/request.js";
import { grpcPeerKey } from "../../sdk/grpc/service.js";
import { peerCertificateOf } from "../tls.js";
import { type TokenGenerator, tokenFromMetadata } from "../token.js";

async function updateTokens(conn: Connection, ctx: CallContext, generate: TokenGenerator): Promise<Connection> {
  const path = conn.path;
  const segments = path?.pathSegments ?? [];
  const index = path?.index ?? 0;
  if (!path || index >= segments.length) {
    throw invalidArgument(`path index ${index} is out of range: the path has ${segments.length} segment(s)`, {
      reason: "path-index-out-of-range",
    });
  }
  const prev = index > 0 ? segments[index - 1] : undefined;
  const peer = ctx.get(grpcPeerKey);
  if (prev && peer) {
    try {
      const incoming = tokenFromMetadata(peer.metadata);
      prev.token = incoming.token;
      prev.expires = create(TimestampSchema, { seconds: incoming.expires.seconds, nanos: incoming.expires.nanos });
    } catch (err) {
      ctx.log.warn({ connId: conn.id, err: (err as Error).message }, "no usable token from the previous hop");
    }
  }
  let minted: Awaited<ReturnType<TokenGenerator>>;
  try {
    minted = await generate(peerCertificateOf(ctx));
  } catch (err) {
    throw internal(`failed to generate a token: ${(err as Error).message}`, { cause: err });
  }
  const own = segments[index]!;
  own.token = minted.token;
  own.expires = timestampFromDate(minted.expires);
  return conn;
}

/** The updatetoken server element for the endpoint chain's `updateToken` slot. */
export function updateTokenServer(tokenGenerator: TokenGenerator): NetworkServiceElement {
  return {
    name: "updatetoken",
    async request(req, ctx, next) {
      const conn = await updateTokens(clone(ConnectionSchema, requestConnection(req)), ctx, tokenGenerator);
      return next.request({ ...req, connection: conn }, ctx);
    },
    async close(conn, ctx, next) {
      await next.close(await updateTokens(clone(ConnectionSchema, conn), ctx, tokenGenerator), ctx);
    },
  };
}
