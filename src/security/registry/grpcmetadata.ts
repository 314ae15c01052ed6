// SPDX-License-Identifier: Apache-2.0
/**
 * grpcmetadata (registry, server and client): moves the registry path over gRPC metadata.
 *
 * Server: for Register and Unregister, reads the request metadata `path` into the context
 * (`registryPathKey`) for the elements after it, and after they succeed returns the path, as they
 * left it, in the response header `path`. A call without the metadata passes through without a
 * path (logged at debug). Find passes through.
 * Client: sends the context's path (an empty one if none) as request metadata `path`; after the
 * call, copies the path from the response header back into the context's path object, so the
 * authorize client sees the tokens the server side added. The response header is read by the call
 * observer (dial with `secureDialOptions`).
 * Chain placement: server first in a registry server chain; client right before the connect
 * element (after the authorize client).
 */

import type { CallContext } from "../../sdk/core/context.js";
import { grpcPeerKey, outgoingMetadataKey } from "../../sdk/grpc/service.js";
import type { RegistryElement } from "../../sdk/registry/core/chain.js";
import type { RegistryTypes } from "../../sdk/registry/core/kind.js";
import { observeCalls } from "../observe.js";
import {
  decodeRegistryPath,
  emptyRegistryPath,
  encodeRegistryPath,
  REGISTRY_PATH_METADATA_KEY,
  type RegistryPath,
  registryPathKey,
} from "./path.js";

/** The path sent by the caller of this registry call, if any. */
function incomingPath(ctx: CallContext): RegistryPath | undefined {
  const peer = ctx.get(grpcPeerKey);
  const values = peer?.metadata.get(REGISTRY_PATH_METADATA_KEY) ?? [];
  if (values.length === 0) return undefined;
  return decodeRegistryPath(String(values[values.length - 1]));
}

/** The server side: request metadata `path` in, response header `path` out. */
export function registryGrpcMetadataServer<T extends RegistryTypes>(): RegistryElement<T> {
  const around = async <R>(ctx: CallContext, call: (ctx: CallContext) => Promise<R>): Promise<R> => {
    let path: RegistryPath | undefined;
    try {
      path = incomingPath(ctx);
    } catch (err) {
      ctx.log.warn({ err: (err as Error).message }, "ignoring a malformed registry path header");
    }
    if (!path) {
      ctx.log.debug("registry call without a path header");
      return call(ctx);
    }
    const out = await call(ctx.with(registryPathKey, path));
    ctx.get(grpcPeerKey)?.responseHeaders.set(REGISTRY_PATH_METADATA_KEY, encodeRegistryPath(path));
    return out;
  };
  return {
    name: "grpcmetadata",
    register: (rec, ctx, next) => around(ctx, (c) => next.register(rec, c)),
    find: (query, ctx, next) => next.find(query, ctx),
    unregister: (rec, ctx, next) => around(ctx, (c) => next.unregister(rec, c)),
  };
}

/** The client side: context path → request metadata `path`; response header `path` → context path. */
export function registryGrpcMetadataClient<T extends RegistryTypes>(): RegistryElement<T> {
  const around = async <R>(ctx: CallContext, call: (ctx: CallContext) => Promise<R>): Promise<R> => {
    const path = ctx.get(registryPathKey) ?? emptyRegistryPath();
    const out = ctx.with(registryPathKey, path).with(outgoingMetadataKey, {
      ...ctx.get(outgoingMetadataKey),
      [REGISTRY_PATH_METADATA_KEY]: encodeRegistryPath(path),
    });
    const { result, observation } = await observeCalls(out, call, { join: true });
    const header = observation.responseHeaders?.get(REGISTRY_PATH_METADATA_KEY) ?? [];
    if (header.length > 0) {
      try {
        const returned = decodeRegistryPath(String(header[header.length - 1]));
        path.index = returned.index;
        path.pathSegments = returned.pathSegments;
      } catch (err) {
        ctx.log.warn({ err: (err as Error).message }, "ignoring a malformed registry path in the response");
      }
    }
    return result;
  };
  return {
    name: "grpcmetadataClient",
    register: (rec, ctx, next) => around(ctx, (c) => next.register(rec, c)),
    find: (query, ctx, next) => next.find(query, ctx),
    unregister: (rec, ctx, next) => around(ctx, (c) => next.unregister(rec, c)),
  };
}
