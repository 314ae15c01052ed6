// SPDX-License-Identifier: Apache-2.0
/**
 * The pbr element against the fake KernelApi, in a forwarder-shaped chain: metadata →
 * mechanisms(KERNEL) → pbr → kernelXconnectServer → connect(client → fake NSE). The fake NSE
 * answers with point-to-point addresses and the policies of upstream's PBR example.
 */
import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import {
  Cls,
  type Connection,
  ConnectionContextSchema,
  ConnectionSchema,
  clone,
  create,
  type IPContext,
  IPContextSchema,
  MechanismType,
  NetworkServiceRequestSchema,
  newMechanism,
  type PolicyRoute,
} from "../../../api/index.js";
import { bind, chain, type NetworkServiceHandler, passThrough } from "../../../sdk/core/chain.js";
import { CallContext } from "../../../sdk/core/context.js";
import { Code, NsmError } from "../../../sdk/core/errors.js";
import { connectServer } from "../../../sdk/networkservice/common/connect/index.js";
import { mechanismsServer } from "../../../sdk/networkservice/common/mechanisms/index.js";
import { mechanismTranslationClient } from "../../../sdk/networkservice/common/mechanismtranslation/index.js";
import { metadataClient, metadataServer } from "../../../sdk/networkservice/common/metadata/index.js";
import { parsePolicyRoutes } from "../../../sdk/networkservice/common/policyroute/index.js";
import { createFakeKernel, type FakeKernel } from "../../fake.js";
import { kernelXconnectClient, kernelXconnectServer } from "../index.js";
import { route, UPSTREAM_PBR_CONFIG, uncheckedNetns } from "../testing.js";
import { pbrPolicies, policyRoutesServer } from "./index.js";

const NSC = "/var/run/netns/nsc";
const NSE = "/var/run/netns/nse";
const NSE2 = "/var/run/netns/nse2";
const ctx = () => CallContext.create();

function ipContext(policies: PolicyRoute[]): IPContext {
  return create(IPContextSchema, {
    srcIpAddrs: ["172.16.1.101/32", ...new Set(policies.map((p) => p.from).filter((f) => f))],
    dstIpAddrs: ["172.16.1.100/32"],
    srcRoutes: [route("172.16.1.100/32")],
    dstRoutes: [route("172.16.1.101/32")],
    policies,
  });
}

function request(conn?: Connection) {
  return create(NetworkServiceRequestSchema, {
    connection: conn ?? create(ConnectionSchema, { id: "conn-1", networkService: "pbr" }),
    mechanismPreferences: conn
      ? []
      : [newMechanism(Cls.LOCAL, MechanismType.KERNEL, { inodeURL: `file://${NSC}`, name: "nsm-1" })],
  });
}

describe("pbr: policies as ip rules and tables in the client's netns (fake kernel)", () => {
  let fake: FakeKernel;
  let fwd: NetworkServiceHandler;
  let policies: PolicyRoute[];
  let nseNetns: string;

  beforeEach(() => {
    fake = createFakeKernel();
    for (const ns of [NSC, NSE, NSE2]) fake.addNetns(ns);
    policies = parsePolicyRoutes(UPSTREAM_PBR_CONFIG);
    nseNetns = NSE;
    const nse = {
      name: "fakeNse",
      async request(req: { connection?: Connection }) {
        const conn = clone(ConnectionSchema, req.connection!);
        conn.mechanism = newMechanism(Cls.LOCAL, MechanismType.KERNEL, {
          inodeURL: `file://${nseNetns}`,
          name: "nse-1",
        });
        conn.context = create(ConnectionContextSchema, { ipContext: ipContext(policies), MTU: 1400 });
        return conn;
      },
      async close() {},
    };
    fwd = bind(
      chain(
        metadataServer(),
        mechanismsServer({ KERNEL: passThrough("kernel") }),
        policyRoutesServer({ kernel: fake }),
        kernelXconnectServer({ kernel: fake, checkNetns: uncheckedNetns.check }),
        connectServer(chain(metadataClient(), mechanismTranslationClient(), kernelXconnectClient(), nse)),
      ),
    );
  });

  const ours = async () => (await fake.listRules(NSC)).filter((r) => r.table > 0 && r.table < 253);
  const table = async (t: number) =>
    (await fake.listRoutes(NSC, { table: t })).map((r) => `${r.dst}${r.gateway ? ` via ${r.gateway}` : ""}`);

  it("programs upstream's example: tables 1-5 with their rules, v4 and v6; Close removes them", async () => {
    const conn = await fwd.request(request(), ctx());
    const rules = await ours();
    assert.deepEqual(
      rules.map((r) => [r.family, r.table, r.src, r.ipProto, r.sport, r.dport]),
      [
        [4, 4, undefined, 17, undefined, { start: 6667, end: 6670 }],
        [4, 3, undefined, 17, undefined, { start: 6666, end: 6666 }],
        [4, 2, "172.16.2.0/24", 6, { start: 5555, end: 5555 }, undefined],
        [4, 1, "172.16.2.0/24", 6, undefined, { start: 6666, end: 6666 }],
        [6, 5, "2004::/120", 17, undefined, { start: 5555, end: 5555 }],
      ],
    );
    assert.deepEqual(await table(1), ["172.16.3.0/24 via 172.16.2.200"]);
    assert.deepEqual(await table(2), ["0.0.0.0/0"]);
    assert.deepEqual(await table(5), ["2004::/120 via 2004::6"]);
    const t1 = (await fake.listRoutes(NSC, { table: 1 }))[0]!;
    assert.equal(t1.linkIndex, (await fake.getLink(NSC, "nsm-1")).index, "through the nsm interface");
    assert.equal(t1.onlink, true);

    await fwd.close(conn, ctx());
    assert.deepEqual(await ours(), []);
    assert.deepEqual(await fake.listRoutes(NSC, { table: 0 }), []);
  });

  it("a refresh with the same policies touches nothing; a changed one is replaced, the others kept", async () => {
    const conn = await fwd.request(request(), ctx());
    const before = await fake.listRules(NSC);
    const again = await fwd.request(request(conn), ctx());
    assert.deepEqual(await fake.listRules(NSC), before);
    policies = policies.filter((p) => p.proto !== "17" || p.dstPort !== "6666");
    policies[0]!.routes[0]!.prefix = "172.16.9.0/24";
    await fwd.request(request(again), ctx());
    assert.deepEqual((await ours()).map((r) => r.table).sort(), [1, 2, 4, 5], "tables 1 and 3 freed, 1 reused");
    assert.deepEqual(await table(1), ["172.16.9.0/24 via 172.16.2.200"]);
    assert.deepEqual(await table(3), []);
    await fwd.close(again, ctx());
    assert.deepEqual(await ours(), []);
  });

  it("a heal to another endpoint replaces nsm-1: the tables' routes follow the new interface", async () => {
    const conn = await fwd.request(request(), ctx());
    const before = (await fake.getLink(NSC, "nsm-1")).index;
    nseNetns = NSE2;
    const healed = await fwd.request(request(conn), ctx());
    const after = (await fake.getLink(NSC, "nsm-1")).index;
    assert.notEqual(after, before, "the cross-connect made a new interface");
    assert.deepEqual(await table(1), ["172.16.3.0/24 via 172.16.2.200"]);
    assert.equal((await fake.listRoutes(NSC, { table: 1 }))[0]!.linkIndex, after);
    assert.equal((await ours()).length, 5, "the rules stay, not doubled");
    await fwd.close(healed, ctx());
    assert.deepEqual(await ours(), []);
  });

  it("tables are numbered past those the netns already uses", async () => {
    await fake.createVeth(NSC, { name: "other", peer: { name: "other-p" } });
    await fake.setLink(NSC, "other", { up: true });
    await fake.replaceRoute(NSC, { dst: "10.0.0.0/8", link: "other", table: 1 });
    await fake.addRule(NSC, { family: 4, table: 2 });
    const conn = await fwd.request(request(), ctx());
    assert.deepEqual(
      (await ours())
        .filter((r) => r.ipProto !== undefined)
        .map((r) => r.table)
        .sort(),
      [3, 4, 5, 6, 7],
    );
    await fwd.close(conn, ctx());
    assert.deepEqual(
      (await ours()).map((r) => r.table),
      [2],
      "only what was there before",
    );
  });

  it("a malformed policy is InvalidArgument and leaves nothing behind", async () => {
    policies = parsePolicyRoutes(UPSTREAM_PBR_CONFIG);
    policies[1]!.dstPort = "70000";
    await assert.rejects(
      fwd.request(request(), ctx()),
      (e: unknown) => e instanceof NsmError && e.code === Code.InvalidArgument,
    );
    assert.deepEqual(await ours(), []);
    assert.deepEqual(
      (await fake.listLinks(NSC)).map((l) => l.name),
      ["lo"],
    );
  });
});

describe("pbrPolicies", () => {
  it("families from 'from', else the routes, else IPv4; a policy without routes gets a default route", () => {
    const plans = pbrPolicies(
      ipContext(
        parsePolicyRoutes(`
- proto: tcp
- routes: [{prefix: "fd00::/64"}]
- from: 2004::3
`),
      ),
    );
    assert.deepEqual(
      plans.map((p) => [p.rule, p.routes]),
      [
        [{ family: 4, ipProto: 6 }, [{ dst: "0.0.0.0/0" }]],
        [{ family: 6 }, [{ dst: "fd00::/64" }]],
        [{ family: 6, src: "2004::3/128" }, [{ dst: "::/0" }]],
      ],
    );
  });
});
