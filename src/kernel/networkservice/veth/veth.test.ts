// SPDX-License-Identifier: Apache-2.0
/**
 * kernelXconnectClient/Server against the fake KernelApi, in a small forwarder-shaped chain:
 * metadata → mechanisms(KERNEL) → kernelXconnectServer → connect(client: metadata →
 * mechanismtranslation → kernelXconnectClient → fake NSE). The fake NSE answers with its own
 * KERNEL mechanism and plays point-to-point IPAM.
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
} from "../../../api/index.js";
import {
  bind,
  chain,
  type NetworkServiceElement,
  type NetworkServiceHandler,
  passThrough,
} from "../../../sdk/core/chain.js";
import { CallContext } from "../../../sdk/core/context.js";
import { Code, NsmError } from "../../../sdk/core/errors.js";
import { connectServer } from "../../../sdk/networkservice/common/connect/index.js";
import { mechanismsServer } from "../../../sdk/networkservice/common/mechanisms/index.js";
import { mechanismTranslationClient } from "../../../sdk/networkservice/common/mechanismtranslation/index.js";
import { metadataClient, metadataServer } from "../../../sdk/networkservice/common/metadata/index.js";
import { nsmErrorFromErrno } from "../../errors.js";
import { createFakeKernel, type FakeKernel } from "../../fake.js";
import {
  kernelForwarderElements,
  kernelXconnectClient,
  kernelXconnectServer,
  listTaggedLinks,
  type NetnsCheck,
  PendingDeletions,
  parseXconnectTag,
  xconnectTag,
} from "../index.js";
import { forwarderChain, instrumentKernel, route, slowLinkDeletes, uncheckedNetns } from "../testing.js";

const FWD = "/var/run/netns/fwd";
const NSC = "/var/run/netns/nsc";
const NSE = "/var/run/netns/nse";
const ctx = () => CallContext.create();

const p2p = (): IPContext =>
  create(IPContextSchema, {
    srcIpAddrs: ["172.16.1.101/32"],
    dstIpAddrs: ["172.16.1.100/32"],
    srcRoutes: [route("172.16.1.100/32"), route("10.60.0.0/16")],
    dstRoutes: [route("172.16.1.101/32")],
  });

interface Nse {
  element: NetworkServiceElement;
  requests: number;
  closes: number;
  ipContext: IPContext;
  mtu: number;
  mechanismType: string;
  url: string;
  name: string;
}

function fakeNse(): Nse {
  const nse: Nse = {
    requests: 0,
    closes: 0,
    ipContext: p2p(),
    mtu: 1400,
    mechanismType: MechanismType.KERNEL,
    url: `file://${NSE}`,
    name: "icmp-respo-x1",
    element: {
      name: "fakeNse",
      async request(req) {
        nse.requests++;
        const conn = clone(ConnectionSchema, req.connection!);
        conn.mechanism = newMechanism(Cls.LOCAL, nse.mechanismType, { inodeURL: nse.url, name: nse.name });
        conn.context = create(ConnectionContextSchema, {
          ipContext: clone(IPContextSchema, nse.ipContext),
          MTU: nse.mtu,
        });
        return conn;
      },
      async close() {
        nse.closes++;
      },
    },
  };
  return nse;
}

function request(conn?: Connection, clientUrl = `file://${NSC}`) {
  return create(NetworkServiceRequestSchema, {
    connection: conn ?? create(ConnectionSchema, { id: "conn-1", networkService: "icmp-responder" }),
    mechanismPreferences: conn
      ? []
      : [newMechanism(Cls.LOCAL, MechanismType.KERNEL, { inodeURL: clientUrl, name: "nsm-1" })],
  });
}

describe("kernelXconnectServer / kernelXconnectClient (fake kernel)", () => {
  let fake: FakeKernel;
  let k: ReturnType<typeof instrumentKernel>;
  let nse: Nse;
  let fwd: NetworkServiceHandler;

  const build = (extra: { checkNetns?: NetnsCheck; downstream?: NetworkServiceElement } = {}) =>
    bind(
      chain(
        metadataServer(),
        mechanismsServer({ KERNEL: passThrough("kernel") }),
        kernelXconnectServer({ kernel: k.kernel, checkNetns: extra.checkNetns ?? uncheckedNetns.check }),
        connectServer(
          chain(
            metadataClient(),
            mechanismTranslationClient(),
            kernelXconnectClient(),
            extra.downstream ?? passThrough("noop"),
            nse.element,
          ),
        ),
      ),
    );

  beforeEach(() => {
    fake = createFakeKernel();
    for (const ns of [FWD, NSC, NSE]) fake.addNetns(ns);
    k = instrumentKernel(fake);
    nse = fakeNse();
    fwd = build();
  });

  const names = async (ns: string) => (await fake.listLinks(ns)).map((l) => l.name);
  const nothingLeft = async () => {
    for (const ns of [FWD, NSC, NSE]) assert.deepEqual(await names(ns), ["lo"], `only lo in ${ns}`);
  };

  it("creates one veth pair: names, tags, MTU, up, addresses, routes and sysctls in each netns", async () => {
    const conn = await fwd.request(request(), ctx());
    assert.equal(conn.mechanism?.parameters.name, "nsm-1", "the client's mechanism goes back upstream");

    assert.deepEqual(await names(FWD), ["lo"], "nothing stays in the forwarder's netns");
    const c = await fake.getLink(NSC, "nsm-1");
    const e = await fake.getLink(NSE, "icmp-respo-x1");
    assert.equal(c.kind, "veth");
    assert.equal(c.alias, "nsm:client:forwarder:conn-1");
    assert.equal(e.alias, "nsm:endpoint:forwarder:conn-1");
    assert.deepEqual([c.mtu, e.mtu], [1400, 1400]);
    assert.deepEqual([c.up, e.up], [true, true]);

    const addrs = async (ns: string) => (await fake.listAddresses(ns)).map((a) => a.cidr);
    assert.deepEqual(await addrs(NSC), ["172.16.1.101/32"]);
    assert.deepEqual(await addrs(NSE), ["172.16.1.100/32"]);

    const routes = async (ns: string) =>
      (await fake.listRoutes(ns))
        .map((r) => `${r.dst}${r.gateway ? ` via ${r.gateway}` : ""}${r.onlink ? " onlink" : ""}`)
        .sort();
    assert.deepEqual(await routes(NSC), ["10.60.0.0/16 via 172.16.1.100 onlink", "172.16.1.100/32"]);
    assert.deepEqual(await routes(NSE), ["172.16.1.101/32"]);

    for (const ns of [NSC, NSE]) assert.equal(fake.readSysctl(ns, "net.ipv4.ping_group_range"), "0 2147483647");
    assert.equal(fake.readSysctl(NSC, "net/ipv6/conf/nsm-1/disable_ipv6"), undefined, "IPv4 only: IPv6 left alone");
  });

  it("IPv6: enables IPv6 on the interface before adding addresses; neighbours go to the client", async () => {
    nse.ipContext = create(IPContextSchema, {
      srcIpAddrs: ["fd00::101/128"],
      dstIpAddrs: ["fd00::100/128"],
      ipNeighbors: [{ ip: "fd00::100", hardwareAddress: "02:00:00:00:01:00" } as never],
    });
    const order: string[] = [];
    k.failWhen((method, args) => {
      // ping_group_range is written beside the addresses; disable_ipv6 must come first.
      const ipv6Switch = method === "writeSysctl" && String(args[1]).includes("disable_ipv6");
      if (args[0] === NSC && (ipv6Switch || method === "replaceAddress")) order.push(method);
      return undefined;
    });
    await fwd.request(request(), ctx());
    assert.equal(fake.readSysctl(NSC, "net/ipv6/conf/nsm-1/disable_ipv6"), "0");
    assert.equal(fake.readSysctl(NSE, "net/ipv6/conf/icmp-respo-x1/disable_ipv6"), "0");
    assert.deepEqual(order.slice(0, 2), ["writeSysctl", "replaceAddress"]);
    assert.deepEqual(
      (await fake.listAddresses(NSC)).map((a) => a.cidr),
      ["fd00::101/128"],
    );
    assert.deepEqual(
      (await fake.listNeighbors(NSC)).map((n) => [n.address, n.mac]),
      [["fd00::100", "02:00:00:00:01:00"]],
    );
    assert.deepEqual(await fake.listNeighbors(NSE), []);
  });

  it("a refresh where nothing changed makes no kernel call at all", async () => {
    const conn = await fwd.request(request(), ctx());
    const before = k.calls.length;
    const again = await fwd.request(request(conn), ctx());
    assert.deepEqual(k.calls.slice(before), []);
    assert.equal(nse.requests, 2, "the refresh still went downstream");
    assert.equal(again.mechanism?.parameters.name, "nsm-1");
  });

  it("a changed IP context is applied as a diff on the same links", async () => {
    const conn = await fwd.request(request(), ctx());
    const index = (await fake.getLink(NSC, "nsm-1")).index;
    nse.ipContext.srcIpAddrs = ["172.16.1.103/32"];
    nse.ipContext.srcRoutes = [route("172.16.1.100/32"), route("10.70.0.0/16")];
    nse.ipContext.dstRoutes = [route("172.16.1.103/32")];
    const before = k.calls.length;
    await fwd.request(request(conn), ctx());
    const done = k.mutations(before);
    assert.ok(!done.includes("createVeth") && !done.includes("deleteLink"), done.join(","));
    assert.equal((await fake.getLink(NSC, "nsm-1")).index, index, "same link");
    assert.deepEqual(
      (await fake.listAddresses(NSC)).map((a) => a.cidr),
      ["172.16.1.103/32"],
    );
    const dsts = async (ns: string) => (await fake.listRoutes(ns)).map((r) => r.dst).sort();
    assert.deepEqual(await dsts(NSC), ["10.70.0.0/16", "172.16.1.100/32"]);
    assert.deepEqual(await dsts(NSE), ["172.16.1.103/32"]);
    assert.deepEqual(
      done.sort(),
      ["deleteAddress", "deleteRoute", "deleteRoute", "replaceAddress", "replaceRoute", "replaceRoute"].sort(),
      "only the difference",
    );
  });

  it("a changed MTU is set on both ends", async () => {
    const conn = await fwd.request(request(), ctx());
    nse.mtu = 1300;
    const before = k.calls.length;
    await fwd.request(request(conn), ctx());
    assert.deepEqual(
      k.calls.slice(before).filter((c) => c !== "release"),
      ["setLink", "setLink"],
    );
    assert.equal((await fake.getLink(NSC, "nsm-1")).mtu, 1300);
    assert.equal((await fake.getLink(NSE, "icmp-respo-x1")).mtu, 1300);
  });

  it("a changed endpoint interface rebuilds the pair", async () => {
    const conn = await fwd.request(request(), ctx());
    nse.name = "icmp-respo-x2";
    await fwd.request(request(conn), ctx());
    assert.deepEqual(await names(NSE), ["lo", "icmp-respo-x2"]);
    assert.deepEqual(await names(NSC), ["lo", "nsm-1"]);
    assert.equal((await fake.getLink(NSE, "icmp-respo-x2")).alias, "nsm:endpoint:forwarder:conn-1");
  });

  it("Close deletes both ends and forgets; closing again, or after the links are gone, succeeds", async () => {
    const conn = await fwd.request(request(), ctx());
    await fwd.close(conn, ctx());
    await nothingLeft();
    assert.equal(nse.closes, 1);
    await fwd.close(conn, ctx());
    assert.equal(nse.closes, 2);

    const conn2 = await fwd.request(request(), ctx());
    await fake.deleteLink(NSE, "icmp-respo-x1");
    await fwd.close(conn2, ctx());
    await nothingLeft();

    const conn3 = await fwd.request(request(), ctx());
    fake.deleteNetns(NSC);
    await fwd.close(conn3, ctx());
    assert.deepEqual(await names(NSE), ["lo"]);
  });

  it("Close leaves alone a link that no longer carries the connection's tag", async () => {
    const conn = await fwd.request(request(), ctx());
    await fake.setLink(NSC, "nsm-1", { alias: "someone-else" });
    await fake.setLink(NSE, "icmp-respo-x1", { alias: "someone-else" });
    await fwd.close(conn, ctx());
    assert.deepEqual(await names(NSC), ["lo", "nsm-1"]);
  });

  it("Close answers once the pair is gone, before the kernel acknowledges; a Request for the same names waits for it", async () => {
    const slow = slowLinkDeletes(k.kernel);
    const deletions = new PendingDeletions();
    const server = kernelXconnectServer({ kernel: slow.kernel, checkNetns: uncheckedNetns.check, deletions });
    const handler = bind(
      chain(
        metadataServer(),
        mechanismsServer({ KERNEL: passThrough("kernel") }),
        server,
        connectServer(chain(metadataClient(), mechanismTranslationClient(), kernelXconnectClient(), nse.element)),
      ),
    );
    const conn = await handler.request(request(), ctx());
    const closing = handler.close(conn, ctx());
    await new Promise((r) => setTimeout(r, 10));
    // conn-2 wants the same names; the pair of conn-1 (another tag) still holds them.
    const second = request();
    second.connection!.id = "conn-2";
    const requesting = handler.request(second, ctx());
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(nse.closes, 1, "downstream is closed while the pair is deleted");
    assert.equal(nse.requests, 2);
    assert.equal((await fake.getLink(NSC, "nsm-1")).alias, "nsm:client:forwarder:conn-1", "not yet replaced");
    slow.gates.unlist.open();
    await closing;
    await requesting;
    assert.equal((await fake.getLink(NSC, "nsm-1")).alias, "nsm:client:forwarder:conn-2");
    assert.equal((await fake.getLink(NSE, "icmp-respo-x1")).alias, "nsm:endpoint:forwarder:conn-2");
    assert.equal(deletions.size, 1, "the kernel's acknowledgement is still awaited");
    const drained = deletions.drain();
    slow.gates.ack.open();
    await drained;
    assert.equal(deletions.size, 0);
  });

  it("the forwarder's dispose (shutdown) waits for the deletions its Closes left in the background", async () => {
    const slow = slowLinkDeletes(k.kernel);
    slow.gates.unlist.open();
    const els = await kernelForwarderElements({ netnsOwnership: uncheckedNetns, kernel: slow.kernel });
    const handler = forwarderChain(els, "unix:///nse.sock", nse.element);
    await handler.close(await handler.request(request(), ctx()), ctx());
    await nothingLeft();
    assert.equal(els.deletions.size, 1);
    let disposed = false;
    const disposing = els.dispose().then(() => {
      disposed = true;
    });
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(disposed, false, "dispose waits for the kernel's acknowledgement");
    slow.gates.ack.open();
    await disposing;
    assert.equal(els.deletions.size, 0);
  });

  it("a kernel failure midway deletes the pair, closes downstream and returns the mapped error", async () => {
    k.failWhen((method, args) =>
      method === "replaceRoute" && args[0] === NSE ? nsmErrorFromErrno(1, "replace route (injected)") : undefined,
    );
    await assert.rejects(
      fwd.request(request(), ctx()),
      (err: unknown) => err instanceof NsmError && err.code === Code.PermissionDenied && /injected/.test(err.message),
    );
    await nothingLeft();
    assert.equal(nse.closes, 1, "downstream closed");
    k.failWhen(undefined);
    await fwd.request(request(), ctx());
    assert.equal(
      (await fake.getLink(NSC, "nsm-1")).alias,
      "nsm:client:forwarder:conn-1",
      "metadata was cleaned: a new Request works",
    );
  });

  it("a failure while bringing up the endpoint's end rolls back too", async () => {
    k.failWhen((method, args) =>
      method === "setLink" && args[0] === NSE ? nsmErrorFromErrno(16, "up (injected)") : undefined,
    );
    await assert.rejects(fwd.request(request(), ctx()), (err: unknown) => (err as NsmError).code === Code.Unavailable);
    await nothingLeft();
    assert.equal(nse.closes, 1);
  });

  it("a failure while creating the pair leaves nothing anywhere", async () => {
    k.failWhen((method) => (method === "createVeth" ? nsmErrorFromErrno(12, "create (injected)") : undefined));
    await assert.rejects(fwd.request(request(), ctx()), (err: unknown) => (err as NsmError).code === Code.Internal);
    await nothingLeft();
  });

  it("a missing pod netns is NotFound, nothing is created", async () => {
    nse.url = "file:///var/run/netns/gone";
    await assert.rejects(fwd.request(request(), ctx()), (err: unknown) => (err as NsmError).code === Code.NotFound);
    await nothingLeft();
    assert.equal(nse.closes, 1);
  });

  it("a failed refresh keeps downstream open and is repaired by the next refresh", async () => {
    const conn = await fwd.request(request(), ctx());
    nse.ipContext.srcRoutes.push(route("10.80.0.0/16"));
    k.failWhen((method, args) =>
      method === "replaceRoute" && (args[1] as { dst: string }).dst === "10.80.0.0/16"
        ? nsmErrorFromErrno(105, "route (injected)")
        : undefined,
    );
    await assert.rejects(fwd.request(request(conn), ctx()));
    assert.equal(nse.closes, 0, "a refresh failure does not close downstream");
    assert.deepEqual(await names(NSC), ["lo", "nsm-1"]);
    k.failWhen(undefined);
    const before = k.calls.length;
    await fwd.request(request(conn), ctx());
    assert.ok(k.calls.length > before, "a stale record is re-applied even though the plan did not change");
    assert.ok((await fake.listRoutes(NSC)).some((r) => r.dst === "10.80.0.0/16"));
  });

  it("bad client netns URL: InvalidArgument before anything goes downstream", async () => {
    await assert.rejects(
      fwd.request(request(undefined, "inode://4/4026532281"), ctx()),
      (err: unknown) =>
        err instanceof NsmError && err.code === Code.InvalidArgument && /fd passing is not supported/.test(err.message),
    );
    assert.equal(nse.requests, 0);
    assert.deepEqual(k.mutations(), []);
  });

  it("bad endpoint netns URL: InvalidArgument, downstream closed, nothing created", async () => {
    nse.url = "file://var/run/netns/nse";
    await assert.rejects(
      fwd.request(request(), ctx()),
      (err: unknown) =>
        err instanceof NsmError && err.code === Code.InvalidArgument && /endpoint's KERNEL mechanism/.test(err.message),
    );
    assert.equal(nse.closes, 1);
    assert.deepEqual(k.mutations(), []);
  });

  it("a foreign link with the target name is AlreadyExists, nothing is left behind", async () => {
    await fake.createBridge(NSC, { name: "nsm-1" });
    await assert.rejects(
      fwd.request(request(), ctx()),
      (err: unknown) =>
        err instanceof NsmError &&
        err.code === Code.AlreadyExists &&
        /"nsm-1" already exists in the client's netns/.test(err.message),
    );
    assert.deepEqual(await names(NSC), ["lo", "nsm-1"]);
    assert.equal((await fake.getLink(NSC, "nsm-1")).kind, "bridge", "the foreign link is untouched");
    assert.deepEqual(await names(NSE), ["lo"]);
    assert.deepEqual(await names(FWD), ["lo"]);
    assert.equal(nse.closes, 1);
  });

  it("a pair left over by this connection (forwarder restart) is re-adopted: no delete, no create, plan re-applied", async () => {
    await fake.createVeth(NSC, { name: "nsm-1", peer: { name: "icmp-respo-x1", netns: NSE } });
    await fake.setLink(NSC, "nsm-1", { alias: "nsm:client:forwarder:conn-1" });
    await fake.setLink(NSE, "icmp-respo-x1", { alias: "nsm:endpoint:forwarder:conn-1" });
    const index = (await fake.getLink(NSC, "nsm-1")).index;
    // What an earlier IP context left: a stale address and route, which the adoption removes.
    await fake.setLink(NSC, "nsm-1", { up: true });
    await fake.replaceAddress(NSC, "nsm-1", "172.16.9.9/32");
    await fake.replaceRoute(NSC, { dst: "10.99.0.0/16", link: "nsm-1" });
    await fwd.request(request(), ctx());
    const m = k.mutations();
    assert.ok(!m.includes("deleteLink") && !m.includes("createVeth"), m.join(","));
    const link = await fake.getLink(NSC, "nsm-1");
    assert.equal(link.index, index, "same link");
    assert.deepEqual([link.mtu, link.up], [1400, true]);
    assert.deepEqual(
      (await fake.listAddresses(NSC)).map((a) => a.cidr),
      ["172.16.1.101/32"],
    );
    assert.deepEqual((await fake.listRoutes(NSC)).map((r) => r.dst).sort(), ["10.60.0.0/16", "172.16.1.100/32"]);
    assert.deepEqual(
      (await fake.listAddresses(NSE)).map((a) => a.cidr),
      ["172.16.1.100/32"],
    );
    assert.equal(fake.readSysctl(NSE, "net.ipv4.ping_group_range"), "0 2147483647");
    // From now on it is a live connection of this life: a refresh touches nothing.
    const before = k.calls.length;
    await fwd.request(request(), ctx());
    assert.deepEqual(k.mutations(before), []);
  });

  it("a left-over end whose peer is not the other target (one pod restarted) is replaced", async () => {
    await fake.createVeth(NSC, { name: "nsm-1", peer: { name: "old-peer", netns: FWD } });
    await fake.setLink(NSC, "nsm-1", { alias: "nsm:client:forwarder:conn-1" });
    await fwd.request(request(), ctx());
    const m = k.mutations();
    assert.equal(m[0], "deleteLink", "the leftover is deleted before the new pair is created");
    assert.ok(m.indexOf("createVeth") > 0);
    assert.deepEqual(await names(FWD), ["lo"]);
    assert.deepEqual(await names(NSE), ["lo", "icmp-respo-x1"]);
  });

  it("a pair tagged by another forwarder for the same connection id is foreign: AlreadyExists", async () => {
    await fake.createVeth(NSC, { name: "nsm-1", peer: { name: "icmp-respo-x1", netns: NSE } });
    await fake.setLink(NSC, "nsm-1", { alias: "nsm:client:forwarder-2:conn-1" });
    await fake.setLink(NSE, "icmp-respo-x1", { alias: "nsm:endpoint:forwarder-2:conn-1" });
    await assert.rejects(
      fwd.request(request(), ctx()),
      (err: unknown) => err instanceof NsmError && err.code === Code.AlreadyExists,
    );
    assert.equal((await fake.getLink(NSC, "nsm-1")).alias, "nsm:client:forwarder-2:conn-1", "left alone");
  });

  it("does nothing when the endpoint side is not KERNEL; tears down when a refresh moves away from KERNEL", async () => {
    nse.mechanismType = MechanismType.NOOP;
    await fwd.request(request(), ctx());
    assert.deepEqual(k.mutations(), []);

    nse.mechanismType = MechanismType.KERNEL;
    const conn = await fwd.request(request(), ctx());
    assert.deepEqual(await names(NSC), ["lo", "nsm-1"]);
    nse.mechanismType = MechanismType.NOOP;
    await fwd.request(request(conn), ctx());
    await nothingLeft();
  });

  it("propagates downstream errors without touching the kernel", async () => {
    const failing: NetworkServiceElement = {
      name: "failing",
      request: () => Promise.reject(new NsmError("no endpoint", Code.NotFound)),
      close: (c, cx, next) => next.close(c, cx),
    };
    fwd = build({ downstream: failing });
    await assert.rejects(fwd.request(request(), ctx()), (err: unknown) => (err as NsmError).code === Code.NotFound);
    assert.deepEqual(k.calls, []);
  });

  it("runs the netns hook for both sides before changing the kernel; a refusal changes nothing", async () => {
    const seen: string[] = [];
    fwd = build({
      checkNetns: async (r) => {
        seen.push(`${r.side}:${r.netns}`);
        if (r.side === "endpoint") throw new NsmError("not yours", Code.PermissionDenied);
      },
    });
    await assert.rejects(
      fwd.request(request(), ctx()),
      (err: unknown) => (err as NsmError).code === Code.PermissionDenied,
    );
    assert.deepEqual(seen, [`client:${NSC}`, `endpoint:${NSE}`]);
    assert.deepEqual(k.mutations(), []);
    assert.equal(nse.closes, 1);
  });

  it("does not mutate the request", async () => {
    const req = request();
    const copy = clone(NetworkServiceRequestSchema, req);
    await fwd.request(req, ctx());
    assert.deepEqual(req, copy);
  });

  it("declares that metadata must come first", () => {
    assert.throws(
      () => bind(chain(kernelXconnectServer({ kernel: k.kernel, checkNetns: uncheckedNetns.check }))),
      (err: unknown) => (err as NsmError).code === Code.FailedPrecondition,
    );
  });

  it("listTaggedLinks finds the links of a connection by tag", async () => {
    await fwd.request(request(), ctx());
    const c = await listTaggedLinks(k.kernel, NSC);
    assert.deepEqual(
      c.map((t) => [t.side, t.connectionId, t.link.name]),
      [["client", "conn-1", "nsm-1"]],
    );
    const e = await listTaggedLinks(k.kernel, NSE);
    assert.deepEqual(
      e.map((t) => [t.side, t.connectionId, t.link.name]),
      [["endpoint", "conn-1", "icmp-respo-x1"]],
    );
    assert.deepEqual(await listTaggedLinks(k.kernel, FWD), []);
    assert.equal((await listTaggedLinks(k.kernel, NSC, "forwarder")).length, 1, "ours");
    assert.deepEqual(await listTaggedLinks(k.kernel, NSC, "forwarder-2"), [], "another owner's only");
  });
});

describe("tag scheme", () => {
  it("round-trips side, owner and connection id (ids may contain ':', owners are escaped)", () => {
    assert.equal(xconnectTag("client", "a:b", "fwd-1"), "nsm:client:fwd-1:a:b");
    assert.equal(xconnectTag("client", "x"), "nsm:client:forwarder:x", "default owner");
    assert.deepEqual(parseXconnectTag("nsm:client:fwd-1:a:b"), { side: "client", owner: "fwd-1", connectionId: "a:b" });
    assert.deepEqual(parseXconnectTag(xconnectTag("endpoint", "3f1c", "n:1%")), {
      side: "endpoint",
      owner: "n:1%",
      connectionId: "3f1c",
    });
    assert.equal(xconnectTag("endpoint", "3f1c", "n:1%"), "nsm:endpoint:n%3A1%25:3f1c");
    for (const alias of [
      undefined,
      "",
      "nsm:client:",
      "nsm:client:fwd:",
      "nsm:client:x",
      "nsm:other:fwd:x",
      "client-x",
      "server-x",
    ]) {
      assert.equal(parseXconnectTag(alias), undefined, String(alias));
    }
    assert.throws(
      () => xconnectTag("client", ""),
      (err: unknown) => (err as NsmError).code === Code.InvalidArgument,
    );
    assert.throws(
      () => xconnectTag("client", "x", ""),
      (err: unknown) => (err as NsmError).code === Code.InvalidArgument,
    );
    assert.throws(
      () => xconnectTag("client", "x".repeat(240), "forwarder-x"),
      (err: unknown) => (err as NsmError).code === Code.InvalidArgument,
    );
  });
});
