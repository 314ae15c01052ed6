// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm registry`: the cluster registry with the memory backend (upstream cmd-registry-memory).
 * Env: NSM_LISTEN_ON (default unix:///listen.on.socket), NSM_EXPIRE (NSE lifetime, 1m),
 * NSM_LOG_LEVEL; security (./security.ts): SPIFFE_ENDPOINT_SOCKET, NSM_MAX_TOKEN_LIFETIME,
 * NSM_REGISTRY_SERVER_POLICIES (common + registry + server), NSM_INSECURE.
 */
import * as grpc from "@grpc/grpc-js";
import { observeRegistry } from "../observe/registry.js";
import { memoryRegistry } from "../sdk/registry/chains/memory/index.js";
import { serveRegistry } from "../sdk/registry/grpc.js";
import { Env } from "./env.js";
import { roleObservability } from "./observe.js";
import { roleSecurity } from "./security.js";
import { listen, listenUrls, roleLogger, shutdown, untilSignal } from "./serve.js";

export async function runRegistry(vars: NodeJS.ProcessEnv = process.env): Promise<number> {
  const env = new Env(vars);
  const listenOn = listenUrls(env, "NSM_LISTEN_ON", "unix:///listen.on.socket");
  const expirationMs = env.duration("NSM_EXPIRE", "1m");
  const log = roleLogger(env, "registry");
  const obs = await roleObservability(env, "registry", "registry", log);
  const sec = await roleSecurity(env, log);
  const security = sec.registryServer(await sec.policies("registryServer"));
  const lifetime = new AbortController();
  const server = new grpc.Server();
  const chains = memoryRegistry({ expirationMs, signal: lifetime.signal, security });
  serveRegistry(server, obs.metrics ? observeRegistry(chains, obs.metrics.registry) : chains, { log });
  const urls = await listen(server, listenOn, sec, log);
  log.info({ urls, expirationMs }, "registry serving");
  await untilSignal();
  lifetime.abort();
  await shutdown(server);
  sec.close();
  await obs.close();
  log.info("registry stopped");
  return 0;
}
