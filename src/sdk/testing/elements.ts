// SPDX-License-Identifier: Apache-2.0
/**
 * Test-only chain elements (upstream `checks/*`, `inject/*`, `count`). Never imported by production code.
 */
import type { Connection, NetworkServiceRequest } from "../../api/index.js";
import type { NetworkServiceElement } from "../core/chain.js";
import type { CallContext } from "../core/context.js";
import type { NsmError } from "../core/errors.js";

/** Runs `check` on every request before passing it on. */
export function checkRequest(check: (req: NetworkServiceRequest, ctx: CallContext) => void): NetworkServiceElement {
  return {
    name: "checkRequest",
    request: (req, ctx, next) => {
      check(req, ctx);
      return next.request(req, ctx);
    },
    close: (conn, ctx, next) => next.close(conn, ctx),
  };
}

/** Runs `check` on every connection returned from downstream. */
export function checkResponse(check: (conn: Connection, ctx: CallContext) => void): NetworkServiceElement {
  return {
    name: "checkResponse",
    request: async (req, ctx, next) => {
      const conn = await next.request(req, ctx);
      check(conn, ctx);
      return conn;
    },
    close: (conn, ctx, next) => next.close(conn, ctx),
  };
}

/** Throws `error()` on requests (and/or closes) for which `when` returns true. */
export function injectError(
  error: () => NsmError,
  when: { request?: (req: NetworkServiceRequest) => boolean; close?: (conn: Connection) => boolean } = {
    request: () => true,
  },
): NetworkServiceElement {
  return {
    name: "injectError",
    request: (req, ctx, next) => (when.request?.(req) ? Promise.reject(error()) : next.request(req, ctx)),
    close: (conn, ctx, next) => (when.close?.(conn) ? Promise.reject(error()) : next.close(conn, ctx)),
  };
}

/** Counts requests and closes that pass through. */
export interface Counter extends NetworkServiceElement {
  readonly requests: number;
  readonly closes: number;
  readonly lastRequest: NetworkServiceRequest | undefined;
}

export function count(): Counter {
  const c = {
    name: "count",
    requests: 0,
    closes: 0,
    lastRequest: undefined as NetworkServiceRequest | undefined,
    request(req: NetworkServiceRequest, ctx: CallContext, next: Parameters<NetworkServiceElement["request"]>[2]) {
      c.requests++;
      c.lastRequest = req;
      return next.request(req, ctx);
    },
    close(conn: Connection, ctx: CallContext, next: Parameters<NetworkServiceElement["close"]>[2]) {
      c.closes++;
      return next.close(conn, ctx);
    },
  };
  return c;
}
