// SPDX-License-Identifier: Apache-2.0
/**
 * Serving on NSM URLs: bind a grpc-js server on `unix:///path` and `tcp://host:port` URLs, and
 * stop it with a grace period. Credentials come from the caller (the security layer's mTLS, or
 * plaintext in its explicit insecure mode), so this module holds no policy.
 */
import { chmodSync, mkdirSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { parseNsmUrl } from "./dial.js";
import { bindFdUnix, type FdServerBinding } from "./fdtransport.js";
import { endOpenStreams } from "./service.js";

/** Options of {@link bindUrls}. */
export interface BindOptions {
  /**
   * Serve `unix://` URLs with file-descriptor passing (upstream NSM's grpcfd: see
   * fdtransport.ts); stop such a server with {@link shutdown}, which also closes those sockets.
   * @default false
   */
  readonly passFds?: boolean;
}

const fdBindings = new WeakMap<grpc.Server, FdServerBinding[]>();

/**
 * Binds `server` on every URL and returns the bound URLs (a `tcp://host:0` URL comes back with
 * its port). Unix sockets: the directory is created, a stale socket file removed, mode 0777.
 */
export async function bindUrls(
  server: grpc.Server,
  urls: readonly string[],
  credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure(),
  options: BindOptions = {},
): Promise<string[]> {
  const bound: string[] = [];
  for (const url of urls) {
    const u = parseNsmUrl(url);
    if (u.scheme === "unix" && options.passFds) {
      const b = bindFdUnix(server, u.address, credentials);
      fdBindings.set(server, [...(fdBindings.get(server) ?? []), b]);
      bound.push(url);
      continue;
    }
    if (u.scheme === "unix") {
      mkdirSync(dirname(u.address), { recursive: true });
      rmSync(u.address, { force: true });
    }
    const target = u.scheme === "unix" ? `unix://${u.address}` : u.address;
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(target, credentials, (err, p) => (err ? reject(err) : resolve(p))),
    );
    if (u.scheme === "unix") chmodSync(u.address, 0o777);
    bound.push(u.scheme === "unix" ? url : `tcp://${u.host}:${port}`);
  }
  return bound;
}

/**
 * Stops a server: its open streams end at once (see {@link endOpenStreams}), unary calls in
 * flight may finish for up to `graceMs`.
 */
export function shutdown(server: grpc.Server, graceMs = 1000): Promise<void> {
  endOpenStreams(server);
  for (const b of fdBindings.get(server) ?? []) b.close();
  fdBindings.delete(server);
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(t);
      resolve();
    });
  });
}
