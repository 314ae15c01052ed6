// SPDX-License-Identifier: Apache-2.0
/**
 * Mixed meshes: upstream NSM's own commands and ours on one node, every process attested by our
 * identity provider, each case a kernel2kernel connection that pings both ways. The all-ours row
 * is the control that proves the harness; a row needing an upstream command the peers script
 * could not build is skipped with the build command and its error (test/helpers/peers.ts).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { kernelSkipReason } from "../helpers/netns.js";
import { missingPeers } from "../helpers/peers.js";
import { type Impl, ipv4Of, MixedMesh, ping, upstreamPeers } from "./mixed.js";

interface Case {
  readonly title: string;
  readonly registry: Impl;
  readonly nsmgr: Impl;
  readonly nse: Impl;
  readonly client: Impl;
  readonly clientRole: "nsc" | "nsc-init";
}

const CASES: Case[] = [
  { title: "all ours (control)", registry: "ours", nsmgr: "ours", nse: "ours", client: "ours", clientRole: "nsc" },
  {
    title: "upstream registry-memory + upstream nsmgr + OUR forwarder + upstream icmp-responder + upstream nsc",
    registry: "upstream",
    nsmgr: "upstream",
    nse: "upstream",
    client: "upstream",
    clientRole: "nsc",
  },
  {
    title: "our registry + nsmgr + forwarder with upstream icmp-responder and upstream nsc",
    registry: "ours",
    nsmgr: "ours",
    nse: "upstream",
    client: "upstream",
    clientRole: "nsc",
  },
  {
    title: "our registry + nsmgr + forwarder with upstream icmp-responder and upstream nsc-init",
    registry: "ours",
    nsmgr: "ours",
    nse: "upstream",
    client: "upstream",
    clientRole: "nsc-init",
  },
  {
    title: "our NSC and our NSE through upstream nsmgr and upstream registry",
    registry: "upstream",
    nsmgr: "upstream",
    nse: "ours",
    client: "ours",
    clientRole: "nsc",
  },
];

const baseSkip = kernelSkipReason();

for (const c of CASES) {
  const peers = upstreamPeers({ registry: c.registry, nsmgr: c.nsmgr, nse: c.nse, [c.clientRole]: c.client });
  const skip = baseSkip ?? (peers.length ? missingPeers(...peers) : undefined);

  describe(`interop mesh: ${c.title}`, { skip }, () => {
    let mesh: MixedMesh;
    let nseNs = "";
    let nscNs = "";

    before(async () => {
      mesh = new MixedMesh();
      await mesh.startIdentityProvider();
      await mesh.startControlPlane(c.registry, c.nsmgr);
      nseNs = await mesh.endpoint(c.nse, "icmp-responder", "icmp-mixed", "172.16.88.0/29");
      nscNs = await mesh.client(c.clientRole, c.client, "nsc", "icmp-mixed");
    });
    after(() => mesh?.close());

    it("the client has nsm-1 with an address and the endpoint an interface in the same subnet", () => {
      const [clientAddr] = ipv4Of(nscNs, "nsm-1");
      const endpointAddrs = ipv4Of(nseNs);
      assert.match(clientAddr ?? "", /^172\.16\.88\.[0-7]$/, mesh.tails());
      assert.equal(endpointAddrs.length, 1, `endpoint addresses: ${endpointAddrs}`);
      assert.match(endpointAddrs[0]!, /^172\.16\.88\.[0-7]$/);
    });

    it("the client pings the endpoint and the endpoint pings the client", () => {
      const [clientAddr] = ipv4Of(nscNs, "nsm-1");
      const [endpointAddr] = ipv4Of(nseNs);
      const there = ping(nscNs, endpointAddr!);
      assert.ok(there.ok, `${there.output}\n${mesh.tails()}`);
      const back = ping(nseNs, clientAddr!);
      assert.ok(back.ok, `${back.output}\n${mesh.tails()}`);
    });
  });
}
