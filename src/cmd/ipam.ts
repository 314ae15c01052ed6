// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm ipam`: the vL3 IPAM service (upstream cmd-ipam-vl3): hands each vL3 endpoint a block of
 * the vL3 network over `ipam.IPAM/ManagePrefixes` (see ../sdk/ipam/vl3ipam).
 * Env (upstream names and defaults): NSM_LISTEN_ON (unix:///listen.on.socket; comma-separated),
 * NSM_PREFIX (169.254.0.0/16: the whole vL3 network), NSM_CLIENT_PREFIX_LEN (24: the length of
 * each endpoint's block), NSM_LOG_LEVEL; security as ./security.ts (mTLS, any SPIFFE peer of the
 * trust domain, as upstream's AuthorizeAny).
 * A malformed prefix or a block length that does not fit it stops the process at start with one
 * line naming the variable.
 */
import * as grpc from "@grpc/grpc-js";
import { serveVl3Ipam } from "../sdk/ipam/vl3ipam/index.js";
import { PrefixPool } from "../sdk/ipam/vl3ipam/pool.js";
import { ConfigError, Env } from "./env.js";
import { roleSecurity } from "./security.js";
import { listen, listenUrls, roleLogger, shutdown, untilSignal } from "./serve.js";

/** The pool settings from the environment (ConfigError naming the variable when one is wrong). */
export function ipamConfig(env: Env): { prefix: string; clientPrefixLength: number } {
  const prefix = env.parsed("NSM_PREFIX", "169.254.0.0/16", (v) => new PrefixPool(v, 32).network.text);
  const raw = env.string("NSM_CLIENT_PREFIX_LEN", "24");
  const clientPrefixLength = Number(raw);
  try {
    new PrefixPool(prefix, clientPrefixLength);
  } catch (err) {
    throw new ConfigError("NSM_CLIENT_PREFIX_LEN", raw, (err as Error).message.replace(/^\[\w+\] /, ""));
  }
  return { prefix, clientPrefixLength };
}

/** `nsm ipam`: serves until SIGTERM/SIGINT. */
export async function runIpam(vars: NodeJS.ProcessEnv = process.env): Promise<number> {
  const env = new Env(vars);
  const listenOn = listenUrls(env, "NSM_LISTEN_ON", "unix:///listen.on.socket");
  const cfg = ipamConfig(env);
  const log = roleLogger(env, "vl3-ipam");
  const sec = await roleSecurity(env, log);
  const server = new grpc.Server();
  serveVl3Ipam(server, { ...cfg, log });
  const urls = await listen(server, listenOn, sec, log);
  log.info({ urls, ...cfg }, "vL3 IPAM serving");
  await untilSignal();
  await shutdown(server);
  sec.close();
  log.info("vL3 IPAM stopped");
  return 0;
}
