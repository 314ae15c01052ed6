// SPDX-License-Identifier: Apache-2.0
/**
 * What the CLI asks the running control plane over gRPC: the registry (NetworkServices from
 * manifests, records for `nsm get`, readiness of forwarders and endpoints) and each node's
 * nsmgr (its connections, from the initial state of MonitorConnections). `dial` carries the
 * CLI's mTLS credentials (see ./identity.ts).
 */
import { connect } from "node:net";
import { create } from "@bufbuild/protobuf";
import {
  type Connection,
  ConnectionEventType,
  MonitorConnection,
  MonitorScopeSelectorSchema,
  registry,
} from "../api/index.js";
import { CallContext } from "../sdk/core/context.js";
import { closeChannel, type DialOptions, dialChannel } from "../sdk/grpc/dial.js";
import { registryClients } from "../sdk/grpc/registry.js";
import { grpcClient } from "../sdk/grpc/service.js";

const CALL_TIMEOUT_MS = 5000;

async function withRegistry<T>(
  socket: string,
  dial: DialOptions,
  fn: (r: ReturnType<typeof registryClients>) => Promise<T>,
): Promise<T> {
  const channel = dialChannel(`unix://${socket}`, dial);
  try {
    return await fn(registryClients(channel));
  } finally {
    closeChannel(channel);
  }
}

const ctx = () => CallContext.create({ deadline: Date.now() + CALL_TIMEOUT_MS });

/** True when something accepts connections on the unix socket. */
export function socketAccepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

export function registerNetworkService(
  socket: string,
  dial: DialOptions,
  ns: registry.NetworkService,
): Promise<registry.NetworkService> {
  return withRegistry(socket, dial, (r) => r.ns.register(ns, ctx()));
}

export async function unregisterNetworkService(
  socket: string,
  dial: DialOptions,
  ns: registry.NetworkService,
): Promise<void> {
  await withRegistry(socket, dial, (r) => r.ns.unregister(ns, ctx()));
}

export function findNetworkServices(socket: string, dial: DialOptions): Promise<registry.NetworkService[]> {
  return withRegistry(socket, dial, async (r) => {
    const out: registry.NetworkService[] = [];
    const q = create(registry.NetworkServiceQuerySchema, { networkService: create(registry.NetworkServiceSchema) });
    for await (const resp of r.ns.find(q, ctx()))
      if (resp.networkService && !resp.deleted) out.push(resp.networkService);
    return out;
  });
}

/** NSE records, all of them or the one named `name`. */
export function findEndpoints(
  socket: string,
  dial: DialOptions,
  name = "",
): Promise<registry.NetworkServiceEndpoint[]> {
  return withRegistry(socket, dial, async (r) => {
    const out: registry.NetworkServiceEndpoint[] = [];
    const q = create(registry.NetworkServiceEndpointQuerySchema, {
      networkServiceEndpoint: create(registry.NetworkServiceEndpointSchema, { name }),
    });
    for await (const resp of r.nse.find(q, ctx()))
      if (resp.networkServiceEndpoint && !resp.deleted) out.push(resp.networkServiceEndpoint);
    return name ? out.filter((e) => e.name === name) : out;
  });
}

/** The connections an nsmgr has now (the initial state transfer of MonitorConnections). */
export async function nsmgrConnections(socket: string, dial: DialOptions): Promise<Connection[]> {
  const channel = dialChannel(`unix://${socket}`, dial);
  const c = ctx();
  try {
    const stream = grpcClient(MonitorConnection, channel).monitorConnections(create(MonitorScopeSelectorSchema), c);
    for await (const event of stream) {
      if (event.type === ConnectionEventType.INITIAL_STATE_TRANSFER) return Object.values(event.connections);
    }
    return [];
  } finally {
    closeChannel(channel);
  }
}
