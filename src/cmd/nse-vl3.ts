import { type Connection, Payload } from "../api/index.js";
import { createNetlinkKernel } from "../kernel/index.js";
import { prepareVl3Netns } from "../kernel/networkservice/vl3/index.js";
import { NsmError } from "../sdk/core/errors.js";
import type { Logger } from "../sdk/core/logger.js";
import { closeChannel, dialChannel, parseNsmUrl } from "../sdk/grpc/dial.js";
import { watchPrefix } from "../sdk/ipam/vl3ipam/index.js";
import { createClient } from "../sdk/networkservice/chains/client/index.js";
import { healClient } from "../sdk/networkservice/common/heal/index.js";
import { kernelMechanismClient, kernelMechanismServer } from "../sdk/networkservice/common/kernelmechanism/index.js";
import { mechanismsClient, mechanismsServer } from "../sdk/networkservice/common/mechanisms/index.js";
import { refreshClient } from "../sdk/networkservice/common/refresh/index.js";
import { sendFdClient } from "../sdk/networkservice/common/sendfd/index.js";
import { Vl3Network, type Vl3Peers, vl3Client, vl3Peers, vl3Server } from "../sdk/networkservice/common/vl3/index.js";
import {
  type DnsTemplate,
  parseDnsTemplate,
  serveVl3Dns,
  Vl3DnsRecords,
  vl3DnsServer,
} from "../sdk/networkservice/common/vl3dns/index.js";
import { parseLabels } from "../sdk/tools/labels.js";
import { ConfigError, Env } from "./env.js";
import { connectToOf, serveEndpoint } from "./nse-serve.js";
import { type RoleSecurity, roleSecurity } from "./security.js";
import { roleLogger, untilSignal } from "./serve.js";

/** The vL3 endpoint's settings. */
export interface Vl3Config {
  readonly name: string;
  readonly connectTo: string;
  readonly services: readonly string[];
  readonly labels: Record<string, string>;
  readonly requestLabels: Record<string, string>;
  readonly registerService: boolean;
  readonly unregisterItself: boolean;
  readonly prefixServerUrl: string;
  readonly requestTimeoutMs: number;
  readonly expirationMs: number;
  readonly dnsTemplates: readonly DnsTemplate[];
}

const DEFAULT_DNS_TEMPLATE = '{{ index .Labels "podName" }}.{{ .NetworkService }}.';

/** `host:port` (upstream's form, a Kubernetes Service) is tcp://host:port; unix:// and tcp:// are checked. */
export function prefixServerUrlOf(text: string): string {
  const url = /^[a-z]+:\/\//.test(text) ? text : `tcp://${text}`;
  parseNsmUrl(url);
  return url;
}

/** The settings from the environment (ConfigError naming the variable when one is wrong). */
export function vl3Config(env: Env): Vl3Config {
  const services = env.list("NSM_SERVICE_NAMES", "vL3");
  if (services.length === 0) throw new ConfigError("NSM_SERVICE_NAMES", "", "needs at least one service name");
  return {
    name: env.string("NSM_NAME", "vL3-server"),
    connectTo: connectToOf(env),
    services,
    labels: env.parsed("NSM_LABELS", "", parseLabels),
    requestLabels: env.parsed("NSM_REQUEST_LABELS", "", parseLabels),
    registerService: env.bool("NSM_REGISTER_SERVICE", true),
    unregisterItself: env.bool("NSM_UNREGISTER_ITSELF", true),
    prefixServerUrl: env.parsed("NSM_PREFIX_SERVER_URL", "vl3-ipam:5006", prefixServerUrlOf),
    requestTimeoutMs: env.duration("NSM_REQUEST_TIMEOUT", "15s"),
    expirationMs: env.duration("NSM_EXPIRE", "1m"),
    dnsTemplates: env.parsed("NSM_DNS_TEMPLATES", DEFAULT_DNS_TEMPLATE, (v) =>
      v
        .split(",")
        .filter((t) => t.trim())
        .map(parseDnsTemplate),
    ),
  };
}

/**
 * Keeps the IPAM stream open; resolves with the first block (a malformed one is a ConfigError),
 * later blocks reset `net`. `signal` ends the stream.
 */
function followPrefix(cfg: Vl3Config, net: Vl3Network, sec: RoleSecurity, log: Logger, signal: AbortSignal) {
  const channel = dialChannel(cfg.prefixServerUrl, sec.dialOptions());
  signal.addEventListener("abort", () => closeChannel(channel), { once: true });
  return new Promise<string>((resolve, reject) => {
    void watchPrefix({
      channel,
      signal,
      onPrefix: (prefix) => {
        try {
          net.reset(prefix);
        } catch (err) {
          const reason = `the IPAM answered a bad prefix: ${NsmError.from(err).rawMessage}`;
          // At start this stops the endpoint; later the endpoint keeps its block.
          log.error({ prefix }, reason);
          return reject(new ConfigError("NSM_PREFIX_SERVER_URL", cfg.prefixServerUrl, reason));
        }
        log.info({ ...net.share }, "vL3 prefix assigned");
        resolve(prefix);
      },
      onError: (err) => log.warn({ url: cfg.prefixServerUrl, err: err.toStatusString() }, "vL3 IPAM stream failed"),
    });
  });
}

/**
 * The client chain of the peer connections: this endpoint's netns, its block announced. Heal
 * never reselects (a peer is one named endpoint): a connection whose peer died is closed and
 * handed to `lost` (the peer is dropped at once, not when its registration expires).
 */
async function peerClient(
  cfg: Vl3Config,
  net: Vl3Network,
  sec: RoleSecurity,
  signal: AbortSignal,
  lost: (conn: Connection) => void,
) {
  const inodeUrl = `file:///proc/${process.pid}/ns/net`;
  return createClient({
    name: cfg.name,
    connectTo: cfg.connectTo,
    ...sec.dialOptions(),
    authorize: sec.clientAuthorize(await sec.policies("client")),
    refresh: refreshClient({ signal }),
    heal: healClient({ signal, reselect: false, onGaveUp: lost }),
    additional: [
      vl3Client(net),
      mechanismsClient({ KERNEL: kernelMechanismClient({ inodeUrl }) }),
      // Our netns goes to nsmgr as a descriptor (upstream's grpcfd), as an NSC's does.
      sendFdClient(),
    ],
  });
}

/** The vL3 addresses of the peers: those that connected here and those this endpoint connected to. */
function peerAddresses(net: Vl3Network, peers: Vl3Peers | undefined): string[] {
  const mine = [...(peers?.connected.values() ?? [])].map((c) => c.context?.ipContext?.dstIpAddrs[0]?.split("/")[0]);
  return [...new Set([...net.peerAddresses, ...mine.filter((a) => a !== undefined)])];
}

/** `nsm nse vl3`: serves, registers through nsmgr, peers, and stops on SIGTERM/SIGINT. */
export async function runVl3(vars: NodeJS.ProcessEnv = process.env): Promise<number> {
  const env = new Env(vars);
  const cfg = vl3Config(env);
  const log = roleLogger(env, cfg.name);
  const sec = await roleSecurity(env, log);
  const lifetime = new AbortController();
  const net = new Vl3Network();
  await followPrefix(cfg, net, sec, log, lifetime.signal);
  // Only now that the settings, the identity and the IPAM's block are good does the netns change.
  const kernel = createNetlinkKernel();
  await prepareVl3Netns(kernel);
  const inodeUrl = `file:///proc/${process.pid}/ns/net`;
  const records = new Vl3DnsRecords();
  let peers: Vl3Peers | undefined;
  const dns = await serveVl3Dns({ records, peers: () => peerAddresses(net, peers), log });
  const served = await serveEndpoint(
    { ...cfg, log, sec, registerServices: cfg.registerService ? Payload.IP : undefined },
    [
      vl3Server(net),
      vl3DnsServer({ net, records, templates: cfg.dnsTemplates }),
      mechanismsServer({ KERNEL: kernelMechanismServer({ inodeUrl }) }),
    ],
  );
  peers = vl3Peers({
    name: cfg.name,
    service: cfg.services[0]!,
    registry: served.registry.nse,
    client: await peerClient(cfg, net, sec, lifetime.signal, (conn) => peers?.lost(conn)),
    labels: cfg.requestLabels,
    requestTimeoutMs: cfg.requestTimeoutMs,
    log,
  });
  // A new block from the IPAM (it lost ours): the peers must route the new one. Clients move at
  // their next refresh.
  const unsubscribe = net.subscribe(() => void peers?.reannounce());
  await untilSignal();
  unsubscribe();
  await peers.stop();
  lifetime.abort();
  await served.stop(cfg.unregisterItself);
  await dns.close();
  await kernel.close();
  sec.close();
  log.info("endpoint stopped");
  return 0;
}
