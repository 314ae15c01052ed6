// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConnectionContextSchema, create, IPContextSchema } from "../../../../api/index.js";
import { bind, chain, type NetworkServiceHandler } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { Code, NsmError } from "../../../core/errors.js";
import { injectError } from "../../../testing/elements.js";
import { nscRequest } from "../../../testing/requests.js";
import { metadataServer } from "../metadata/index.js";
import { subnetIpam } from "./index.js";

const ctx = () => CallContext.create();

function request(id: string, asked?: string) {
  const req = nscRequest("bridge", id);
  if (asked)
    req.connection!.context = create(ConnectionContextSchema, {
      ipContext: create(IPContextSchema, { srcIpAddrs: [asked] }),
    });
  return req;
}

describe("subnetipam", () => {
  it("keeps the first host for the endpoint and gives clients the next ones, with the subnet's length", async () => {
    const ipam = subnetIpam("172.16.2.0/29");
    assert.equal(ipam.gateway, "172.16.2.1/29");
    const h: NetworkServiceHandler = bind(chain(metadataServer(), ipam.server));
    const a = await h.request(request("a"), ctx());
    const b = await h.request(request("b"), ctx());
    assert.deepEqual(a.context?.ipContext?.srcIpAddrs, ["172.16.2.2/29"]);
    assert.deepEqual(a.context?.ipContext?.dstIpAddrs, ["172.16.2.1/29"]);
    assert.deepEqual(b.context?.ipContext?.srcIpAddrs, ["172.16.2.3/29"]);
    assert.deepEqual(a.context?.ipContext?.srcRoutes, [], "on-link: no routes");
    // A refresh keeps the address; a Close frees it for the next client.
    const again = await h.request({ ...request("a"), connection: a }, ctx());
    assert.deepEqual(again.context?.ipContext?.srcIpAddrs, ["172.16.2.2/29"]);
    await h.close(a, ctx());
    const c = await h.request(request("c"), ctx());
    assert.deepEqual(c.context?.ipContext?.srcIpAddrs, ["172.16.2.2/29"]);
  });

  it("gives a client the free address it asks for, and refuses one outside the subnet", async () => {
    const ipam = subnetIpam("172.16.2.0/24");
    const h = bind(chain(metadataServer(), ipam.server));
    const a = await h.request(request("a", "172.16.2.77/24"), ctx());
    assert.deepEqual(a.context?.ipContext?.srcIpAddrs, ["172.16.2.77/24"]);
    await assert.rejects(
      h.request(request("b", "10.0.0.5/24"), ctx()),
      (e: NsmError) =>
        e.code === Code.InvalidArgument && /10\.0\.0\.5\/24 is outside the subnet 172\.16\.2\.0\/24/.test(e.message),
    );
    // The refused client took nothing: the next one gets the lowest free address.
    const c = await h.request(request("c"), ctx());
    assert.deepEqual(c.context?.ipContext?.srcIpAddrs, ["172.16.2.2/24"]);
  });

  it("an exhausted subnet is ResourceExhausted; a failed Request frees its address", async () => {
    const ipam = subnetIpam("172.16.2.0/30"); // .1 endpoint, .2 the only client address
    const failing = bind(
      chain(
        metadataServer(),
        ipam.server,
        injectError(() => new NsmError("down", Code.Unavailable)),
      ),
    );
    await assert.rejects(failing.request(request("x"), ctx()), (e: NsmError) => e.code === Code.Unavailable);
    const h = bind(chain(metadataServer(), ipam.server));
    const a = await h.request(request("a"), ctx());
    assert.deepEqual(a.context?.ipContext?.srcIpAddrs, ["172.16.2.2/30"]);
    await assert.rejects(h.request(request("b"), ctx()), (e: NsmError) => e.code === Code.ResourceExhausted);
  });

  it("with a range, hands out only the range (subnet's length) and refuses the rest of the subnet", async () => {
    const ipam = subnetIpam("172.16.3.0/24", "172.16.3.16/28");
    assert.equal(ipam.gateway, "172.16.3.16/24");
    const h = bind(chain(metadataServer(), ipam.server));
    const a = await h.request(request("a"), ctx());
    assert.deepEqual(a.context?.ipContext?.srcIpAddrs, ["172.16.3.17/24"]);
    assert.deepEqual(a.context?.ipContext?.dstIpAddrs, ["172.16.3.16/24"]);
    await assert.rejects(
      h.request(request("b", "172.16.3.5/24"), ctx()),
      (e: NsmError) => e.code === Code.InvalidArgument && /outside the range 172\.16\.3\.16\/28/.test(e.message),
    );
    const low = subnetIpam("172.16.3.0/24", "172.16.3.0/28");
    assert.equal(low.gateway, "172.16.3.1/24", "the subnet's network address is never handed out");
    assert.throws(() => subnetIpam("172.16.3.0/24", "10.0.0.0/28"), /not inside the subnet 172\.16\.3\.0\/24/);
  });
});
