// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { create, type IPContext, IPContextSchema } from "../../../api/index.js";
import { Code, NsmError } from "../../../sdk/core/errors.js";
import {
  clientIpPlan,
  diffIpPlans,
  dstIpRoutes,
  dstRoutesWithExplicitNextHop,
  endpointIpPlan,
  srcIpRoutes,
  srcRoutesWithExplicitNextHop,
} from "../index.js";
import { route } from "../testing.js";

/** What point2pointipam hands out for 172.16.1.100/31. */
const p2p = (): IPContext =>
  create(IPContextSchema, {
    srcIpAddrs: ["172.16.1.101/32"],
    dstIpAddrs: ["172.16.1.100/32"],
    srcRoutes: [route("172.16.1.100/32")],
    dstRoutes: [route("172.16.1.101/32")],
  });

describe("IPContext route helpers (upstream semantics)", () => {
  it("p2p: host link routes to the other side, src/dst routes without gateway (inside the other side)", () => {
    const ipc = p2p();
    assert.deepEqual(dstIpRoutes(ipc), [{ prefix: "172.16.1.100/32", nextHop: "" }]);
    assert.deepEqual(srcIpRoutes(ipc), [{ prefix: "172.16.1.101/32", nextHop: "" }]);
    assert.deepEqual(srcRoutesWithExplicitNextHop(ipc), [{ prefix: "172.16.1.100/32", nextHop: "" }]);
    assert.deepEqual(dstRoutesWithExplicitNextHop(ipc), [{ prefix: "172.16.1.101/32", nextHop: "" }]);
  });

  it("no link route for an address inside the other side's prefix", () => {
    const ipc = create(IPContextSchema, { srcIpAddrs: ["10.0.0.2/24"], dstIpAddrs: ["10.0.0.1/24"] });
    assert.deepEqual(dstIpRoutes(ipc), []);
    assert.deepEqual(srcIpRoutes(ipc), []);
  });

  it("routes without next hop get the first address of the same family on the other side", () => {
    const ipc = create(IPContextSchema, {
      srcIpAddrs: ["172.16.1.101/32", "fd00::101/128"],
      dstIpAddrs: ["172.16.1.100/32", "172.16.1.200/32", "fd00::100/128"],
      srcRoutes: [route("10.60.0.0/16"), route("fd60::/64"), route("10.70.0.0/16", "172.16.1.200")],
      dstRoutes: [route("192.168.0.0/24")],
    });
    assert.deepEqual(srcRoutesWithExplicitNextHop(ipc), [
      { prefix: "10.60.0.0/16", nextHop: "172.16.1.100" },
      { prefix: "fd60::/64", nextHop: "fd00::100" },
      { prefix: "10.70.0.0/16", nextHop: "172.16.1.200" },
    ]);
    assert.deepEqual(dstRoutesWithExplicitNextHop(ipc), [{ prefix: "192.168.0.0/24", nextHop: "172.16.1.101" }]);
  });

  it("no gateway when the other side has no address of the family", () => {
    const ipc = create(IPContextSchema, { dstIpAddrs: ["172.16.1.100/32"], srcRoutes: [route("fd60::/64")] });
    assert.deepEqual(srcRoutesWithExplicitNextHop(ipc), [{ prefix: "fd60::/64", nextHop: "" }]);
  });

  it("malformed entries are InvalidArgument", () => {
    const bad = (ipc: MessageInitShape<typeof IPContextSchema>) => () => clientIpPlan(create(IPContextSchema, ipc));
    const isInvalid = (err: unknown) => err instanceof NsmError && err.code === Code.InvalidArgument;
    assert.throws(bad({ srcIpAddrs: ["nope"] }), isInvalid);
    assert.throws(bad({ srcRoutes: [route("10.0.0.0/33")] }), isInvalid);
    assert.throws(bad({ srcRoutes: [route("10.0.0.0/8", "fd00::1")] }), isInvalid);
    assert.throws(bad({ ipNeighbors: [{ ip: "10.0.0.1", hardwareAddress: "zz" } as never] }), isInvalid);
  });
});

describe("per-netns plans", () => {
  it("client: src addresses, link route then universe routes (one per destination), neighbours", () => {
    const ipc = p2p();
    ipc.srcRoutes.push(route("10.60.0.0/16"));
    ipc.ipNeighbors.push({ ip: "172.16.1.100", hardwareAddress: "02-AA-BB-CC-DD-EE" } as never);
    assert.deepEqual(clientIpPlan(ipc), {
      addresses: ["172.16.1.101/32"],
      routes: [
        { dst: "10.60.0.0/16", gateway: "172.16.1.100", scope: "universe" },
        // The link route and the src route share the destination: the later RouteReplace wins.
        { dst: "172.16.1.100/32", scope: "universe" },
      ],
      neighbors: [{ address: "172.16.1.100", mac: "02:aa:bb:cc:dd:ee" }],
    });
  });

  it("endpoint: dst addresses and routes, no neighbours", () => {
    assert.deepEqual(endpointIpPlan(p2p()), {
      addresses: ["172.16.1.100/32"],
      routes: [{ dst: "172.16.1.101/32", scope: "universe" }],
      neighbors: [],
    });
  });

  it("route prefixes are masked; addresses keep their host part", () => {
    const ipc = create(IPContextSchema, { srcIpAddrs: ["10.0.0.5/24"], dstIpAddrs: ["10.1.0.1/16"] });
    assert.deepEqual(clientIpPlan(ipc).addresses, ["10.0.0.5/24"]);
    assert.deepEqual(clientIpPlan(ipc).routes, [{ dst: "10.1.0.0/16", scope: "link" }]);
  });

  it("diff: removes what is gone, adds what is new, replaces changed routes", () => {
    const from = clientIpPlan(p2p());
    const changed = p2p();
    changed.srcIpAddrs = ["172.16.1.103/32"];
    changed.srcRoutes = [route("172.16.1.100/32", "172.16.1.100"), route("10.9.0.0/16")];
    const to = clientIpPlan(changed);
    const d = diffIpPlans(from, to);
    assert.deepEqual(d.removeAddresses, ["172.16.1.101/32"]);
    assert.deepEqual(d.addAddresses, ["172.16.1.103/32"]);
    assert.deepEqual(d.removeRoutes, []);
    assert.deepEqual(d.addRoutes, [
      { dst: "10.9.0.0/16", gateway: "172.16.1.100", scope: "universe" },
      { dst: "172.16.1.100/32", gateway: "172.16.1.100", scope: "universe" },
    ]);
    assert.deepEqual(diffIpPlans(to, to), {
      removeAddresses: [],
      addAddresses: [],
      removeRoutes: [],
      addRoutes: [],
      removeNeighbors: [],
      addNeighbors: [],
    });
    assert.equal(diffIpPlans(to, to, true).addRoutes.length, 2, "force re-applies everything");
  });
});
