// SPDX-License-Identifier: Apache-2.0
/**
 * updatepath (registry server): extends the registry path with tokens, and the record's
 * `path_ids` with SPIFFE IDs.
 *
 * On Register and Unregister (upstream `registry/common/updatepath`):
 * - the caller's token comes from the per-RPC metadata, this hop mints its own for the caller;
 * - an empty path becomes `[caller's token, own token]` with index 1; otherwise the index moves
 *   one step on, the previous segment takes the caller's token, and the current segment takes
 *   the own token (appended if missing);
 * - `path_ids[index-1]` = the `sub` of the caller's token and `path_ids[index]` = this hop's
 *   SPIFFE ID (the list grows as needed), so `path_ids[0]` ends up naming the original
 *   registrant, which the `client_allowed` policy compares against;
 * - after the rest of the chain returns, the index goes back to the caller's.
 * A missing caller token is logged (the caller's segment and id stay empty and the policies
 * decide). A path whose index points past its end is InvalidArgument. Find passes through.
 * Chain placement: registry server chains, after grpcmetadata, before authorize.
 */

import type { CallContext } from "../../sdk/core/context.js";
import { internal, invalidArgument } from "../../sdk/core/errors.js";
import { grpcPeerKey } from "../../sdk/grpc/service.js";
import type { RegistryElement } from "../../sdk/registry/core/chain.js";
import type { RegistryKind, RegistryTypes } from "../../sdk/registry/core/kind.js";
import { peerCertificateOf } from "../tls.js";
import { type TokenGenerator, tokenFromMetadata, tokenSubject } from "../token.js";
import { emptyRegistryPath, type RegistryPath, registryPathKey } from "./path.js";

/** Moves `path` to this hop; returns the caller's index (to restore afterwards). */
export function advanceRegistryPath(path: RegistryPath, peerToken: string, ownToken: string): number {
  if (path.pathSegments.length === 0) {
    path.pathSegments.push({ token: peerToken }, { token: ownToken });
    path.index = 1;
    return 0;
  }
  if (path.index + 1 > path.pathSegments.length) {
    throw invalidArgument(
      `registry path index ${path.index} + 1 is more than its ${path.pathSegments.length} segment(s)`,
      { reason: "path-index-out-of-range" },
    );
  }
  const callerIndex = path.index;
  path.pathSegments[callerIndex]!.token = peerToken;
  path.index++;
  const current = path.pathSegments[path.index];
  if (current) current.token = ownToken;
  else path.pathSegments.push({ token: ownToken });
  return callerIndex;
}

function setId(ids: string[], index: number, id: string): void {
  if (index >= ids.length) ids.push(id);
  else ids[index] = id;
}

/** The registry updatepath server for `kind` (nsKind or nseKind). */
export function registryUpdatePath<T extends RegistryTypes>(
  kind: RegistryKind<T>,
  tokenGenerator: TokenGenerator,
): RegistryElement<T> {
  const around = async <R>(
    record: T["record"],
    ctx: CallContext,
    call: (rec: T["record"], ctx: CallContext) => Promise<R>,
  ): Promise<R> => {
    let path = ctx.get(registryPathKey);
    if (!path) {
      path = emptyRegistryPath();
      ctx = ctx.with(registryPathKey, path);
    }
    let peerToken = "";
    const peer = ctx.get(grpcPeerKey);
    try {
      if (peer) peerToken = tokenFromMetadata(peer.metadata).token;
      else ctx.log.debug("registry call without a gRPC peer: no caller token");
    } catch (err) {
      ctx.log.warn({ err: (err as Error).message }, "no usable token from the registry caller");
    }
    let own: string;
    try {
      own = (await tokenGenerator(peerCertificateOf(ctx))).token;
    } catch (err) {
      throw internal(`failed to generate a token: ${(err as Error).message}`, { cause: err });
    }
    const ownId = tokenSubject(own);
    if (!ownId) throw internal("the generated token has no subject");
    const callerIndex = advanceRegistryPath(path, peerToken, own);
    const rec = kind.cloneRecord(record) as T["record"] & { pathIds: string[] };
    setId(rec.pathIds, path.index - 1, tokenSubject(peerToken) ?? "");
    setId(rec.pathIds, path.index, ownId);
    try {
      return await call(rec, ctx);
    } finally {
      path.index = callerIndex;
    }
  };
  return {
    name: "updatepath",
    register: (rec, ctx, next) => around(rec, ctx, (r, c) => next.register(r, c)),
    find: (query, ctx, next) => next.find(query, ctx),
    unregister: (rec, ctx, next) => around(rec, ctx, (r, c) => next.unregister(r, c)),
  };
}
