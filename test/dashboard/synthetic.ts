// SPDX-License-Identifier: Apache-2.0
/**
 * A made-up mesh for the dashboard's page tests and its benchmark: N nodes, M connections from as
 * many client pods through their node's nsmgr and forwarder to one of a few endpoints, as a
 * {@link MeshSource} whose connections the caller changes (fail, heal, rename) and then signals.
 */
import type { Mesh, MeshConnection } from "../../src/local/dashboard/model.js";
import type { MeshSource } from "../../src/local/dashboard/source.js";
import { LocalError } from "../../src/local/errors.js";

export interface SyntheticMesh extends MeshSource {
  mesh: Mesh;
  /** Replaces connection `id` (e.g. its state) and tells the dashboard at once. */
  set(id: string, change: Partial<MeshConnection>): void;
}

export function syntheticMesh(
  connections: number,
  nodes = 2,
  endpointsPerNode = 2,
  names: { service?: string; client?: (i: number) => string } = {},
): SyntheticMesh {
  const service = names.service ?? "svc";
  const nodeNames = Array.from({ length: nodes }, (_, i) => `node-${i + 1}`);
  const endpoints = nodeNames.flatMap((n) => Array.from({ length: endpointsPerNode }, (_, j) => `nse-${n}-${j}`));
  const client = names.client ?? ((i: number) => `client-${i}`);
  const conns: MeshConnection[] = Array.from({ length: connections }, (_, i) => {
    const node = nodeNames[i % nodes]!;
    const endpoint = endpoints[Math.floor(i / nodes) % endpoints.length]!;
    const epNode = endpoint.split("-").slice(1, 3).join("-");
    const path =
      epNode === node
        ? [client(i), `nsmgr-${node}`, `forwarder-${node}`, endpoint]
        : [client(i), `nsmgr-${node}`, `forwarder-${node}`, `nsmgr-${epNode}`, `forwarder-${epNode}`, endpoint];
    return { id: `${client(i)}-0`, node, service, endpoint, state: "UP", path, rxRate: 1000 + i, txRate: 2000 + i };
  });
  let changed: () => void = () => {};
  const self: SyntheticMesh = {
    mesh: {
      nodes: nodeNames.map((name) => ({ name, nsmgrUp: true, forwarderUp: true })),
      pods: [
        ...conns.map((c) => ({ name: c.path[0]!, namespace: "default", node: c.node, client: true })),
        ...endpoints.map((e) => ({
          name: e,
          namespace: "default",
          node: e.split("-").slice(1, 3).join("-"),
          client: false,
        })),
      ],
      services: [{ name: service, payload: "ETHERNET" }],
      endpoints: endpoints.map((name) => ({ name, services: [service] })),
      connections: conns,
      problems: [],
    },
    read: async () => self.mesh,
    watch: (fn, signal) => {
      changed = fn;
      signal.addEventListener("abort", () => (changed = () => {}));
    },
    describe: async (id) => {
      const c = self.mesh.connections.find((x) => x.id === id);
      if (!c) throw new LocalError(`no connection "${id}"`);
      return `ID:        ${c.id}\nService:   ${c.service}\nEndpoint:  ${c.endpoint}\nState:     ${c.state}\n`;
    },
    set(id, change) {
      self.mesh = {
        ...self.mesh,
        connections: self.mesh.connections.map((c) => (c.id === id ? { ...c, ...change } : c)),
      };
      changed();
    },
  };
  return self;
}
