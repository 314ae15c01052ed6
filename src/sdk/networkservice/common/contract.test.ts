// SPDX-License-Identifier: Apache-2.0
/**
 * The element contract (src/sdk/testing/contract.ts) run against every element folder of
 * src/sdk/networkservice/common: a downstream error reaches the caller with its code, a failed
 * Request leaves no state behind, and a Close after it is harmless.
 */
import { randomBytes } from "node:crypto";
import { describe } from "node:test";
import { create } from "@bufbuild/protobuf";
import {
  NetworkServiceEndpointSchema,
  NetworkServiceLabelsSchema,
  NetworkServiceSchema,
} from "../../../api/gen/registry_pb.js";
import {
  Cls,
  ConnectionSchema,
  clone,
  type Mechanism,
  MechanismType,
  type NetworkServiceRequest,
  NetworkServiceRequestSchema,
  newMechanism,
  PathSchema,
  PathSegmentSchema,
  Payload,
} from "../../../api/index.js";
import { chain, type NetworkServiceElement } from "../../core/chain.js";
import { CallContext } from "../../core/context.js";
import { type ContractFactory, type ContractSetup, elementContract } from "../../testing/contract.js";
import { fakeNseRegistry, fakeNsRegistry } from "../../testing/fake-registry.js";
import { serveChain } from "../../testing/serve.js";
import { beginClient, beginServer } from "./begin/index.js";
import { clientInfoClient } from "./clientinfo/index.js";
import { clientUrlClient, withClientUrl } from "./clienturl/index.js";
import { connectClient, connectServer } from "./connect/index.js";
import { dialClient } from "./dial/index.js";
import { discoverServer, withCandidates } from "./discover/index.js";
import { discoverForwarderServer } from "./discoverforwarder/index.js";
import { filterMechanismsClient } from "./filtermechanisms/index.js";
import { healClient } from "./heal/index.js";
import { kernelMechanismClient, kernelMechanismServer } from "./kernelmechanism/index.js";
import { mechanismPriorityClient } from "./mechanismpriority/index.js";
import { mechanismsClient, mechanismsServer } from "./mechanisms/index.js";
import { mechanismTranslationClient } from "./mechanismtranslation/index.js";
import { metadataClient, metadataServer } from "./metadata/index.js";
import { ConnectionMonitor, monitorServer } from "./monitor/index.js";
import { netSvcMonitorServer } from "./netsvcmonitor/index.js";
import { point2pointIpamServer } from "./point2pointipam/index.js";
import { refreshClient } from "./refresh/index.js";
import { roundRobinServer } from "./roundrobin/index.js";
import { timeoutServer } from "./timeout/index.js";
import { trimpathClient, trimpathServer } from "./trimpath/index.js";
import { updatePathClient, updatePathServer } from "./updatepath/index.js";
import { validateServer } from "./validate/index.js";
import { vxlanClient, vxlanServer } from "./vxlan/index.js";
import { wireguardClient, wireguardServer } from "./wireguard/index.js";

const KEY_A = randomBytes(32).toString("base64");
const KEY_B = randomBytes(32).toString("base64");

/** A request as a server sees it from an NSC: one path segment, the next one is this hop's. */
function serverRequest(id: string, extra: { mechanism?: Mechanism; path?: undefined } = {}): NetworkServiceRequest {
  return create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, {
      id,
      networkService: "svc",
      payload: Payload.IP,
      path: create(PathSchema, { index: 0, pathSegments: [create(PathSegmentSchema, { name: "nsc", id })] }),
      ...extra,
    }),
  });
}

const kernelRequest = (id: string) =>
  serverRequest(id, { mechanism: newMechanism(Cls.LOCAL, MechanismType.KERNEL, { name: "nsm-1" }) });

/** Server elements sit behind updatepath, begin and metadata, as in the endpoint chain. */
const server =
  (
    make: (lifetime: AbortSignal) => NetworkServiceElement | NetworkServiceElement[],
    extra: Partial<ContractSetup> = {},
  ) =>
  async (downstream: NetworkServiceElement, lifetime: AbortSignal): Promise<ContractSetup> => ({
    elements: [updatePathServer("hop"), beginServer(), metadataServer(), ...[make(lifetime)].flat(), downstream],
    request: (id) => serverRequest(id),
    ...extra,
  });

/** Client elements sit behind updatepath, begin and metadata, as in the client chain. */
const client =
  (
    make: (lifetime: AbortSignal) => NetworkServiceElement | NetworkServiceElement[],
    extra: Partial<ContractSetup> = {},
  ) =>
  async (downstream: NetworkServiceElement, lifetime: AbortSignal): Promise<ContractSetup> => ({
    elements: [updatePathClient("nsc"), beginClient(), metadataClient(), ...[make(lifetime)].flat(), downstream],
    request: (id) =>
      create(NetworkServiceRequestSchema, { connection: create(ConnectionSchema, { id, networkService: "svc" }) }),
    ...extra,
  });

/** Picks the first mechanism preference as the next hop does (for tunnel clients). */
const selectFirstPreference: NetworkServiceElement = {
  name: "selectFirstPreference",
  request: (req, ctx, next) => {
    const connection = clone(ConnectionSchema, req.connection!);
    connection.mechanism = req.mechanismPreferences[0];
    return next.request({ ...req, connection, mechanismPreferences: [] }, ctx);
  },
  close: (conn, ctx, next) => next.close(conn, ctx),
};

const nse = create(NetworkServiceEndpointSchema, {
  name: "nse-1",
  networkServiceNames: ["svc"],
  url: "tcp://10.0.0.9:5001",
});
const forwarder = create(NetworkServiceEndpointSchema, {
  name: "fwd-1",
  networkServiceNames: ["forwarder"],
  networkServiceLabels: { forwarder: create(NetworkServiceLabelsSchema, { labels: { p2p: "true" } }) },
  url: "tcp://10.0.0.1:5001/fwd-1",
});
const svc = create(NetworkServiceSchema, { name: "svc", payload: "IP" });

/** A fake next hop served over gRPC that ends with the harness's downstream. */
const remote =
  (before: NetworkServiceElement[], after: (url: string) => NetworkServiceElement[], viaServer = false) =>
  async (downstream: NetworkServiceElement): Promise<ContractSetup> => {
    const hop = await serveChain("contract-hop", updatePathServer("hop"), beginServer(), downstream);
    const clientChain = [clientUrlClient(hop.url), dialClient(), ...after(hop.url), connectClient()];
    return {
      elements: viaServer
        ? [
            updatePathServer("nsmgr"),
            beginServer(),
            metadataServer(),
            connectServer(chain(metadataClient(), ...clientChain)),
          ]
        : [updatePathClient("nsc"), beginClient(), metadataClient(), ...before, ...clientChain],
      request: (id) => (viaServer ? serverRequest(id) : serverRequest(id, { path: undefined })),
      normalize: stripExpiry,
      cleanup: () => hop.stop(),
    };
  };

/** Interface names generated at random (`svc-<random>`) differ between runs. */
function withoutGeneratedNames(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value), (k, v: unknown) =>
    k === "name" && typeof v === "string" && v.startsWith("svc-") ? "svc-<generated>" : v,
  );
}

/** Path segments carry expiry times and tokens that differ between runs. */
function stripExpiry(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value), (k, v) => (k === "expires" || k === "token" ? undefined : v));
}

const table: Record<string, ContractFactory> = {
  begin: async (downstream) => ({
    elements: [updatePathServer("hop"), beginServer(), downstream],
    request: (id) => serverRequest(id),
  }),
  clientinfo: client(() => clientInfoClient({ nodeName: "node-1", podName: "pod-1" })),
  clienturl: client(() => clientUrlClient("tcp://10.0.0.1:5001")),
  connect: remote([], () => []),
  "connect (server)": remote([], () => [], true),
  dial: remote([], () => []),
  discover: server(() => discoverServer({ nsRegistry: fakeNsRegistry([svc]), nseRegistry: fakeNseRegistry([nse]) })),
  discoverforwarder: server(() =>
    discoverForwarderServer({
      nsRegistry: fakeNsRegistry([svc]),
      nseRegistry: fakeNseRegistry([forwarder]),
      nsmgrUrl: "tcp://10.0.0.1:5001",
    }),
  ),
  filtermechanisms: client(() => filterMechanismsClient(), {
    context: () => withClientUrl(CallContext.create(), "unix:///var/lib/nsm.sock"),
  }),
  heal: client((signal) => healClient({ signal })),
  "kernelmechanism (client)": client(() => kernelMechanismClient(), { normalize: withoutGeneratedNames }),
  "kernelmechanism (server)": server(() => kernelMechanismServer(), { request: kernelRequest }),
  mechanismpriority: client(() => mechanismPriorityClient()),
  "mechanisms (server)": server(() => mechanismsServer({ [MechanismType.KERNEL]: kernelMechanismServer() }), {
    request: kernelRequest,
  }),
  "mechanisms (client)": client(() => mechanismsClient({ [MechanismType.KERNEL]: kernelMechanismClient() }), {
    normalize: withoutGeneratedNames,
  }),
  mechanismtranslation: client(() => mechanismTranslationClient()),
  metadata: async (downstream) => ({
    elements: [updatePathServer("hop"), beginServer(), metadataServer(), downstream],
    request: (id) => serverRequest(id),
  }),
  monitor: server(() => monitorServer(new ConnectionMonitor())),
  netsvcmonitor: server((signal) =>
    netSvcMonitorServer({ nsRegistry: fakeNsRegistry([svc]), nseRegistry: fakeNseRegistry([nse]), signal }),
  ),
  point2pointipam: server(() => point2pointIpamServer({ prefixes: ["172.16.1.0/29"] })),
  refresh: client((signal) => refreshClient({ signal })),
  roundrobin: server(() => roundRobinServer(), {
    context: () => withCandidates(CallContext.create(), { networkService: svc, endpoints: [nse] }),
  }),
  timeout: server((signal) => timeoutServer({ signal })),
  "trimpath (server)": server(() => [trimpathServer(), trimpathClient()]),
  "updatepath (client)": async (downstream) => ({
    elements: [updatePathClient("nsc"), downstream],
    request: (id) => serverRequest(id, { path: undefined }),
  }),
  validate: server(() => validateServer()),
  "vxlan (client+server)": server(() => [
    vxlanClient({ tunnelIp: "198.18.0.1", payloads: [Payload.IP] }),
    selectFirstPreference,
    vxlanServer({ tunnelIp: "198.18.0.2", random: () => 7 }),
  ]),
  "wireguard (client+server)": server(() => [
    wireguardClient({ tunnelIp: "198.18.0.1", publicKey: KEY_A }),
    selectFirstPreference,
    wireguardServer({ tunnelIp: "198.18.0.2", publicKey: KEY_B }),
  ]),
};

describe("element contract", () => {
  for (const [name, factory] of Object.entries(table)) elementContract(name, factory);
});
