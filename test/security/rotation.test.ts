// SPDX-License-Identifier: Apache-2.0
/**
 * SVID rotation during a live connection, through real processes: every SVID of the mesh lives
 * 10 s (rotated at 5 s), the client refreshes its connection through two rotations of every
 * component, and the connection stays up — same interface, pings answered, no policy failure,
 * no timeout — with refreshes signed by the new certificates. (Servers close a connection whose
 * client token expires within a request timeout, so the request timeout here is 1 s.)
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import {
  ConnectionSchema,
  MonitorConnection,
  MonitorScopeSelectorSchema,
  NetworkServiceRequestSchema,
} from "../../src/api/index.js";
import { CallContext } from "../../src/sdk/core/context.js";
import { closeChannel, dialChannel } from "../../src/sdk/grpc/dial.js";
import { grpcClient } from "../../src/sdk/grpc/service.js";
import { createClient } from "../../src/sdk/networkservice/chains/client/index.js";
import { kernelMechanismClient } from "../../src/sdk/networkservice/common/kernelmechanism/index.js";
import { mechanismsClient } from "../../src/sdk/networkservice/common/mechanisms/index.js";
import { refreshClient } from "../../src/sdk/networkservice/common/refresh/index.js";
import { authorizeClient, decodeTokenClaims, verifyTokenSignature } from "../../src/security/index.js";
import { Mesh, skipReason } from "./harness.js";

const skip = skipReason();
const ctx = (ms = 1000) => CallContext.create({ deadline: Date.now() + ms });

describe("SVID rotation during a live connection (processes)", { skip, timeout: 90_000 }, () => {
  let mesh: Mesh;
  before(async () => {
    mesh = await Mesh.start({ svidTtl: "10s" });
  });
  after(() => mesh?.close());

  it("keeps the connection up across rotations; refreshes use the new certificates", async () => {
    const admin = await mesh.identity("admin", { ttlMs: 10_000 });
    const nseNetns = await mesh.endpoint("nse-r", "rot-svc", "172.16.8.100/31", admin);
    const me = await mesh.identity("nsc-r", { ttlMs: 10_000 });
    const h = mesh.holder("nsc-r", me.id);
    const stop = new AbortController();
    const client = createClient({
      name: "nsc-r",
      connectTo: mesh.nsmgrUrl,
      ...me.dial(),
      authorize: authorizeClient({ trustBundle: () => me.source.current().bundle }),
      refresh: refreshClient({ signal: stop.signal }),
      additional: [mechanismsClient({ KERNEL: kernelMechanismClient({ inodeUrl: h.url, interfaceName: "nsm-1" }) })],
    });
    const firstCert = me.source.current().svid.certificates[0]!;
    const conn = await client.request(
      create(NetworkServiceRequestSchema, {
        connection: create(ConnectionSchema, { id: "nsc-r-0", networkService: "rot-svc" }),
      }),
      ctx(),
    );
    const ifindex = (netns: string) =>
      JSON.parse(spawnSync("ip", ["-n", netns, "-j", "link", "show", "nsm-1"], { encoding: "utf8" }).stdout || "[]")[0]
        ?.ifindex as number | undefined;
    const clientIf = ifindex(h.netns);
    assert.ok(clientIf, "nsm-1 in the client");
    const endpointLinks = mesh.links(nseNetns).map((l) => l.ifname);
    const rotations: number[] = [];
    const unsubscribe = me.source.subscribe((s) => rotations.push(s.version));
    try {
      // Two rotations of everyone (each process rotates every 5 s).
      await new Promise((r) => setTimeout(r, 11_000));
      assert.ok(rotations.length >= 2, `the client rotated ${rotations.length} times`);
      assert.equal(ifindex(h.netns), clientIf, "the client's interface was never re-created");
      assert.deepEqual(
        mesh.links(nseNetns).map((l) => l.ifname),
        endpointLinks,
      );
      const dst = conn.context!.ipContext!.dstIpAddrs[0]!.split("/")[0]!;
      const ping = spawnSync("ip", ["netns", "exec", h.netns, "ping", "-c", "2", "-i", "0.2", "-W", "2", dst], {
        encoding: "utf8",
      });
      assert.equal(ping.status, 0, ping.stdout + ping.stderr);
      // nsmgr's view: the last refresh's token (segment 0) is signed by a later SVID of the client.
      const channel = dialChannel(mesh.nsmgrUrl, me.dial());
      try {
        const selector = create(MonitorScopeSelectorSchema, { pathSegments: [{ id: "nsc-r-0" }] });
        let token = "";
        for await (const e of grpcClient(MonitorConnection, channel).monitorConnections(selector, ctx(5000))) {
          token = Object.values(e.connections)[0]?.path?.pathSegments[0]?.token ?? "";
          break;
        }
        assert.equal(decodeTokenClaims(token).sub, me.id);
        assert.equal(await verifyTokenSignature(token, firstCert), false, "the refresh still used the first SVID");
        assert.ok(Number(decodeTokenClaims(token).exp) * 1000 > Date.now(), "the token is valid");
      } finally {
        closeChannel(channel);
      }
      for (const name of ["nsmgr", "forwarder", "nse-r", "registry"]) {
        const log = mesh.log(name);
        assert.ok(!log.includes("policy failed"), `${name}: a policy failed\n${mesh.tails()}`);
        assert.ok(!log.includes("expired without a refresh"), `${name}: a connection timed out\n${mesh.tails()}`);
      }
      const issued = mesh
        .log("identity-provider")
        .split("\n")
        .filter((l) => l.includes("SVID issued")).length;
      assert.ok(issued >= 10, `the identity provider issued only ${issued} SVIDs`);
    } finally {
      unsubscribe();
      stop.abort();
      await client.close(conn, ctx(5000));
    }
    assert.equal(ifindex(h.netns), undefined, "Close removed the interface");
  });
});
