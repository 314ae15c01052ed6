// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ConnectionSchema, create, NetworkServiceRequestSchema, type PolicyRoute } from "../../../../api/index.js";
import { bind, chain, passThrough } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { Code, NsmError } from "../../../core/errors.js";
import { silentLogger } from "../../../core/logger.js";
import { metadataServer } from "../metadata/index.js";
import { point2pointIpamServer } from "../point2pointipam/index.js";
import { parsePolicyRoutes, policyRouteServer, watchPolicyRoutes } from "./index.js";

const isInvalid = (pattern: RegExp) => (e: unknown) =>
  e instanceof NsmError && e.code === Code.InvalidArgument && pattern.test(e.rawMessage);

describe("parsePolicyRoutes (upstream's config.yaml)", () => {
  it("reads upstream's keys, numbers and ranges as text, routes with next hops", () => {
    const [a, b] = parsePolicyRoutes(`
- from: 172.16.2.201/24
  proto: 6
  dstport: 6666
  routes:
    - prefix: 172.16.3.0/24
      nexthop: 172.16.2.200
- proto: udp
  dstPort: 6667-6670
  src_port: "5555"
`);
    assert.deepEqual(
      [a!.from, a!.proto, a!.dstPort, a!.srcPort, a!.routes.map((r) => [r.prefix, r.nextHop])],
      ["172.16.2.201/24", "6", "6666", "", [["172.16.3.0/24", "172.16.2.200"]]],
    );
    assert.deepEqual([b!.proto, b!.dstPort, b!.srcPort, b!.routes], ["udp", "6667-6670", "5555", []]);
    assert.deepEqual(parsePolicyRoutes(""), []);
  });

  it("bad input names the policy and the field", () => {
    assert.throws(() => parsePolicyRoutes("- fromm: 1.2.3.4/32"), isInvalid(/policy 1: unknown key "fromm"/));
    assert.throws(() => parsePolicyRoutes("- proto: 6\n- dstport: 6670-6667"), isInvalid(/policy 2: .*dstport/));
    assert.throws(() => parsePolicyRoutes("- proto: 300"), isInvalid(/proto/));
    assert.throws(() => parsePolicyRoutes("- from: 10.0.0.1/8\n  routes: [{prefix: fd00::/8}]"), isInvalid(/family/));
    assert.throws(() => parsePolicyRoutes("- routes: [{prefix: 10.0.0.0/8, nexthop: fd00::1}]"), isInvalid(/next hop/));
    assert.throws(() => parsePolicyRoutes("from: 1.2.3.4"), isInvalid(/list of policies/));
    assert.throws(() => parsePolicyRoutes("- [a"), isInvalid(/not YAML/));
  });
});

describe("policyRouteServer", () => {
  it("sets the policies, adds their 'from' as client addresses and replaces them on refresh", async () => {
    let policies: PolicyRoute[] = parsePolicyRoutes("- from: 172.16.2.201/24\n  proto: 6\n- proto: 17");
    const h = bind(
      chain(
        metadataServer(),
        point2pointIpamServer({ prefixes: ["172.16.1.100/31"] }),
        policyRouteServer(() => policies),
        passThrough("end"),
      ),
    );
    const req = create(NetworkServiceRequestSchema, { connection: create(ConnectionSchema, { id: "c1" }) });
    const conn = await h.request(req, CallContext.create());
    const ipc = conn.context!.ipContext!;
    assert.deepEqual(ipc.srcIpAddrs, ["172.16.1.101/32", "172.16.2.201/24"]);
    assert.equal(ipc.policies.length, 2);
    policies = parsePolicyRoutes("- from: 172.16.5.1/24");
    const again = await h.request(create(NetworkServiceRequestSchema, { connection: conn }), CallContext.create());
    assert.deepEqual(again.context!.ipContext!.srcIpAddrs, ["172.16.1.101/32", "172.16.5.1/24"]);
    assert.deepEqual(
      again.context!.ipContext!.policies.map((p) => p.from),
      ["172.16.5.1/24"],
    );
  });
});

describe("watchPolicyRoutes", () => {
  it("a missing file is no policies; a change is picked up; a bad change keeps the last good policies", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pbr-"));
    const path = join(dir, "config.yaml");
    const source = watchPolicyRoutes(path, silentLogger, 20);
    try {
      assert.deepEqual(source.get(), []);
      writeFileSync(path, "- proto: 6\n");
      const until = async (ok: () => boolean) => {
        for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
        assert.ok(ok());
      };
      await until(() => source.get().length === 1);
      writeFileSync(path, "- proto: nope\n");
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(source.get()[0]?.proto, "6");
      writeFileSync(path, "bad: [");
      assert.throws(() => watchPolicyRoutes(path, silentLogger), isInvalid(/config.yaml/));
    } finally {
      source.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
