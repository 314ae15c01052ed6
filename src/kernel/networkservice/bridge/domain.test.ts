// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type NetworkServiceEndpoint,
  NetworkServiceEndpointResponseSchema,
  NetworkServiceEndpointSchema,
} from "../../../api/gen/registry_pb.js";
import { create } from "../../../api/index.js";
import type { NseRegistry } from "../../../sdk/registry/api.js";
import { createFakeKernel } from "../../fake.js";
import { BridgeDomainPeers } from "./domain.js";

/** A registry whose Find answers `names` (all serving "bd") and counts the look-ups. */
function registryOf(names: string[]): NseRegistry & { finds: number } {
  const reg = {
    finds: 0,
    register: async (nse: NetworkServiceEndpoint) => nse,
    unregister: async () => ({}),
    async *find() {
      reg.finds++;
      for (const name of names)
        yield create(NetworkServiceEndpointResponseSchema, {
          networkServiceEndpoint: create(NetworkServiceEndpointSchema, { name, networkServiceNames: ["bd"] }),
        });
    },
  };
  return reg;
}

const peersOf = (name: string, registry: NseRegistry) =>
  new BridgeDomainPeers({
    name,
    service: "bd",
    connectTo: "unix:///nonexistent/nsm.io.sock",
    inodeUrl: "file:///proc/self/ns/net",
    registry,
    kernel: createFakeKernel(),
    bridge: "nsm-br0",
    dialTimeoutMs: 200,
  });

describe("bridge domain peering", () => {
  it("the endpoint with the lowest name is the hub: it dials nobody", async () => {
    const registry = registryOf(["nse-b", "nse-c"]);
    const peers = peersOf("nse-a", registry);
    await peers.tick();
    assert.equal(registry.finds, 1);
    assert.equal(peers.hub, undefined);
  });

  it("another endpoint dials the hub; a hub it cannot reach leaves it unlinked and tries again next time", async () => {
    const registry = registryOf(["nse-a", "nse-c"]);
    const peers = peersOf("nse-b", registry);
    await assert.rejects(peers.tick());
    assert.equal(peers.hub, undefined);
    await assert.rejects(peers.tick());
    assert.equal(registry.finds, 2);
    await peers.stop();
  });
});
