// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConnectionContextSchema, create, IPContextSchema, newMechanism, Param } from "../../../api/index.js";
import { bind, chain } from "../../../sdk/core/chain.js";
import { CallContext } from "../../../sdk/core/context.js";
import { checkRequest } from "../../../sdk/testing/elements.js";
import { nscRequest } from "../../../sdk/testing/requests.js";
import { createFakeKernel } from "../../fake.js";
import {
  BRIDGE_PEER_LABEL,
  bridgePortClient,
  clientMtuServer,
  kernelBridgeServer,
  setupBridgeDomain,
  unlessBridgePeer,
} from "./index.js";

const until = async (cond: () => Promise<boolean>) => {
  for (let i = 0; i < 400 && !(await cond()); i++) await new Promise((r) => setTimeout(r, 5));
};

describe("kernel bridge: clients' ports on one bridge", () => {
  it("the bridge has the gateway address; each port joins it and loses the address the forwarder gave it", async () => {
    const kernel = createFakeKernel();
    await setupBridgeDomain(kernel, undefined, "nsm-br", "172.16.2.1/24");
    const br = await kernel.getLink(undefined, "nsm-br");
    assert.equal(br.kind, "bridge");
    assert.deepEqual(
      (await kernel.listAddresses(undefined, { link: "nsm-br" })).map((a) => a.cidr),
      ["172.16.2.1/24"],
    );
    const h = bind(chain(kernelBridgeServer({ kernel, bridge: "nsm-br", gateway: "172.16.2.1/24", pollMs: 2 })));
    const ports: string[] = [];
    for (const id of ["a", "b"]) {
      const req = nscRequest("bridge", id);
      req.connection!.mechanism = newMechanism("LOCAL", "KERNEL", { [Param.NAME]: `port-${id}` });
      // subnetipam, before this element, gives the connection the gateway as its endpoint address.
      req.connection!.context = create(ConnectionContextSchema, {
        ipContext: create(IPContextSchema, { dstIpAddrs: ["172.16.2.1/24"] }),
      });
      const conn = await h.request(req, CallContext.create());
      // The forwarder makes the endpoint's end and gives it dst_ip_addrs after the Request returned.
      await kernel.createVeth(undefined, { name: `port-${id}`, peer: { name: `peer-${id}` } });
      await kernel.replaceAddress(undefined, `port-${id}`, "172.16.2.1/24");
      ports.push(`port-${id}`);
      assert.equal(conn.mechanism?.parameters[Param.NAME], `port-${id}`);
    }
    for (const port of ports) {
      await until(async () => (await kernel.listAddresses(undefined, { link: port })).length === 0);
      assert.equal((await kernel.getLink(undefined, port)).masterIndex, br.index, port);
      assert.deepEqual(await kernel.listAddresses(undefined, { link: port }), [], port);
    }
  });

  it("a connection without a KERNEL mechanism is passed through untouched", async () => {
    const kernel = createFakeKernel();
    const seen: string[] = [];
    const h = bind(
      chain(
        kernelBridgeServer({ kernel, bridge: "nsm-br", gateway: "172.16.2.1/24" }),
        checkRequest((r) => {
          seen.push(r.connection!.id);
        }),
      ),
    );
    const conn = await h.request(nscRequest("bridge", "x"), CallContext.create());
    assert.equal(conn.id, "x");
    assert.deepEqual(seen, ["x"]);
    assert.deepEqual(
      (await kernel.listLinks(undefined)).map((l) => l.name).filter((n) => n !== "lo"),
      [],
    );
  });
});

describe("kernel bridge: domain elements", () => {
  const peerRequest = (id: string) => {
    const req = nscRequest("bridge", id);
    req.connection!.labels = { [BRIDGE_PEER_LABEL]: "nse-2" };
    return req;
  };

  it("unlessBridgePeer: a peer connection passes by the wrapped element; a client's goes through it", async () => {
    const seen: string[] = [];
    const h = bind(
      chain(
        unlessBridgePeer(
          checkRequest((r) => {
            seen.push(r.connection!.id);
          }),
        ),
      ),
    );
    await h.request(peerRequest("peer"), CallContext.create());
    await h.request(nscRequest("bridge", "client"), CallContext.create());
    assert.deepEqual(seen, ["client"]);
  });

  it("clientMtuServer lowers the connection's MTU to the domain's, never raises it", async () => {
    const h = bind(chain(clientMtuServer(1450)));
    const req = nscRequest("bridge", "c");
    req.connection!.context = create(ConnectionContextSchema, { MTU: 1500 });
    assert.equal((await h.request(req, CallContext.create())).context?.MTU, 1450);
    req.connection!.context = create(ConnectionContextSchema, { MTU: 1400 });
    assert.equal((await h.request(req, CallContext.create())).context?.MTU, 1400);
  });

  it("bridgePortClient puts the requester's port on the bridge without its addresses", async () => {
    const kernel = createFakeKernel();
    await setupBridgeDomain(kernel, undefined, "nsm-br", "172.16.3.64/24");
    await kernel.createVeth(undefined, { name: "bdp-x", peer: { name: "far" } });
    await kernel.replaceAddress(undefined, "bdp-x", "172.16.3.9/24");
    const h = bind(chain(bridgePortClient({ kernel, bridge: "nsm-br" }, "bdp-x")));
    await h.request(peerRequest("peer"), CallContext.create());
    const br = await kernel.getLink(undefined, "nsm-br");
    assert.equal((await kernel.getLink(undefined, "bdp-x")).masterIndex, br.index);
    assert.deepEqual(await kernel.listAddresses(undefined, { link: "bdp-x" }), []);
  });
});
