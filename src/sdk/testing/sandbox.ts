// SPDX-License-Identifier: Apache-2.0
/**
 * The in-process sandbox: a registry, N nodes (nsmgr + forwarder each), endpoints and
 * clients in one process, talking real gRPC over unix sockets in a temporary directory.
 *
 * Recipes:
 * - `const sb = await createSandbox({ nodes: 1 })`, then `await sb.registerNetworkService({ name: "svc" })`,
 *   `await sb.addEndpoint({ name: "nse-1", networkServices: ["svc"], cidrPrefixes: ["172.16.1.100/31"] })`,
 *   `sb.client({ name: "nsc" }).request(...)`; finish with `await sb.close()`.
 * - Every component is restartable on the same URL: `await sb.nodes[0].nsmgr.restart()`,
 *   `await endpoint.stop()` then `await endpoint.start()` (state is lost, as in a real restart).
 * - Forwarders and endpoints register through `registryClient`, so their registrations heal: after
 *   a registry or nsmgr restart they register again at once (`registryHeal: false` turns it off,
 *   for the sandbox or one endpoint).
 * - The forwarder is control-plane only here (no data plane), like upstream's sandbox.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { NetworkServiceEndpointSchema, NetworkServiceSchema } from "../../api/gen/registry_pb.js";
import { bind, type NetworkServiceElement, type NetworkServiceHandler } from "../core/chain.js";
import { CallContext } from "../core/context.js";
import { type Logger, silentLogger } from "../core/logger.js";
import { closeChannel, dialChannel } from "../grpc/dial.js";
import { registryClients, serveRegistry } from "../grpc/registry.js";
import { createClient as createClientChain } from "../networkservice/chains/client/index.js";
import { createEndpoint, type Endpoint } from "../networkservice/chains/endpoint/index.js";
import { createForwarder } from "../networkservice/chains/forwarder/index.js";
import { createNsmgr } from "../networkservice/chains/nsmgr/index.js";
import { kernelMechanismClient, kernelMechanismServer } from "../networkservice/common/kernelmechanism/index.js";
import { mechanismsClient, mechanismsServer } from "../networkservice/common/mechanisms/index.js";
import { point2pointIpamServer } from "../networkservice/common/point2pointipam/index.js";
import type { NseRegistry, NsRegistry } from "../registry/api.js";
import { registryClient } from "../registry/chains/client/index.js";
import { memoryRegistry } from "../registry/chains/memory/index.js";
import { nseRegistryFromChain, nsRegistryFromChain } from "../registry/core/adapters.js";

/** A gRPC server that can be stopped and started again on the same unix socket. */
export class RestartableServer {
  #server: grpc.Server | undefined;
  #lifetime: AbortController | undefined;
  constructor(
    readonly name: string,
    readonly url: string,
    private readonly setup: (server: grpc.Server, lifetime: AbortSignal) => void | Promise<void>,
  ) {}

  get running(): boolean {
    return this.#server !== undefined;
  }

  async start(): Promise<void> {
    if (this.#server) return;
    const server = new grpc.Server();
    this.#lifetime = new AbortController();
    await this.setup(server, this.#lifetime.signal);
    rmSync(this.url.slice("unix://".length), { force: true });
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(this.url, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
    );
    this.#server = server;
  }

  /** Kills the server: open calls and streams break at once, as when a process dies. */
  async stop(): Promise<void> {
    this.#lifetime?.abort();
    this.#server?.forceShutdown();
    this.#server = undefined;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}

/** Options of {@link createSandbox}. */
export interface SandboxOptions {
  /** @default 1 */
  nodes?: number;
  /** NSE registration lifetime in the registry and nsmgrs. @default 60000 */
  registryExpirationMs?: number;
  /** Whether forwarders and endpoints heal their registrations (`registryClient({ heal })`). @default true */
  registryHeal?: boolean;
  log?: Logger;
}

/** A sandbox node: its nsmgr and forwarders. */
export interface SandboxNode {
  readonly index: number;
  readonly nsmgr: RestartableServer;
  readonly forwarders: RestartableServer[];
}

/** An endpoint to add to a sandbox. */
export interface EndpointSpec {
  name: string;
  networkServices: string[];
  /** Labels per service (or for all services). */
  labels?: Record<string, string>;
  /** NSM_CIDR_PREFIX groups. @default ["169.254.0.0/16"] */
  cidrPrefixes?: (string | string[])[];
  /** Replaces the default IPAM + kernel mechanism elements. */
  additional?: NetworkServiceElement[];
  /** @default 0 */
  node?: number;
  /** Whether this endpoint heals its registration. @default the sandbox's `registryHeal` */
  registryHeal?: boolean;
}

/** A client to add to a sandbox. */
export interface ClientSpec {
  /** @default "nsc" */
  name?: string;
  /** @default 0 */
  node?: number;
  additional?: NetworkServiceElement[];
  /** The client chain's heal slot (e.g. `healClient()`). */
  heal?: NetworkServiceElement;
}

/** A running sandbox: add endpoints and clients to it, and close it when done. */
export class Sandbox {
  readonly dir: string;
  readonly registry: RestartableServer;
  readonly nodes: SandboxNode[] = [];
  readonly endpoints = new Map<string, RestartableServer & { endpoint?: Endpoint }>();
  readonly #channels: grpc.Client[] = [];
  readonly #disposers: (() => void)[] = [];
  readonly #log: Logger;
  readonly #expirationMs: number | undefined;
  readonly #registryHeal: boolean;

  constructor(options: SandboxOptions = {}) {
    this.dir = mkdtempSync(join(tmpdir(), "nsm-sandbox-"));
    this.#log = options.log ?? silentLogger;
    this.#expirationMs = options.registryExpirationMs;
    this.#registryHeal = options.registryHeal ?? true;
    this.registry = new RestartableServer("registry", `unix://${this.dir}/registry.sock`, (server, signal) => {
      serveRegistry(server, memoryRegistry({ expirationMs: this.#expirationMs, signal }), { log: this.#log });
    });
  }

  /** Registry clients over gRPC to `url` (kept open until the sandbox closes). */
  registriesAt(url: string): { ns: NsRegistry; nse: NseRegistry } {
    const ch = dialChannel(url);
    this.#channels.push(ch);
    return registryClients(ch);
  }

  async addNode(): Promise<SandboxNode> {
    const index = this.nodes.length;
    const nsmgrName = `nsmgr-${index}`;
    const nsmgrUrl = `unix://${this.dir}/${nsmgrName}.sock`;
    const nsmgr = new RestartableServer(nsmgrName, nsmgrUrl, (server, signal) => {
      const n = createNsmgr({
        name: nsmgrName,
        url: nsmgrUrl,
        registry: this.registriesAt(this.registry.url),
        expirationMs: this.#expirationMs,
        clientInfo: { nodeName: `node-${index}` },
        dialTimeoutMs: 2000,
        signal,
        log: this.#log,
      });
      n.register(server);
      signal.addEventListener("abort", () => n.dispose());
    });
    const forwarderName = `forwarder-${index}`;
    const forwarderUrl = `unix://${this.dir}/${forwarderName}.sock`;
    const forwarder = new RestartableServer(forwarderName, forwarderUrl, async (server, signal) => {
      const viaNsmgr = this.registriesAt(nsmgrUrl);
      const f = createForwarder({
        name: forwarderName,
        nsRegistry: viaNsmgr.ns,
        nseRegistry: viaNsmgr.nse,
        dialTimeoutMs: 2000,
        log: this.#log,
      });
      f.register(server);
      signal.addEventListener("abort", () => f.dispose());
      this.#afterStart(() =>
        this.#registerNse(viaNsmgr, signal, this.#registryHeal, {
          name: forwarderName,
          networkServiceNames: ["forwarder"],
          networkServiceLabels: { forwarder: { labels: { p2p: "true" } } },
          url: forwarderUrl,
        }),
      );
    });
    const node: SandboxNode = { index, nsmgr, forwarders: [forwarder] };
    this.nodes.push(node);
    await nsmgr.start();
    await this.#runStarted(() => forwarder.start());
    return node;
  }

  #pending: (() => Promise<void>)[] = [];
  #afterStart(fn: () => Promise<void>) {
    this.#pending.push(fn);
  }
  async #runStarted(start: () => Promise<void>) {
    await start();
    const todo = this.#pending;
    this.#pending = [];
    for (const fn of todo) await fn();
  }

  async #registerNse(
    registries: { ns: NsRegistry; nse: NseRegistry },
    signal: AbortSignal,
    heal: boolean,
    nse: MessageInitShape<typeof NetworkServiceEndpointSchema>,
  ): Promise<void> {
    const chains = registryClient({ registry: registries, signal, heal });
    const record = create(NetworkServiceEndpointSchema, nse);
    await chains.nse.register(record, CallContext.create({ deadline: Date.now() + 5000, log: this.#log }));
  }

  /** Registers (or replaces) a NetworkService in the cluster registry. */
  async registerNetworkService(ns: MessageInitShape<typeof NetworkServiceSchema>): Promise<void> {
    const { ns: nsClient } = this.registriesAt(this.registry.url);
    await nsClient.register(create(NetworkServiceSchema, ns), CallContext.create({ deadline: Date.now() + 5000 }));
  }

  /** Starts an endpoint (p2p IPAM + KERNEL mechanism by default) and registers it through its node's nsmgr. */
  async addEndpoint(spec: EndpointSpec): Promise<RestartableServer & { endpoint?: Endpoint }> {
    const node = this.nodes[spec.node ?? 0]!;
    const url = `unix://${this.dir}/${spec.name}.sock`;
    const server: RestartableServer & { endpoint?: Endpoint } = new RestartableServer(spec.name, url, (s, signal) => {
      const endpoint = createEndpoint({
        name: spec.name,
        log: this.#log,
        additional: spec.additional ?? [
          point2pointIpamServer({ prefixes: spec.cidrPrefixes ?? ["169.254.0.0/16"] }),
          mechanismsServer({ KERNEL: kernelMechanismServer() }),
        ],
      });
      server.endpoint = endpoint;
      endpoint.register(s);
      signal.addEventListener("abort", () => endpoint.dispose());
      this.#afterStart(() =>
        this.#registerNse(this.registriesAt(node.nsmgr.url), signal, spec.registryHeal ?? this.#registryHeal, {
          name: spec.name,
          networkServiceNames: spec.networkServices,
          networkServiceLabels: Object.fromEntries(spec.networkServices.map((n) => [n, { labels: spec.labels ?? {} }])),
          url,
        }),
      );
    });
    const start = server.start.bind(server);
    server.start = () => this.#runStarted(start);
    await server.start();
    this.endpoints.set(spec.name, server);
    return server;
  }

  /** A client chain (as an NSC uses) connected to a node's nsmgr. */
  client(spec: ClientSpec = {}): NetworkServiceHandler {
    const node = this.nodes[spec.node ?? 0]!;
    return createClientChain({
      name: spec.name ?? "nsc",
      connectTo: node.nsmgr.url,
      dialTimeoutMs: 2000,
      heal: spec.heal,
      additional: spec.additional ?? [mechanismsClient({ KERNEL: kernelMechanismClient() })],
    });
  }

  /** Registry views for assertions. */
  clusterRegistry(): { ns: NsRegistry; nse: NseRegistry } {
    return this.registriesAt(this.registry.url);
  }

  async close(): Promise<void> {
    for (const d of this.#disposers) d();
    for (const e of this.endpoints.values()) await e.stop();
    for (const n of this.nodes) {
      for (const f of n.forwarders) await f.stop();
      await n.nsmgr.stop();
    }
    await this.registry.stop();
    for (const ch of this.#channels) closeChannel(ch);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A registry and `options.nodes` nodes in this process, over real gRPC on unix sockets. */
export async function createSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const sb = new Sandbox(options);
  await sb.registry.start();
  for (let i = 0; i < (options.nodes ?? 1); i++) await sb.addNode();
  return sb;
}

export { bind, nseRegistryFromChain, nsRegistryFromChain };
