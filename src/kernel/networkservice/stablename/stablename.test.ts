// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  Cls,
  ConnectionSchema,
  create,
  MechanismType,
  type NetworkServiceRequest,
  NetworkServiceRequestSchema,
  newMechanism,
} from "../../../api/index.js";
import { bind, chain, type NetworkServiceElement } from "../../../sdk/core/chain.js";
import { CallContext } from "../../../sdk/core/context.js";
import { metadataClient } from "../../../sdk/networkservice/common/metadata/index.js";
import { validateInterfaceName } from "../../../sdk/tools/ifname.js";
import { connectionInterfaceName, stableKernelMechanismClient } from "../index.js";

/** The KERNEL preferences that reach the next element. */
function capture() {
  const seen: NetworkServiceRequest[] = [];
  const tail: NetworkServiceElement = {
    name: "capture",
    async request(req) {
      seen.push(req);
      return req.connection!;
    },
    async close() {},
  };
  const names = () =>
    seen
      .at(-1)!
      .mechanismPreferences.filter((m) => m.type === MechanismType.KERNEL)
      .map((m) => m.parameters.name);
  return { tail, names, seen };
}

const request = (id: string, prefs = [] as ReturnType<typeof newMechanism>[]) =>
  create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, { id, networkService: "icmp-responder" }),
    mechanismPreferences: prefs,
  });

describe("stable interface names (forwarder restart)", () => {
  it("connectionInterfaceName: 15 valid characters, the service prefix, the same for the same connection", () => {
    const a = connectionInterfaceName("icmp-responder", "3f1c-aa");
    assert.equal(a.length, 15);
    assert.match(a, /^icmp-re-[0-9A-Za-z]{7}$/);
    validateInterfaceName(a);
    assert.equal(connectionInterfaceName("icmp-responder", "3f1c-aa"), a);
    assert.notEqual(connectionInterfaceName("icmp-responder", "3f1c-ab"), a);
    assert.equal(connectionInterfaceName("", "x").length, 15);
    validateInterfaceName(connectionInterfaceName("a/b:c d", "x"));
  });

  it("connectionInterfaceName: 20000 connections to one endpoint get 20000 names", () => {
    // With 4 hash characters (62^4 names) about 13 of these would clash; with 7, none.
    const names = new Set(
      Array.from({ length: 20_000 }, (_, i) => connectionInterfaceName("icmp-responder", `conn-${i}`)),
    );
    assert.equal(names.size, 20_000);
  });

  it("two instances (two lives of a forwarder) offer the endpoint the same name; a given name wins", async () => {
    const run = async (req: NetworkServiceRequest) => {
      const c = capture();
      await bind(chain(metadataClient(), stableKernelMechanismClient(), c.tail)).request(req, CallContext.create());
      return c;
    };
    const first = await run(request("conn-1"));
    const second = await run(request("conn-1"));
    assert.deepEqual(first.names(), [connectionInterfaceName("icmp-responder", "conn-1")]);
    assert.deepEqual(second.names(), first.names());
    assert.ok(first.seen[0]!.mechanismPreferences[0]!.parameters.inodeURL, "completed like kernelMechanismClient");
    const given = await run(request("conn-1", [newMechanism(Cls.LOCAL, MechanismType.KERNEL, { name: "mine" })]));
    assert.deepEqual(given.names(), ["mine"]);
    const unnamed = await run(request("conn-2", [newMechanism(Cls.LOCAL, MechanismType.KERNEL)]));
    assert.deepEqual(unnamed.names(), [connectionInterfaceName("icmp-responder", "conn-2")]);
  });
});
