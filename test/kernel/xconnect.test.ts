// SPDX-License-Identifier: Apache-2.0
/**
 * The local kernel cross-connect against the real kernel. Needs root and the built addon.
 *
 * Three throwaway namespaces `nsmx-<hex>` play the forwarder, the client (NSC) and the endpoint
 * (NSE); they are deleted in `after` hooks (and, as a last resort, on process exit). Nothing is
 * created in the root netns: the veth pair is born in the forwarder's namespace. The chain is
 * forwarder-shaped: metadata → mechanisms(KERNEL) → kernelXconnectServer → connect(client:
 * metadata → mechanismtranslation → kernelXconnectClient → fake NSE), where the fake NSE
 * answers with its KERNEL mechanism (pointing at the endpoint netns) and plays p2p IPAM.
 * `ip -j` is used only to check what the kernel reports.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
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
  RouteSchema,
} from "../../src/api/index.js";
import { createNetlinkKernel, type KernelApi } from "../../src/kernel/index.js";
import {
  insecureNetnsOwnership,
  kernelXconnectClient,
  kernelXconnectServer,
  listTaggedLinks,
  PendingDeletions,
} from "../../src/kernel/networkservice/index.js";
import { route } from "../../src/kernel/networkservice/testing.js";
import { bind, chain, type NetworkServiceElement, passThrough } from "../../src/sdk/core/chain.js";
import { CallContext } from "../../src/sdk/core/context.js";
import { Code, NsmError } from "../../src/sdk/core/errors.js";
import { connectServer } from "../../src/sdk/networkservice/common/connect/index.js";
import { mechanismsServer } from "../../src/sdk/networkservice/common/mechanisms/index.js";
import { mechanismTranslationClient } from "../../src/sdk/networkservice/common/mechanismtranslation/index.js";
import { metadataClient, metadataServer } from "../../src/sdk/networkservice/common/metadata/index.js";
import { havePing, ipJson, kernelSkipReason, linkNames, NetnsSet, nsPath, ping } from "../helpers/netns.js";

const skip = kernelSkipReason();
const namespaces = new NetnsSet("nsmx");
const addNetns = () => namespaces.add();
const delNetns = (name: string) => namespaces.delete(name);

const NSE_IF = "icmp-nse-1";
/** The endpoint: its own KERNEL mechanism, and point-to-point IPAM for 172.16.1.100/31 and fd16::100/127. */
function fakeNse(nseNetns: string): NetworkServiceElement {
  return {
    name: "fakeNse",
    async request(req) {
      const conn = clone(ConnectionSchema, req.connection!);
      conn.mechanism = newMechanism(Cls.LOCAL, MechanismType.KERNEL, { inodeURL: `file://${nseNetns}`, name: NSE_IF });
      conn.context = create(ConnectionContextSchema, {
        MTU: 1400,
        ipContext: create(IPContextSchema, {
          srcIpAddrs: ["172.16.1.101/32", "fd16::101/128"],
          dstIpAddrs: ["172.16.1.100/32", "fd16::100/128"],
          srcRoutes: [route("172.16.1.100/32"), route("fd16::100/128")],
          dstRoutes: [route("172.16.1.101/32"), route("fd16::101/128")],
        }),
      });
      return conn;
    },
    async close() {},
  };
}

describe("kernel cross-connect on the real kernel", { skip }, () => {
  let kernel: KernelApi;
  let fwdNs: string;
  let nscNs: string;
  let nseNs: string;
  const mine: string[] = [];
  const id = `conn-${randomBytes(4).toString("hex")}`;
  const deletions = new PendingDeletions();

  const forwarder = () =>
    bind(
      chain(
        metadataServer(),
        mechanismsServer({ KERNEL: passThrough("kernel") }),
        kernelXconnectServer({ kernel, checkNetns: insecureNetnsOwnership().check, deletions }),
        connectServer(
          chain(metadataClient(), mechanismTranslationClient(), kernelXconnectClient(), fakeNse(nsPath(nseNs))),
        ),
      ),
    );

  const request = (connectionId: string) =>
    create(NetworkServiceRequestSchema, {
      connection: create(ConnectionSchema, { id: connectionId, networkService: "icmp-responder" }),
      mechanismPreferences: [
        newMechanism(Cls.LOCAL, MechanismType.KERNEL, { inodeURL: `file://${nsPath(nscNs)}`, name: "nsm-1" }),
      ],
    });

  before(() => {
    kernel = createNetlinkKernel();
    for (const _ of [0, 1, 2]) mine.push(addNetns());
    [fwdNs, nscNs, nseNs] = mine as [string, string, string];
  });

  after(async () => {
    await kernel?.close();
    for (const n of mine) delNetns(n);
  });

  it("connects client and endpoint: interfaces, addresses, routes, ping both ways; refresh keeps them; Close removes both", async () => {
    const fwd = forwarder();
    const ctx = CallContext.create();
    const conn = await fwd.request(request(id), ctx);

    assert.deepEqual(linkNames(fwdNs), ["lo"], "nothing stays in the forwarder's netns");

    const [c] = ipJson(nscNs, "link", "show", "nsm-1");
    assert.equal(c.ifalias, `nsm:client:forwarder:${id}`);
    assert.equal(c.mtu, 1400);
    assert.ok(c.flags.includes("UP"), JSON.stringify(c.flags));
    const [e] = ipJson(nseNs, "link", "show", NSE_IF);
    assert.equal(e.ifalias, `nsm:endpoint:forwarder:${id}`);
    assert.equal(e.mtu, 1400);

    const addrs = (ns: string, dev: string) =>
      ipJson(ns, "addr", "show", "dev", dev)[0].addr_info.map((a: any) => `${a.local}/${a.prefixlen}`);
    assert.deepEqual(
      addrs(nscNs, "nsm-1").filter((a: string) => !a.startsWith("fe80")),
      ["172.16.1.101/32", "fd16::101/128"],
    );
    assert.deepEqual(
      addrs(nseNs, NSE_IF).filter((a: string) => !a.startsWith("fe80")),
      ["172.16.1.100/32", "fd16::100/128"],
    );

    const routes = (ns: string, ...family: string[]) => ipJson(ns, ...family, "route").map((r) => `${r.dst} ${r.dev}`);
    assert.ok(routes(nscNs).includes("172.16.1.100 nsm-1"), JSON.stringify(routes(nscNs)));
    assert.ok(routes(nseNs).includes(`172.16.1.101 ${NSE_IF}`), JSON.stringify(routes(nseNs)));
    assert.ok(routes(nscNs, "-6").includes("fd16::100 nsm-1"), JSON.stringify(routes(nscNs, "-6")));
    assert.ok(routes(nseNs, "-6").includes(`fd16::101 ${NSE_IF}`), JSON.stringify(routes(nseNs, "-6")));

    const tagged = await listTaggedLinks(kernel, nsPath(nscNs));
    assert.deepEqual(
      tagged.map((t) => [t.side, t.connectionId, t.link.name]),
      [["client", id, "nsm-1"]],
    );

    if (havePing) {
      assert.ok(ping(nscNs, "172.16.1.100"), "IPv4 ping client → endpoint answered");
      assert.ok(ping(nseNs, "172.16.1.101"), "IPv4 ping endpoint → client answered");
      assert.ok(ping(nscNs, "fd16::100"), "IPv6 ping client → endpoint answered");
    }

    const before = [c.ifindex, e.ifindex];
    await fwd.request(create(NetworkServiceRequestSchema, { connection: conn }), ctx);
    assert.deepEqual(
      [ipJson(nscNs, "link", "show", "nsm-1")[0].ifindex, ipJson(nseNs, "link", "show", NSE_IF)[0].ifindex],
      before,
      "a refresh leaves the links alone",
    );
    if (havePing) assert.ok(ping(nscNs, "172.16.1.100"), "still answered after the refresh");

    await fwd.close(conn, ctx);
    // Close answers before the kernel acknowledges the deletion, but after the pair left both netns.
    assert.deepEqual(linkNames(nscNs), ["lo"]);
    assert.deepEqual(linkNames(nseNs), ["lo"]);
    assert.deepEqual(linkNames(fwdNs), ["lo"]);

    // At once, another connection with the same names: the kernel has freed them.
    const again = await fwd.request(request(`${id}-2`), ctx);
    assert.equal(ipJson(nscNs, "link", "show", "nsm-1")[0].ifalias, `nsm:client:forwarder:${id}-2`);
    await fwd.close(again, ctx);
    await deletions.drain();
    assert.equal(deletions.failures, 0);
    assert.deepEqual([linkNames(nscNs), linkNames(nseNs)], [["lo"], ["lo"]]);
  });

  it("a foreign interface with the client's name: AlreadyExists, nothing left behind", async () => {
    execFileSync("ip", ["-n", nscNs, "link", "add", "name", "nsm-1", "type", "veth", "peer", "name", "other-1"]);
    try {
      const fwd = forwarder();
      await assert.rejects(
        fwd.request(request(`${id}-b`), CallContext.create()),
        (err: unknown) => err instanceof NsmError && err.code === Code.AlreadyExists && /nsm-1/.test(err.message),
      );
      assert.deepEqual(linkNames(nscNs).sort(), ["lo", "nsm-1", "other-1"], "the foreign pair is untouched");
      assert.deepEqual(linkNames(nseNs), ["lo"]);
      assert.deepEqual(linkNames(fwdNs), ["lo"]);
    } finally {
      spawnSync("ip", ["-n", nscNs, "link", "del", "nsm-1"], { stdio: "ignore" });
    }
  });

  it("a kernel failure midway (a route the kernel refuses) rolls back: nothing left behind", async () => {
    const failing: NetworkServiceElement = {
      ...fakeNse(nsPath(nseNs)),
      async request(req, ctx, next) {
        const conn = await fakeNse(nsPath(nseNs)).request(req, ctx, next);
        // A gateway that is the client's own address: "Nexthop has invalid gateway" (EINVAL).
        conn.context!.ipContext!.srcRoutes.push(create(RouteSchema, { prefix: "10.0.0.0/8", nextHop: "172.16.1.101" }));
        return conn;
      },
    };
    const fwd = bind(
      chain(
        metadataServer(),
        mechanismsServer({ KERNEL: passThrough("kernel") }),
        kernelXconnectServer({ kernel, checkNetns: insecureNetnsOwnership().check, deletions }),
        connectServer(chain(metadataClient(), mechanismTranslationClient(), kernelXconnectClient(), failing)),
      ),
    );
    await assert.rejects(
      fwd.request(request(`${id}-c`), CallContext.create()),
      (err: unknown) =>
        err instanceof NsmError && err.code === Code.InvalidArgument && /10\.0\.0\.0\/8/.test(err.message),
    );
    for (const ns of [fwdNs, nscNs, nseNs]) assert.deepEqual(linkNames(ns), ["lo"], ns);
  });
});
