// SPDX-License-Identifier: Apache-2.0
/**
 * Policy-based routing on the real kernel: the forwarder's pbr element around the local
 * cross-connect, with an endpoint handing out upstream's example policies (IPv4 and IPv6).
 * Checks what `ip rule` / `ip route get` report in the client's netns after Request, that a
 * UDP datagram matching a policy leaves through nsm-1 (and one matching none has no route), and
 * that Close leaves only the default rules. Throwaway namespaces `nsmp-<hex>`, deleted in `after`.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import {
  Cls,
  ConnectionContextSchema,
  ConnectionSchema,
  clone,
  create,
  IPContextSchema,
  MechanismType,
  NetworkServiceRequestSchema,
  newMechanism,
} from "../../src/api/index.js";
import { createNetlinkKernel, type KernelApi } from "../../src/kernel/index.js";
import {
  insecureNetnsOwnership,
  kernelXconnectClient,
  kernelXconnectServer,
} from "../../src/kernel/networkservice/index.js";
import { policyRoutesServer } from "../../src/kernel/networkservice/pbr/index.js";
import { route, UPSTREAM_PBR_CONFIG } from "../../src/kernel/networkservice/testing.js";
import { bind, chain, type NetworkServiceElement, passThrough } from "../../src/sdk/core/chain.js";
import { CallContext } from "../../src/sdk/core/context.js";
import { connectServer } from "../../src/sdk/networkservice/common/connect/index.js";
import { mechanismsServer } from "../../src/sdk/networkservice/common/mechanisms/index.js";
import { mechanismTranslationClient } from "../../src/sdk/networkservice/common/mechanismtranslation/index.js";
import { metadataClient, metadataServer } from "../../src/sdk/networkservice/common/metadata/index.js";
import { parsePolicyRoutes } from "../../src/sdk/networkservice/common/policyroute/index.js";
import { ipJson, kernelSkipReason, NetnsSet, nsPath } from "../helpers/netns.js";

const skip = kernelSkipReason();
const namespaces = new NetnsSet("nsmp");

const POLICIES = parsePolicyRoutes(UPSTREAM_PBR_CONFIG);

function fakeNse(nseNetns: string): NetworkServiceElement {
  return {
    name: "fakeNse",
    async request(req) {
      const conn = clone(ConnectionSchema, req.connection!);
      conn.mechanism = newMechanism(Cls.LOCAL, MechanismType.KERNEL, { inodeURL: `file://${nseNetns}`, name: "nse-1" });
      conn.context = create(ConnectionContextSchema, {
        MTU: 1400,
        ipContext: create(IPContextSchema, {
          // What point2pointipam and policyroute give a client of upstream's example.
          srcIpAddrs: ["172.16.1.101/32", "172.16.2.201/24", "2004::3/120"],
          dstIpAddrs: ["172.16.1.100/32"],
          srcRoutes: [route("172.16.1.100/32")],
          dstRoutes: [route("172.16.1.101/32")],
          policies: POLICIES,
        }),
      });
      return conn;
    },
    async close() {},
  };
}

/** `ip [-6] route get ARGS` in a netns, as one line. */
const routeGet = (ns: string, ...args: string[]) =>
  execFileSync("ip", ["-n", ns, ...args], { encoding: "utf8" })
    .replace(/\s+/g, " ")
    .trim();

/** Sends one UDP datagram from `ns`; the errno name when the kernel refuses it. */
function sendUdp(ns: string, host: string, port: number): string {
  const script = `const s=require("dgram").createSocket("udp4");s.send("x",${port},${JSON.stringify(host)},(e)=>{console.log(e?e.code:"sent");s.close();});`;
  const r = spawnSync("ip", ["netns", "exec", ns, process.execPath, "-e", script], { encoding: "utf8" });
  return r.stdout.trim();
}

const rxPackets = (ns: string, dev: string) => ipJson(ns, "-s", "link", "show", dev)[0].stats64.rx.packets as number;

describe("pbr on the real kernel", { skip }, () => {
  let kernel: KernelApi;
  let nsc: string;
  let nse: string;

  before(() => {
    kernel = createNetlinkKernel();
    [nsc, nse] = [namespaces.add(), namespaces.add()] as [string, string];
  });
  after(async () => {
    await kernel?.close();
    for (const n of [nsc, nse]) if (n) namespaces.delete(n);
  });

  it("rules and tables after Request match upstream's example; traffic follows them; Close removes them", async () => {
    const fwd = bind(
      chain(
        metadataServer(),
        mechanismsServer({ KERNEL: passThrough("kernel") }),
        policyRoutesServer({ kernel }),
        kernelXconnectServer({ kernel, checkNetns: insecureNetnsOwnership().check }),
        connectServer(
          chain(metadataClient(), mechanismTranslationClient(), kernelXconnectClient(), fakeNse(nsPath(nse))),
        ),
      ),
    );
    const baseRules = ipJson(nsc, "rule").length + ipJson(nsc, "-6", "rule").length;
    const conn = await fwd.request(
      create(NetworkServiceRequestSchema, {
        connection: create(ConnectionSchema, { id: "pbr-1", networkService: "policy-based-routing" }),
        mechanismPreferences: [
          newMechanism(Cls.LOCAL, MechanismType.KERNEL, { inodeURL: `file://${nsPath(nsc)}`, name: "nsm-1" }),
        ],
      }),
      CallContext.create(),
    );
    const get = (...a: string[]) => routeGet(nsc, ...a);
    assert.match(
      get("route", "get", "172.16.3.1", "from", "172.16.2.201", "ipproto", "tcp", "dport", "6666"),
      /172\.16\.3\.1 from 172\.16\.2\.201 via 172\.16\.2\.200 dev nsm-1 table 1/,
    );
    assert.match(
      get("route", "get", "172.16.3.1", "from", "172.16.2.201", "ipproto", "tcp", "sport", "5555"),
      /172\.16\.3\.1 from 172\.16\.2\.201 dev nsm-1 table 2/,
    );
    assert.match(
      get("route", "get", "172.16.4.1", "ipproto", "udp", "dport", "6666"),
      /172\.16\.4\.1 dev nsm-1 table 3 src 172\.16\.1\.101/,
    );
    assert.match(
      get("route", "get", "172.16.4.1", "ipproto", "udp", "dport", "6668"),
      /172\.16\.4\.1 dev nsm-1 table 4 src 172\.16\.1\.101/,
    );
    assert.match(
      get("-6", "route", "get", "2004::5", "from", "2004::3", "ipproto", "udp", "dport", "5555"),
      /via 2004::6 dev nsm-1 table 5 src 2004::3/,
    );
    const rules = ipJson(nsc, "rule").filter((r) => r.table !== "local" && r.table !== "main" && r.table !== "default");
    assert.deepEqual(
      rules.map((r) => r.priority),
      [32762, 32763, 32764, 32765],
      JSON.stringify(rules),
    );

    const before = rxPackets(nse, "nse-1");
    assert.equal(sendUdp(nsc, "172.16.4.1", 6666), "sent");
    // The datagram (or the ARP request for its destination, on-link in table 3) reached the endpoint.
    assert.ok(rxPackets(nse, "nse-1") > before, "traffic left through nsm-1");
    assert.equal(sendUdp(nsc, "172.16.4.1", 7000), "ENETUNREACH", "no policy, no route");

    await fwd.close(conn, CallContext.create());
    assert.equal(
      ipJson(nsc, "rule").length + ipJson(nsc, "-6", "rule").length,
      baseRules,
      "only the default rules left",
    );
    assert.deepEqual(
      ipJson(nsc, "route", "show", "table", "all").filter((r) => r.table && /^\d+$/.test(String(r.table))),
      [],
    );
  });
});
