// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm nse vl3`: a vL3 endpoint (stands in for upstream cmd-nse-vl3-vpp). It takes a block of
 * the vL3 network from the IPAM service (`nsm ipam`) at NSM_PREFIX_SERVER_URL, gives its clients
 * addresses of the block and routes to the whole vL3 network through itself, and connects to
 * the other vL3 endpoints of its service as their client, so that clients of different
 * endpoints (and nodes) reach one another (see ../sdk/networkservice/common/vl3).
 * Env (upstream names): NSM_NAME (vL3-server), NSM_CONNECT_TO
 * (unix:///var/lib/networkservicemesh/nsm.io.sock), NSM_SERVICE_NAMES (vL3; the first is the
 * one peers request), NSM_LABELS, NSM_REQUEST_LABELS (labels of the peer requests),
 * NSM_REGISTER_SERVICE (true; payload IP), NSM_UNREGISTER_ITSELF (true), NSM_PREFIX_SERVER_URL
 * (vl3-ipam:5006; `host:port`, tcp:// or unix://), NSM_REQUEST_TIMEOUT (15s), NSM_EXPIRE (1m),
 * NSM_DNS_TEMPLATES (`{{ index .Labels "podName" }}.{{ .NetworkService }}.`: the names of its
 * clients, answered by its DNS server on port 53 of its vL3 address, which asks the peers for
 * the others' clients), NSM_LOG_LEVEL; security as ./security.ts.
 * The endpoint's netns routes between its clients and peers (../kernel/networkservice/vl3).
 * It registers only once the IPAM answered. A malformed setting, or a block from the IPAM that
 * is not a prefix with room for clients, stops it at start with one line naming the variable.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { NetworkServiceEndpointSchema, NetworkServiceSchema } from "../api/gen/registry_pb.js";
import { type Connection, Payload } from "../api/index.js";
import { createNetlinkKernel } from "../kernel/index.js";
import { prepareVl3Netns } from "../kernel/networkservice/vl3/index.js";
import type { NetworkServiceElement } from "../sdk/core/chain.js";
import { CallContext } from "../sdk/core/context.js";
import { NsmError } from "../sdk/core/errors.js";
import type { Logger } from "../sdk/core/logger.js";
import { closeChannel, dialChannel, parseNsmUrl } from "../sdk/grpc/dial.js";
import { type Registries, registryClients } from "../sdk/grpc/registry.js";
import { watchPrefix } from "../sdk/ipam/vl3ipam/index.js";
import { createClient } from "../sdk/networkservice/chains/client/index.js";
import { createEndpoint } from "../sdk/networkservice/chains/endpoint/index.js";
import { healClient } from "../sdk/networkservice/common/heal/index.js";
import { kernelMechanismClient, kernelMechanismServer } from "../sdk/networkservice/common/kernelmechanism/index.js";
import { mechanismsClient, mechanismsServer } from "../sdk/networkservice/common/mechanisms/index.js";
import { refreshClient } from "../sdk/networkservice/common/refresh/index.js";
import { sendFdClient, sendFdServer } from "../sdk/networkservice/common/sendfd/index.js";
import { Vl3Network, type Vl3Peers, vl3Client, vl3Peers, vl3Server } from "../sdk/networkservice/common/vl3/index.js";
import {
  type DnsTemplate,
  parseDnsTemplate,
  serveVl3Dns,
  Vl3DnsRecords,
  vl3DnsServer,
} from "../sdk/networkservice/common/vl3dns/index.js";
import { registryClient } from "../sdk/registry/chains/client/index.js";
import { parseLabels } from "../sdk/tools/labels.js";
import { ConfigError, Env } from "./env.js";
import { connectToOf, type EndpointRole } from "./nse-serve.js";
import { type RoleSecurity, roleSecurity } from "./security.js";
import { listen, roleLogger, shutdown, untilSignal } from "./serve.js";

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

/** A served and registered endpoint: its registry (through nsmgr) and how to stop it. */
interface Served {
  readonly registry: Registries;
  stop(unregister: boolean): Promise<void>;
}

/**
 * Serves `additional` behind the standard endpoint chain on a unix socket in a temp dir and
 * registers it (and its services, when asked) through nsmgr. As ./nse-serve.ts, but it hands
 * back the registry (the peers watch it) and can unregister on stop (upstream's
 * NSM_UNREGISTER_ITSELF, true for vL3: a peer that left is closed at once, not at expiry).
 */
async function serveEndpoint(role: EndpointRole, additional: NetworkServiceElement[]): Promise<Served> {
  const { name, sec, log } = role;
  const monitorPolicies = await sec.policies("monitor");
  const endpoint = createEndpoint({
    name,
    log,
    ...sec.endpoint(await sec.policies("server")),
    monitorService: (service) => sec.monitor(service, monitorPolicies),
    additional: [sendFdServer(), ...additional],
  });
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  const server = new grpc.Server();
  endpoint.register(server);
  const [url] = await listen(server, [`unix://${dir}/listen.on`], sec, log);
  const lifetime = new AbortController();
  const channel = dialChannel(role.connectTo, sec.dialOptions());
  const registry = registryClients(channel);
  const registration = registryClient({
    registry,
    signal: lifetime.signal,
    security: sec.registryClient(await sec.policies("registryClient")),
  });
  const ctx = () => CallContext.create({ deadline: Date.now() + 15_000, log });
  if (role.registerServices)
    for (const svc of role.services)
      await registration.ns.register(create(NetworkServiceSchema, { name: svc, payload: Payload.IP }), ctx());
  const record = create(NetworkServiceEndpointSchema, {
    name,
    networkServiceNames: [...role.services],
    networkServiceLabels: Object.fromEntries(role.services.map((s) => [s, { labels: { ...role.labels } }])),
    url,
    expirationTime: { seconds: BigInt(Math.floor((Date.now() + role.expirationMs) / 1000)), nanos: 0 },
  });
  await registration.nse.register(record, ctx());
  log.info({ url, services: role.services, labels: role.labels }, "endpoint serving and registered");
  return {
    registry,
    async stop(unregister) {
      lifetime.abort();
      if (unregister)
        await registration.nse
          .unregister(record, ctx())
          .catch((err) => log.warn({ err: String(err) }, "could not unregister"));
      endpoint.dispose();
      await shutdown(server);
      closeChannel(channel);
      rmSync(dir, { recursive: true, force: true });
    },
  };
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
