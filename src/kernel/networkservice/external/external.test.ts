// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bind, chain } from "../../../sdk/core/chain.js";
import { CallContext } from "../../../sdk/core/context.js";
import { nscRequest } from "../../../sdk/testing/requests.js";
import { externalRoutesServer, NAT_TABLE, natRuleset } from "./index.js";

describe("external (kernel): routes and NAT", () => {
  it("clients get a route to every outside prefix through the endpoint, once", async () => {
    const h = bind(chain(externalRoutesServer({ routes: ["203.0.113.0/24", "0.0.0.0/0"], gateway: "172.16.5.1/24" })));
    const first = await h.request(nscRequest("external", "c"), CallContext.create());
    const routes = first.context?.ipContext?.srcRoutes.map((r) => `${r.prefix} via ${r.nextHop}`);
    assert.deepEqual(routes, ["203.0.113.0/24 via 172.16.5.1", "0.0.0.0/0 via 172.16.5.1"]);
    const again = await h.request({ ...nscRequest("external", "c"), connection: first }, CallContext.create());
    assert.equal(again.context?.ipContext?.srcRoutes.length, 2, "a refresh adds no duplicate");
  });

  it("the NAT masquerades the clients' subnet leaving through the uplink only", () => {
    const rules = natRuleset("172.16.5.0/24");
    assert.match(rules, new RegExp(`table ip ${NAT_TABLE} \\{`));
    assert.match(rules, /type nat hook postrouting priority srcnat/);
    assert.match(rules, /oifname "ext0" ip saddr 172\.16\.5\.0\/24 masquerade/);
  });
});
