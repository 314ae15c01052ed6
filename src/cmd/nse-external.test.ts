// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, Env } from "./env.js";
import { outsidePlanOf, parseRemoteVlanServices } from "./nse-external.js";

const plan = (vars: Record<string, string>) => outsidePlanOf(new Env(vars), "ext", "172.16.5.0/24");

describe("nsm nse external: configuration", () => {
  it("reads upstream remote-vlan's NSM_SERVICES: names, with vlan and via when given", () => {
    assert.deepEqual(parseRemoteVlanServices("finance-bridge { vlan: 100; via: gw1 }, shadow-gw, hr { vlan: 300 }"), [
      { name: "finance-bridge", vlan: 100, via: "gw1" },
      { name: "shadow-gw", vlan: undefined, via: undefined },
      { name: "hr", vlan: 300, via: undefined },
    ]);
  });

  it("defaults: one outside address, routes to its network, a /30 uplink, NAT on", () => {
    const p = plan({ NSM_EXTERNAL_NETNS: "outside-1" });
    assert.deepEqual(p, {
      netns: "outside-1",
      endpointUplink: "192.0.2.1/30",
      routerUplink: "192.0.2.2/30",
      outsideAddresses: ["203.0.113.1/24"],
      routes: ["203.0.113.0/24"],
      clientSubnet: "172.16.5.0/24",
      nat: true,
    });
    const p31 = plan({ NSM_UPLINK_CIDR: "10.9.0.0/31", NSM_EXTERNAL_ROUTES: "0.0.0.0/0", NSM_EXTERNAL_NAT: "false" });
    assert.deepEqual(
      [p31.endpointUplink, p31.routerUplink, p31.routes, p31.nat],
      ["10.9.0.0/31", "10.9.0.1/31", ["0.0.0.0/0"], false],
    );
  });

  it("a bad value stops the endpoint with the variable and the item named", () => {
    const bad: [Record<string, string>, RegExp][] = [
      [{ NSM_EXTERNAL_ADDRESSES: "203.0.113.1/24,nope" }, /NSM_EXTERNAL_ADDRESSES="nope"/],
      [{ NSM_EXTERNAL_ADDRESSES: "172.16.5.9/24" }, /overlaps NSM_CIDR_PREFIX/],
      [{ NSM_EXTERNAL_ADDRESSES: "192.0.2.0/24" }, /overlaps NSM_UPLINK_CIDR/],
      [{ NSM_EXTERNAL_ROUTES: "10.0.0.0/33" }, /NSM_EXTERNAL_ROUTES="10.0.0.0\/33"/],
      [{ NSM_UPLINK_CIDR: "192.0.2.1/32" }, /NSM_UPLINK_CIDR.*two addresses/],
      [{ NSM_EXTERNAL_NETNS: "../etc" }, /NSM_EXTERNAL_NETNS.*not a netns name/],
    ];
    for (const [vars, message] of bad)
      assert.throws(
        () => plan(vars),
        (e: Error) => e instanceof ConfigError && message.test(e.message),
        JSON.stringify(vars),
      );
  });
});
