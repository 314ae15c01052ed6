// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm vl3-lb`: a load balancer inside a vL3 network (stands in for upstream cmd-lb-vl3-vpp). It
 * is a client of the vL3 service (as `nsm nsc`, NSM_NETWORK_SERVICES) and spreads what reaches
 * its vL3 address on NSM_PORT over the vL3 clients whose connection labels contain NSM_SELECTOR,
 * at NSM_TARGET_PORT (../kernel/networkservice/vl3lb, ../sdk/networkservice/common/vl3lb). Its
 * DNS name is the vL3 endpoint's name for it (upstream sets POD_NAME to the service's name).
 * Env (upstream names): NSM_NAME (cmd-lb-vl3-vpp), NSM_CONNECT_TO, NSM_NETWORK_SERVICES
 * (required), NSM_SELECTOR (labels, `k:v,…`), NSM_PROTOCOL (TCP or UDP), NSM_PORT (required),
 * NSM_TARGET_PORT (NSM_PORT), NSM_REQUEST_TIMEOUT, POD_NAME, NODE_NAME, NSM_LOG_LEVEL; security as
 * ./security.ts. Backends are the selected clients on the balancer's node (see the sdk module).
 * A malformed setting stops it at start with one line naming the variable.
 */
import type { Connection } from "../api/index.js";
import { createNetlinkKernel } from "../kernel/index.js";
import { prepareVl3Netns } from "../kernel/networkservice/vl3/index.js";
import { installLb, type LbConfig, removeLb } from "../kernel/networkservice/vl3lb/index.js";
import type { NetworkServiceElement } from "../sdk/core/chain.js";
import type { Logger } from "../sdk/core/logger.js";
import { closeChannel, dialChannel } from "../sdk/grpc/dial.js";
import { watchBackends } from "../sdk/networkservice/common/vl3lb/index.js";
import { parseLabels } from "../sdk/tools/labels.js";
import { parseNsUrl } from "../sdk/tools/nsurl.js";
import { ConfigError, Env } from "./env.js";
import { runClient } from "./nsc.js";
import { connectToOf } from "./nse-serve.js";
import { type RoleSecurity, roleSecurity } from "./security.js";
import { roleLogger } from "./serve.js";

interface LbSettings {
  readonly name: string;
  readonly service: string;
  readonly selector: Record<string, string>;
  readonly protocol: "tcp" | "udp";
  readonly port: number;
  readonly targetPort: number;
}

/** The balancer's settings (ConfigError naming the variable when one is wrong). */
export function lbSettings(env: Env): LbSettings {
  const name = env.string("NSM_NAME", "cmd-lb-vl3-vpp");
  const urls = env.list("NSM_NETWORK_SERVICES").map((u) => env.parsed("NSM_NETWORK_SERVICES", u, parseNsUrl));
  if (urls.length === 0) throw new ConfigError("NSM_NETWORK_SERVICES", "", "needs the vL3 service's NSURL");
  const protocol = env.string("NSM_PROTOCOL", "TCP").toLowerCase();
  if (protocol !== "tcp" && protocol !== "udp")
    throw new ConfigError("NSM_PROTOCOL", env.string("NSM_PROTOCOL", ""), "expected TCP or UDP");
  if (!env.raw("NSM_PORT")) throw new ConfigError("NSM_PORT", "", "is required (the balancer's port)");
  const port = env.int("NSM_PORT", 0, 1, 65535);
  return {
    name,
    service: urls[0]!.networkService,
    selector: env.parsed("NSM_SELECTOR", "", parseLabels),
    protocol,
    port,
    targetPort: env.int("NSM_TARGET_PORT", port, 1, 65535),
  };
}

/** Keeps the NAT rules in step with the VIP (from the connection) and the backends. */
function balancer(s: LbSettings, sec: RoleSecurity, connectTo: string, log: Logger) {
  const lifetime = new AbortController();
  let vip: string | undefined;
  let backends: string[] = [];
  let applied = Promise.resolve();
  const apply = () => {
    if (!vip) return;
    const config: LbConfig = { vip, protocol: s.protocol, port: s.port, targetPort: s.targetPort, backends };
    applied = applied
      .then(() => installLb(config))
      .then(() => log.info({ vip, port: s.port, backends }, "load balancer rules installed"))
      .catch((err) => log.error({ err: String(err) }, "load balancer rules not installed"));
  };
  const channel = dialChannel(connectTo, sec.dialOptions());
  let started = false;
  const element: NetworkServiceElement = {
    name: "vl3lb",
    async request(req, ctx, next) {
      const conn: Connection = await next.request(req, ctx);
      const ip = conn.context?.ipContext?.srcIpAddrs[0]?.split("/")[0];
      if (ip && ip !== vip) {
        vip = ip;
        apply();
      }
      if (!started) {
        started = true;
        await prepareVl3Netns(createNetlinkKernel());
        const ownIds = new Set([conn.id, `${s.name}-0`]);
        const onChange = (b: string[]) => {
          backends = b;
          apply();
        };
        void watchBackends({
          channel,
          service: s.service,
          selector: s.selector,
          ownIds,
          onChange,
          signal: lifetime.signal,
          log,
        });
      }
      return conn;
    },
    close: (conn, ctx, next) => next.close(conn, ctx),
  };
  const stop = async () => {
    lifetime.abort();
    closeChannel(channel);
    await applied;
    await removeLb().catch((err) => log.warn({ err: String(err) }, "load balancer rules not removed"));
  };
  return { element, stop };
}

/** `nsm vl3-lb`: connects, balances, and stops on SIGTERM/SIGINT. */
export async function runVl3Lb(vars: NodeJS.ProcessEnv = process.env): Promise<number> {
  const env = new Env(vars);
  const s = lbSettings(env);
  const connectTo = connectToOf(env);
  const log = roleLogger(env, s.name);
  const sec = await roleSecurity(env, log);
  const lb = balancer(s, sec, connectTo, log);
  try {
    return await runClient({ ...vars, NSM_NAME: s.name }, { additional: [lb.element] });
  } finally {
    await lb.stop();
    sec.close();
  }
}
