// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm nsc` (sidecar) and `nsm nsc --init` (upstream cmd-nsc / cmd-nsc-init).
 * Env: NSM_NAME (nsc), NSM_CONNECT_TO (unix:///var/lib/networkservicemesh/nsm.io.sock),
 * NSM_NETWORK_SERVICES (required: NSURLs such as kernel://kernel2kernel/nsm-1), NSM_DIAL_TIMEOUT
 * (5s), NSM_REQUEST_TIMEOUT (15s), NSM_LIVENESS_CHECK_ENABLED (true), NSM_LIVENESS_CHECK_INTERVAL
 * (200ms), NSM_LIVENESS_CHECK_TIMEOUT (1s), NODE_NAME, POD_NAME, CLUSTER_NAME, NSM_LOG_LEVEL; security
 * (./security.ts): SPIFFE_ENDPOINT_SOCKET, NSM_MAX_TOKEN_LIFETIME (10m; the opa example sets -1m,
 * and nsmgr refuses the expired tokens), NSM_CLIENT_POLICIES, NSM_INSECURE; local DNS (./nsc-dns.ts, the
 * sidecar only): NSM_LOCAL_DNS_SERVER_ENABLED (true), NSM_LOCAL_DNS_SERVER_ADDRESS (127.0.0.1:53),
 * NSM_RESOLV_CONF.
 * Several NSURLs (comma-separated) give several connections, one interface each; the
 * excludedprefixes client keeps their addresses apart (upstream cmd-nsc's chain), except between
 * the NSURLs of one group of NSM_AWARENESS_GROUPS (`[nsurl,nsurl],[nsurl]`; their endpoints know
 * of each other and may hand out overlapping addresses).
 *
 * Connection ids are `<NSM_NAME>-<i>`. The sidecar first looks for a connection with its id at
 * nsmgr (made by `--init`) and adopts it, so the hand-over does not build a second path; it
 * requests until it succeeds, keeps the connections (refresh at 0.2 of the token lifetime; heal:
 * a broken control plane with a live data plane is re-requested on the same path, a dead data
 * plane (the liveness check, an ICMP echo through the addon, fails) is reselected), and closes
 * them on SIGTERM. `--init` requests every service once and exits 0, or exits 1 with the gRPC
 * status.
 * The client runs inside its pod's network namespace and names it by pid in the KERNEL mechanism.
 */

import {
  type Connection,
  ConnectionSchema,
  clone,
  create,
  MonitorConnection,
  MonitorScopeSelectorSchema,
  NetworkServiceRequestSchema,
  Param,
} from "../api/index.js";
import { icmpLivenessCheck } from "../kernel/icmp.js";
import {
  bind,
  chain,
  type NetworkServiceClient,
  type NetworkServiceElement,
  type NetworkServiceHandler,
} from "../sdk/core/chain.js";
import { CallContext, sleep } from "../sdk/core/context.js";
import { NsmError } from "../sdk/core/errors.js";
import type { Logger } from "../sdk/core/logger.js";
import { closeChannel, type DialOptions, dialChannel, parseNsmUrl } from "../sdk/grpc/dial.js";
import { grpcClient } from "../sdk/grpc/service.js";
import { createClient } from "../sdk/networkservice/chains/client/index.js";
import { type AwarenessGroups, parseAwarenessGroups } from "../sdk/networkservice/common/awarenessgroups/index.js";
import { clientInfoClient } from "../sdk/networkservice/common/clientinfo/index.js";
import { connLogServer } from "../sdk/networkservice/common/connlog/index.js";
import { excludedPrefixesClient } from "../sdk/networkservice/common/excludedprefixes/index.js";
import { type HealClientOptions, healClient } from "../sdk/networkservice/common/heal/index.js";
import { kernelMechanismClient } from "../sdk/networkservice/common/kernelmechanism/index.js";
import { mechanismsClient } from "../sdk/networkservice/common/mechanisms/index.js";
import { refreshClient } from "../sdk/networkservice/common/refresh/index.js";
import { sendFdClient } from "../sdk/networkservice/common/sendfd/index.js";
import { type NsUrl, nsUrlMechanism, parseNsUrl } from "../sdk/tools/nsurl.js";
import { ConfigError, Env } from "./env.js";
import { startLocalDns } from "./nsc-dns.js";
import { roleObservability } from "./observe.js";
import { type RoleSecurity, roleSecurity } from "./security.js";
import { roleLogger, startupMilestones, untilSignal } from "./serve.js";

interface Wanted {
  id: string;
  url: NsUrl;
  client: NetworkServiceHandler;
  conn?: Connection;
}

/** The connection nsmgr already has for `id` (made by nsc --init), as this client's view. */
async function adoptable(
  connectTo: string,
  dial: DialOptions,
  id: string,
  url: NsUrl,
  log: Logger,
): Promise<Connection | undefined> {
  const channel = dialChannel(connectTo, dial);
  const ctx = CallContext.create().withCancel({ timeoutMs: 2000 });
  try {
    const stream = grpcClient(MonitorConnection, channel).monitorConnections(
      create(MonitorScopeSelectorSchema, { pathSegments: [{ id }] }),
      ctx,
    );
    for await (const event of stream) {
      for (const c of Object.values(event.connections)) {
        // Pods of other namespaces may have the same name, hence the same id: the service must
        // be ours too.
        if (
          c.path?.index === 1 &&
          c.path.pathSegments[0]?.id === id &&
          c.networkService === url.networkService &&
          c.mechanism?.type === url.mechanismType
        ) {
          const mine = clone(ConnectionSchema, c);
          mine.path!.index = 0;
          mine.id = id;
          // The netns was named by --init's pid, which is gone: name it by ours (the same
          // namespace; the forwarder recognises it by identity and keeps the interface).
          if (mine.mechanism) mine.mechanism.parameters[Param.INODE_URL] = `file:///proc/${process.pid}/ns/net`;
          return mine;
        }
      }
      break;
    }
  } catch (err) {
    log.debug({ id, err: String(err) }, "no connection to adopt");
  } finally {
    closeChannel(channel);
  }
  return undefined;
}

/** `NSM_AWARENESS_GROUPS` (`[nsurl,nsurl],[nsurl]`; none when unset); a ConfigError naming a bad value. */
export function awarenessGroupsOf(env: Env): AwarenessGroups {
  return env.parsed("NSM_AWARENESS_GROUPS", "", parseAwarenessGroups);
}

/**
 * `NSM_NETWORK_SERVICES`: comma-separated NSURLs, one connection (and interface) each; a bad one
 * is a ConfigError naming it.
 */
export function networkServices(env: Env): NsUrl[] {
  const raw = env.required("NSM_NETWORK_SERVICES");
  const urls = env.list("NSM_NETWORK_SERVICES").map((u) => {
    try {
      return parseNsUrl(u);
    } catch (err) {
      throw new ConfigError("NSM_NETWORK_SERVICES", u, (err as Error).message.replace(/^\[\w+\] /, ""));
    }
  });
  if (urls.length === 0) throw new ConfigError("NSM_NETWORK_SERVICES", raw, "needs at least one NSURL");
  return urls;
}

/** What a custom client adds to the reference client. */
export interface RunClientOptions {
  /**
   * Client elements run for every Request and Close of every connection, before the KERNEL
   * mechanism is chosen; after `next.request()` they see the connection the endpoint returned.
   * @default none
   */
  readonly additional?: readonly NetworkServiceClient[];
  /** Request every service once and return (as `nsm nsc --init`) instead of keeping them. @default false */
  readonly init?: boolean;
}

/**
 * Runs a client configured as upstream's cmd-nsc (the env above, read from `vars`) with
 * `options.additional` elements in its chains: requests every NSURL of NSM_NETWORK_SERVICES,
 * keeps the connections (refresh, heal) and closes them on SIGTERM/SIGINT. Resolves to the
 * process exit code.
 */
export function runClient(vars: NodeJS.ProcessEnv, options: RunClientOptions = {}): Promise<number> {
  return runNsc(options.init ? ["--init"] : [], vars, options);
}

/** `nsm nsc [--init]`. */
export async function runNsc(
  args: string[],
  vars: NodeJS.ProcessEnv = process.env,
  options: RunClientOptions = {},
): Promise<number> {
  const init = args.includes("--init");
  const env = new Env(vars);
  const name = env.string("NSM_NAME", init ? "cmd-nsc-init" : "nsc");
  const connectTo = env.parsed("NSM_CONNECT_TO", "unix:///var/lib/networkservicemesh/nsm.io.sock", (v) => {
    parseNsmUrl(v);
    return v;
  });
  const urls = networkServices(env);
  const awarenessGroups = awarenessGroupsOf(env);
  const dialTimeoutMs = env.duration("NSM_DIAL_TIMEOUT", "5s");
  const requestTimeoutMs = env.duration("NSM_REQUEST_TIMEOUT", "15s");
  const liveness: LivenessConfig = {
    enabled: env.bool("NSM_LIVENESS_CHECK_ENABLED", true),
    intervalMs: positive(env, "NSM_LIVENESS_CHECK_INTERVAL", "200ms"),
    timeoutMs: positive(env, "NSM_LIVENESS_CHECK_TIMEOUT", "1s"),
  };
  const log = roleLogger(env, name);
  const obs = await roleObservability(env, "nsc", name, log);
  const sec = await roleSecurity(env, log);
  const clientInfo = { nodeName: vars.NODE_NAME, podName: vars.POD_NAME, clusterName: vars.CLUSTER_NAME };
  const dns = init ? undefined : await startLocalDns(env, log);

  try {
    return await connectAll({
      init,
      name,
      connectTo,
      urls,
      dialTimeoutMs,
      requestTimeoutMs,
      liveness,
      clientInfo,
      additional: options.additional ?? [],
      // One instance for all the client's connections (their addresses stay apart).
      connections: [...(dns ? [dns.element] : []), excludedPrefixesClient({ awarenessGroups })],
      sec,
      observe: obs.element,
      healed: obs.metrics?.observer.healed,
      log,
    });
  } finally {
    await dns?.close();
    sec.close();
    await obs.close();
  }
}

interface LivenessConfig {
  readonly enabled: boolean;
  readonly intervalMs: number;
  readonly timeoutMs: number;
}

function positive(env: Env, name: string, def: string): number {
  const ms = env.duration(name, def);
  if (ms <= 0) throw new ConfigError(name, env.string(name, def), "must be a positive duration");
  return ms;
}

interface NscConfig {
  readonly init: boolean;
  readonly name: string;
  readonly connectTo: string;
  readonly urls: readonly NsUrl[];
  readonly dialTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly liveness: LivenessConfig;
  readonly clientInfo: Parameters<typeof clientInfoClient>[0];
  readonly additional: readonly NetworkServiceClient[];
  /** Elements shared by the chains of all connections (dnscontext, excludedprefixes), after sendfd. */
  readonly connections: readonly NetworkServiceElement[];
  readonly sec: RoleSecurity;
  /** The metrics element, in front of each client chain. */
  readonly observe?: NetworkServiceElement;
  /** Counts successful heals (metrics). */
  readonly healed?: (how: "re-request" | "reselect") => void;
  readonly log: Logger;
}

/** Requests every service (again until it works, unless init), then keeps them until a signal. */
async function connectAll(cfg: NscConfig): Promise<number> {
  const stopped = new AbortController();
  const wanted = await wantedConnections(cfg, stopped.signal);
  // Only the sidecar waits for a signal (which also keeps it alive); init exits when done.
  const stop = cfg.init ? Promise.resolve() : untilSignal().then(() => stopped.abort());
  for (const w of wanted) {
    const exitCode = await requestUntilDone(cfg, w, stopped.signal);
    if (exitCode !== undefined) {
      // What did connect is not left behind (a retried init would find its addresses taken).
      await closeAll(cfg, wanted);
      return exitCode;
    }
  }
  if (cfg.init) return 0;
  await stop;
  await closeAll(cfg, wanted);
  return 0;
}

/** One client chain per NSM URL; the sidecar's (not init's) refresh and heal until `stopped`. */
async function wantedConnections(cfg: NscConfig, stopped: AbortSignal): Promise<Wanted[]> {
  const { name, urls, liveness, sec, log } = cfg;
  const authorize = sec.clientAuthorize(await sec.policies("client"));
  const heal: HealClientOptions = {
    signal: stopped,
    // ICMP echoes through the addon from this process's netns (the pod's): no process per check.
    livenessCheck: liveness.enabled ? icmpLivenessCheck({ timeoutMs: liveness.timeoutMs, log }) : undefined,
    livenessCheckIntervalMs: liveness.intervalMs,
    livenessCheckTimeoutMs: liveness.timeoutMs,
    onHealed: cfg.healed && ((_conn, how) => cfg.healed?.(how)),
  };
  // Metrics (when on) and the connection id on every log line, in front of each client chain.
  const top = chain(...(cfg.observe ? [cfg.observe] : []), connLogServer());
  return urls.map((url, i) => ({
    id: `${name}-${i}`,
    url,
    client: observed(top, clientChain(cfg, url, stopped, authorize, heal)),
  }));
}

/** Binds `top` (metrics, connection logging) in front of a client chain. */
function observed(top: NetworkServiceElement, client: NetworkServiceHandler): NetworkServiceHandler {
  return bind(top, client);
}

/** The client chain of one NSM URL. */
function clientChain(
  cfg: NscConfig,
  url: NsUrl,
  stopped: AbortSignal,
  authorize: ReturnType<RoleSecurity["clientAuthorize"]>,
  heal: HealClientOptions,
): NetworkServiceHandler {
  const { init, name, connectTo, dialTimeoutMs, clientInfo, sec } = cfg;
  return createClient({
    name,
    connectTo,
    dialTimeoutMs,
    ...sec.dialOptions(),
    authorize,
    // The sidecar keeps its connections alive; init hands them over before the tokens expire.
    refresh: init ? undefined : refreshClient({ signal: stopped }),
    heal: init ? undefined : healClient(heal),
    additional: [
      clientInfoClient(clientInfo),
      ...cfg.additional,
      mechanismsClient({
        KERNEL: kernelMechanismClient({
          inodeUrl: `file:///proc/${process.pid}/ns/net`,
          interfaceName: url.interfaceName,
        }),
      }),
      // Our netns goes to nsmgr as a descriptor (upstream's grpcfd).
      sendFdClient(),
      ...cfg.connections,
    ],
  });
}

async function requestOnce(cfg: NscConfig, w: Wanted): Promise<Connection> {
  const { init, connectTo, requestTimeoutMs, sec, log } = cfg;
  const connection =
    w.conn ??
    (init ? undefined : await adoptable(connectTo, sec.dialOptions(), w.id, w.url, log)) ??
    create(ConnectionSchema, { id: w.id, networkService: w.url.networkService, labels: { ...w.url.labels } });
  const req = create(NetworkServiceRequestSchema, { connection, mechanismPreferences: [nsUrlMechanism(w.url)] });
  return w.client.request(req, CallContext.create({ deadline: Date.now() + requestTimeoutMs, log }));
}

/**
 * Requests `w` every second until it works (sets `w.conn`, resolves undefined). Resolves with the
 * exit code when giving up: 1 for init at the first failure, 0 when the sidecar is stopped.
 */
async function requestUntilDone(cfg: NscConfig, w: Wanted, stopped: AbortSignal): Promise<number | undefined> {
  const { init, log } = cfg;
  for (let attempt = 1; ; attempt++) {
    try {
      w.conn = await requestOnce(cfg, w);
      const ip = w.conn.context?.ipContext;
      log.info(
        {
          id: w.id,
          service: w.url.networkService,
          endpoint: w.conn.networkServiceEndpointName,
          path: w.conn.path?.pathSegments.map((s) => s.name),
          src: ip?.srcIpAddrs,
          dst: ip?.dstIpAddrs,
          startupMs: startupMilestones("established"),
        },
        "connection established",
      );
      return undefined;
    } catch (err) {
      const e = NsmError.from(err);
      log.error({ id: w.id, attempt, err: e.toStatusString() }, `request failed: ${e.toStatusString()}`);
      if (init) {
        process.stderr.write(`nsc-init: ${w.url.networkService}: ${e.toStatusString()}\n`);
        return 1;
      }
      try {
        await sleep(1000, stopped);
      } catch {
        return 0;
      }
    }
  }
}

async function closeAll(cfg: NscConfig, wanted: readonly Wanted[]): Promise<void> {
  const { requestTimeoutMs, log } = cfg;
  for (const w of wanted) {
    if (!w.conn) continue;
    try {
      await w.client.close(w.conn, CallContext.create({ deadline: Date.now() + requestTimeoutMs, log }));
      log.info({ id: w.id }, "connection closed");
    } catch (err) {
      log.warn({ id: w.id, err: NsmError.from(err).toStatusString() }, "close failed");
    }
  }
}
