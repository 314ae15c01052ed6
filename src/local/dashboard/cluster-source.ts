// SPDX-License-Identifier: Apache-2.0
/**
 * A cluster's mesh as a {@link MeshSource}: connections from the MonitorConnections of the given
 * nsmgr URLs, services and endpoints from the given registry URL, dialled with the caller's
 * credentials (a role's SPIFFE identity, or plaintext for an insecure cluster). No node boxes and
 * no traffic rates: a cluster's nodes and interfaces are not on this machine; the components are
 * drawn from the connections' paths (see `graphElements`).
 */
import { create } from "@bufbuild/protobuf";
import {
  type Connection,
  ConnectionEventType,
  MonitorConnection,
  MonitorScopeSelectorSchema,
  registry,
  State,
} from "../../api/index.js";
import { CallContext } from "../../sdk/core/context.js";
import { closeChannel, type DialOptions, dialChannel } from "../../sdk/grpc/dial.js";
import { registryClients } from "../../sdk/grpc/registry.js";
import { grpcClient } from "../../sdk/grpc/service.js";
import { describeConnection } from "../describe.js";
import { clientId, pickConnection } from "../views.js";
import type { Mesh, MeshConnection } from "./model.js";
import type { MeshSource } from "./source.js";

const CALL_TIMEOUT_MS = 5000;

export interface ClusterUrls {
  readonly nsmgrs: readonly string[];
  readonly registry?: string;
}

async function monitorOnce(url: string, dial: DialOptions): Promise<Connection[]> {
  const channel = dialChannel(url, dial);
  try {
    const ctx = CallContext.create({ deadline: Date.now() + CALL_TIMEOUT_MS });
    const stream = grpcClient(MonitorConnection, channel).monitorConnections(create(MonitorScopeSelectorSchema), ctx);
    for await (const event of stream)
      if (event.type === ConnectionEventType.INITIAL_STATE_TRANSFER) return Object.values(event.connections);
    return [];
  } finally {
    closeChannel(channel);
  }
}

async function registryPart(url: string | undefined, dial: DialOptions, problems: string[]) {
  if (!url) return { services: [], endpoints: [] };
  const channel = dialChannel(url, dial);
  try {
    const r = registryClients(channel);
    const ctx = () => CallContext.create({ deadline: Date.now() + CALL_TIMEOUT_MS });
    const services: Mesh["services"][number][] = [];
    const endpoints: Mesh["endpoints"][number][] = [];
    const nsQuery = create(registry.NetworkServiceQuerySchema, {
      networkService: create(registry.NetworkServiceSchema),
    });
    for await (const x of r.ns.find(nsQuery, ctx()))
      if (x.networkService && !x.deleted)
        services.push({ name: x.networkService.name, payload: x.networkService.payload });
    const nseQuery = create(registry.NetworkServiceEndpointQuerySchema, {
      networkServiceEndpoint: create(registry.NetworkServiceEndpointSchema),
    });
    for await (const x of r.nse.find(nseQuery, ctx())) {
      const e = x.networkServiceEndpoint;
      if (e && !x.deleted && !e.networkServiceNames.includes("forwarder"))
        endpoints.push({ name: e.name, services: [...e.networkServiceNames] });
    }
    return { services, endpoints };
  } catch (err) {
    problems.push(`cannot reach the registry ${url}: ${(err as Error).message}`);
    return { services: [], endpoints: [] };
  } finally {
    closeChannel(channel);
  }
}

/** Every connection once (by client id), each as the first nsmgr that answered reports it. */
async function connections(urls: ClusterUrls, dial: DialOptions, problems: string[]) {
  const seen = new Map<string, { node: string; conn: Connection }>();
  for (const url of urls.nsmgrs) {
    try {
      for (const c of await monitorOnce(url, dial))
        if (!seen.has(clientId(c))) seen.set(clientId(c), { node: url, conn: c });
    } catch (err) {
      problems.push(`cannot reach the nsmgr ${url}: ${(err as Error).message}`);
    }
  }
  return [...seen.values()];
}

function meshConnection(x: { node: string; conn: Connection }): MeshConnection {
  return {
    id: clientId(x.conn),
    node: x.node,
    service: x.conn.networkService,
    endpoint: x.conn.networkServiceEndpointName,
    state: State[x.conn.state] ?? String(x.conn.state),
    path: (x.conn.path?.pathSegments ?? []).map((s) => s.name),
  };
}

async function follow(url: string, dial: DialOptions, changed: () => void, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    const channel = dialChannel(url, dial);
    try {
      const ctx = CallContext.create({ signal });
      const stream = grpcClient(MonitorConnection, channel).monitorConnections(create(MonitorScopeSelectorSchema), ctx);
      for await (const event of stream) if (event.type !== ConnectionEventType.INITIAL_STATE_TRANSFER) changed();
    } catch {
      // Reconnected below, after a pause.
    } finally {
      closeChannel(channel);
    }
    if (!signal.aborted) changed();
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** The mesh of a cluster's nsmgrs and registry (see the module doc). */
export function clusterSource(urls: ClusterUrls, dial: DialOptions): MeshSource {
  const readAll = async () => {
    const problems: string[] = [];
    const [reg, list] = await Promise.all([
      registryPart(urls.registry, dial, problems),
      connections(urls, dial, problems),
    ]);
    return { list, mesh: { nodes: [], pods: [], ...reg, connections: list.map(meshConnection), problems } };
  };
  return {
    read: async () => (await readAll()).mesh,
    watch: (changed, signal) => {
      for (const url of urls.nsmgrs) void follow(url, dial, changed, signal);
    },
    async describe(id) {
      return describeConnection(pickConnection((await readAll()).list, id));
    },
  };
}
