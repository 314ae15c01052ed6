// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm registry`: the cluster registry with the memory backend (upstream cmd-registry-memory).
 * Env: NSM_LISTEN_ON (default unix:///listen.on.socket), NSM_EXPIRE (NSE lifetime, 1m),
 * NSM_LOG_LEVEL; security (./security.ts): SPIFFE_ENDPOINT_SOCKET, NSM_MAX_TOKEN_LIFETIME,
 * NSM_REGISTRY_SERVER_POLICIES (common + registry + server), NSM_INSECURE.
 */
import * as grpc from "@grpc/grpc-js";
import { serveRegistry } from "../sdk/grpc/registry.js";
import { memoryRegistry } from "../sdk/registry/chains/memory/index.js";
import { Env } from "./env.js";
import { roleSecurity } from "./security.js";
import { listen, listenUrls, roleLogger, shutdown, untilSignal } from "./serve.js";

export async function runRegistry(vars: NodeJS.ProcessEnv = process.env): Promise<number> {
  const env = new Env(vars);
  const listenOn = listenUrls(env, "NSM_LISTEN_ON", "unix:///listen.on.socket");
  const expirationMs = env.duration("NSM_EXPIRE", "1m");
  const log = roleLogger(env, "registry");
  const sec = await roleSecurity(env, log);
  const security = sec.registryServer(await sec.policies("registryServer"));
  const lifetime = new AbortController();
  const server = new grpc.Server();
  serveRegistry(server, memoryRegistry({ expirationMs, signal: lifetime.signal, security }), { log });
  const urls = await listen(server, listenOn, sec, log);
  log.info({ urls, expirationMs }, "registry serving");
  await untilSignal();
  lifetime.abort();
  await shutdown(server);
  sec.close();
  log.info("registry stopped");
  return 0;
}
