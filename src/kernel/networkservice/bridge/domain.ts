// SPDX-License-Identifier: Apache-2.0
/**
 * Distributed bridge domain: the bridges of several `nsm nse bridge` endpoints (one per node,
 * all registered for the same service) joined into one L2 segment.
 *
 * How peers find each other: through the registry. Every endpoint of the domain looks up the
 * endpoints registered for its service; the one with the lowest name is the hub, and every other
 * endpoint is a client of the hub: it requests the service with the hub's endpoint name and the
 * label {@link BRIDGE_PEER_LABEL}, through its own nsmgr, like any client (tokens, refresh,
 * heal). Its request carries the hub's own registered labels (e.g. the `nodeName` nsmgr gave
 * it), so a NetworkService whose `matches` send clients to endpoints labelled like them (the
 * usual `nodeName: "{{.nodeName}}"`) also selects the hub for it: nsmgr closes a connection whose
 * endpoint its service no longer selects, even one that names its endpoint. The forwarders build that connection as they build any ETHERNET one: a veth on one
 * node, a VXLAN tunnel between nodes (the remote mechanism). Both ends of it become ports of
 * the endpoints' bridges ({@link bridgePortClient} here, `kernelBridgeServer` on the hub).
 * A star has no loop, so no spanning tree is needed; frames between two non-hub nodes cross the
 * hub. When the hub changes (a lower name registers, the hub's registration expires), an endpoint
 * closes its old link before it dials the new hub, so no loop forms while the star moves.
 *
 * Peer connections carry no address: {@link unlessBridgePeer} keeps the endpoint's IPAM out of
 * them, and the requesting side removes any address from its port.
 * Addresses: every endpoint of the domain serves the same subnet from its own range
 * (subnetipam's range), so no two endpoints hand out one address.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { type Connection, ConnectionSchema, create, NetworkServiceRequestSchema, Payload } from "../../../api/index.js";
import { bind, type NetworkServiceElement, type NetworkServiceHandler } from "../../../sdk/core/chain.js";
import { CallContext } from "../../../sdk/core/context.js";
import { NsmError } from "../../../sdk/core/errors.js";
import { type Logger, silentLogger } from "../../../sdk/core/logger.js";
import { requestConnection } from "../../../sdk/core/request.js";
import { clientChain } from "../../../sdk/networkservice/chains/client/index.js";
import type { DialClientOptions } from "../../../sdk/networkservice/common/dial/index.js";
import { findEndpoints } from "../../../sdk/networkservice/common/discover/registry.js";
import { healClient } from "../../../sdk/networkservice/common/heal/index.js";
import { kernelMechanismClient } from "../../../sdk/networkservice/common/kernelmechanism/index.js";
import { mechanismsClient } from "../../../sdk/networkservice/common/mechanisms/index.js";
import { refreshClient } from "../../../sdk/networkservice/common/refresh/index.js";
import { sendFdClient } from "../../../sdk/networkservice/common/sendfd/index.js";
import type { NseRegistry } from "../../../sdk/registry/api.js";
import { randomString } from "../../../sdk/tools/ifname.js";
import type { KernelApi, NetnsPath } from "../../api.js";
import { attachWhenPresent } from "../passthrough/index.js";

/** The request label that marks a connection from another endpoint of the domain (value: its name). */
export const BRIDGE_PEER_LABEL = "nsm-bridge-peer";

/** First characters of the requesting endpoint's port towards the hub. */
export const PEER_PORT_PREFIX = "bdp-";

const isPeer = (conn: Connection | undefined) => Boolean(conn?.labels[BRIDGE_PEER_LABEL]);

/** Runs `inner` for client connections only; a peer connection passes by it (e.g. the IPAM). */
export function unlessBridgePeer(inner: NetworkServiceElement): NetworkServiceElement {
  return {
    name: `unlessBridgePeer(${inner.name})`,
    requires: inner.requires,
    request: (req, ctx, next) =>
      isPeer(requestConnection(req)) ? next.request(req, ctx) : inner.request(req, ctx, next),
    close: (conn, ctx, next) => (isPeer(conn) ? next.close(conn, ctx) : inner.close(conn, ctx, next)),
  };
}

/**
 * Server element: the connection's MTU is at most `mtu` (the forwarder sizes the client's veth
 * by it), so a client's full-size frame still fits the VXLAN links between nodes once bridged.
 */
export function clientMtuServer(mtu: number): NetworkServiceElement {
  return {
    name: "bridgeClientMtu",
    async request(req, ctx, next) {
      const conn = await next.request(req, ctx);
      if (!conn.context) return conn;
      const now = conn.context.MTU;
      if (now === 0 || now > mtu) conn.context.MTU = mtu;
      return conn;
    },
    close: (conn, ctx, next) => next.close(conn, ctx),
  };
}

/** Where the requesting side's port goes. */
export interface BridgePortOptions {
  readonly kernel: KernelApi;
  readonly netns?: NetnsPath;
  readonly bridge: string;
  /** @default 5000 */
  readonly attachTimeoutMs?: number;
}

/** Client element: once the connection is up, its KERNEL interface (`port`) is a bridge port without addresses. */
export function bridgePortClient(options: BridgePortOptions, port: string): NetworkServiceElement {
  const { kernel, netns, bridge } = options;
  return {
    name: "bridgePort",
    async request(req, ctx, next) {
      const conn = await next.request(req, ctx);
      const attach = {
        kernel,
        netns,
        pollMs: 10,
        deadline: Date.now() + (options.attachTimeoutMs ?? 5000),
        signal: new AbortController().signal,
      };
      if (!(await attachWhenPresent(attach, port, bridge))) throw new NsmError(`bridge ${bridge} is gone`);
      const link = await kernel.findLink(netns, port);
      const addrs = link ? await kernel.listAddresses(netns, { link: link.index }) : [];
      for (const a of addrs) if (!a.cidr.startsWith("fe80:")) await kernel.deleteAddress(netns, port, a.cidr);
      return conn;
    },
    close: (conn, ctx, next) => next.close(conn, ctx),
  };
}

/** Options of {@link BridgeDomainPeers}. */
export interface BridgeDomainOptions extends BridgePortOptions, DialClientOptions {
  /** This endpoint's name (NSM_NAME). */
  readonly name: string;
  /** The service every endpoint of the domain serves. */
  readonly service: string;
  /** This endpoint's nsmgr (NSM_CONNECT_TO). */
  readonly connectTo: string;
  /** This endpoint's netns URL for the KERNEL mechanism. */
  readonly inodeUrl: string;
  /** The registry, through nsmgr. */
  readonly registry: NseRegistry;
  /** How often the registry is looked at. @default 2000 */
  readonly intervalMs?: number;
  /** Slot for the authorize client. */
  readonly authorize?: NetworkServiceElement;
  readonly log?: Logger;
}

interface PeerLink {
  readonly hub: string;
  readonly port: string;
  /** The hub's labels for the service (with the nodeName nsmgr gave it). */
  readonly hubLabels: Readonly<Record<string, string>>;
  readonly client: NetworkServiceHandler;
  readonly stop: AbortController;
  conn?: Connection;
}

/** Keeps this endpoint linked to the domain's hub (see the module doc); `stop()` closes the link. */
export class BridgeDomainPeers {
  readonly #o: BridgeDomainOptions;
  readonly #log: Logger;
  readonly #stopped = new AbortController();
  #link: PeerLink | undefined;
  #loop: Promise<void> | undefined;

  constructor(options: BridgeDomainOptions) {
    this.#o = options;
    this.#log = options.log ?? silentLogger;
  }

  /** The hub this endpoint is linked to, if it is not the hub itself. */
  get hub(): string | undefined {
    return this.#link?.conn ? this.#link.hub : undefined;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped.abort();
    await this.#loop;
    await this.#unlink();
  }

  async #run(): Promise<void> {
    const signal = this.#stopped.signal;
    while (!signal.aborted) {
      await this.tick().catch((err) => this.#log.warn({ err: String(err) }, "bridge domain: peering failed"));
      await sleep(this.#o.intervalMs ?? 2000, undefined, { signal }).catch(() => {});
    }
  }

  /** One look at the registry: link to the hub (closing a link to a former one first). */
  async tick(): Promise<void> {
    const ctx = CallContext.create({ deadline: Date.now() + 10_000, log: this.#log });
    const found = await findEndpoints(this.#o.registry, { networkServiceNames: [this.#o.service] }, ctx);
    const hub = [this.#o.name, ...found.map((e) => e.name)].sort()[0]!;
    const wanted = found.find((e) => e.name === hub && hub !== this.#o.name);
    if (this.#link && this.#link.hub !== wanted?.name) await this.#unlink();
    if (!wanted || this.#stopped.signal.aborted) return;
    const hubLabels = wanted.networkServiceLabels[this.#o.service]?.labels ?? {};
    if (!this.#link) this.#link = this.#newLink(wanted.name, hubLabels);
    if (!this.#link.conn) await this.#dial(this.#link);
  }

  #newLink(hub: string, hubLabels: Readonly<Record<string, string>>): PeerLink {
    const port = `${PEER_PORT_PREFIX}${randomString(11)}`;
    const stop = new AbortController();
    const o = this.#o;
    const client = bind(
      clientChain({
        ...o,
        refresh: refreshClient({ signal: stop.signal }),
        heal: healClient({ signal: stop.signal }),
        additional: [
          mechanismsClient({ KERNEL: kernelMechanismClient({ inodeUrl: o.inodeUrl, interfaceName: port }) }),
          sendFdClient(),
          bridgePortClient(o, port),
        ],
      }),
    );
    return { hub, hubLabels, port, client, stop };
  }

  async #dial(link: PeerLink): Promise<void> {
    const o = this.#o;
    const connection = create(ConnectionSchema, {
      id: `${o.name}-bridge-peer`,
      networkService: o.service,
      networkServiceEndpointName: link.hub,
      // The endpoint is named, so nsmgr reads no NetworkService: the payload picks VXLAN between nodes.
      payload: Payload.ETHERNET,
      labels: { ...link.hubLabels, [BRIDGE_PEER_LABEL]: o.name },
    });
    const req = create(NetworkServiceRequestSchema, { connection });
    const ctx = CallContext.create({ deadline: Date.now() + 15_000, log: this.#log });
    link.conn = await link.client.request(req, ctx);
    this.#log.info({ hub: link.hub, port: link.port }, "bridge domain: linked to the hub");
  }

  async #unlink(): Promise<void> {
    const link = this.#link;
    this.#link = undefined;
    if (!link) return;
    link.stop.abort();
    if (!link.conn) return;
    const ctx = CallContext.create({ deadline: Date.now() + 10_000, log: this.#log });
    await link.client
      .close(link.conn, ctx)
      .catch((err) => this.#log.warn({ hub: link.hub, err: String(err) }, "bridge domain: closing the link failed"));
    this.#log.info({ hub: link.hub }, "bridge domain: unlinked");
  }
}
