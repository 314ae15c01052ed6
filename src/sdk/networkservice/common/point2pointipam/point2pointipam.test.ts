// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type Connection,
  ConnectionContextSchema,
  ConnectionSchema,
  create,
  IPContextSchema,
  NetworkServiceRequestSchema,
  RouteSchema,
  State,
} from "../../../../api/index.js";
import { bind, chain } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { Code, NsmError } from "../../../core/errors.js";
import { injectError } from "../../../testing/elements.js";
import { metadataServer } from "../metadata/index.js";
import { point2pointIpamServer } from "./index.js";

const ctx = () => CallContext.create();

function request(id: string, ip: { src?: string[]; dst?: string[]; excluded?: string[] } = {}) {
  return create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, {
      id,
      context: create(ConnectionContextSchema, {
        ipContext: create(IPContextSchema, {
          srcIpAddrs: ip.src ?? [],
          dstIpAddrs: ip.dst ?? [],
          excludedPrefixes: ip.excluded ?? [],
        }),
      }),
    }),
  });
}

function ipOf(conn: Connection) {
  const c = conn.context!.ipContext!;
  return {
    src: c.srcIpAddrs,
    dst: c.dstIpAddrs,
    srcRoutes: c.srcRoutes.map((r) => r.prefix),
    dstRoutes: c.dstRoutes.map((r) => r.prefix),
  };
}

function assertPair(conn: Connection, dst: string, src: string) {
  assert.deepEqual(ipOf(conn), { src: [src], dst: [dst], srcRoutes: [dst], dstRoutes: [src] });
}

const server = (prefixes: (string | string[])[], ...rest: Parameters<typeof chain>) =>
  bind(chain(metadataServer(), point2pointIpamServer({ prefixes }), ...rest));

describe("point2pointIpamServer", () => {
  it("gives the NSE the first address and the client the next (172.16.1.100/31)", async () => {
    const h = server(["172.16.1.100/31"]);
    const conn = await h.request(request("c1"), ctx());
    assertPair(conn, "172.16.1.100/32", "172.16.1.101/32");
  });

  it("allocates distinct pairs per connection and reuses released ones", async () => {
    const h = server(["192.168.0.0/16"]);
    const c1 = await h.request(request("c1"), ctx());
    const c2 = await h.request(request("c2"), ctx());
    assertPair(c1, "192.168.0.0/32", "192.168.0.1/32");
    assertPair(c2, "192.168.0.2/32", "192.168.0.3/32");
    await h.close(c1, ctx());
    assertPair(await h.request(request("c3"), ctx()), "192.168.0.0/32", "192.168.0.1/32");
    assertPair(await h.request(request("c4"), ctx()), "192.168.0.4/32", "192.168.0.5/32");
  });

  it("works for IPv6 (/128)", async () => {
    const h = server(["fe80::/64"]);
    assertPair(await h.request(request("c1"), ctx()), "fe80::/128", "fe80::1/128");
    assertPair(await h.request(request("c2"), ctx()), "fe80::2/128", "fe80::3/128");
  });

  it("keeps the same addresses on refresh, without duplicates", async () => {
    const h = server(["10.0.0.0/24"]);
    const conn = await h.request(request("c1"), ctx());
    const again = await h.request(create(NetworkServiceRequestSchema, { connection: conn }), ctx());
    assertPair(again, "10.0.0.0/32", "10.0.0.1/32");
  });

  it("recovers the addresses of a re-request after an endpoint restart", async () => {
    const before = server(["172.16.1.96/29"]);
    await before.request(request("other"), ctx());
    const conn = await before.request(request("c1"), ctx());
    assertPair(conn, "172.16.1.98/32", "172.16.1.99/32");
    // A new endpoint instance (restarted): the request still carries the addresses.
    const after = server(["172.16.1.96/29"]);
    const again = await after.request(create(NetworkServiceRequestSchema, { connection: conn }), ctx());
    assertPair(again, "172.16.1.98/32", "172.16.1.99/32");
    // They are taken now: a new connection gets the first free pair.
    assertPair(await after.request(request("c2"), ctx()), "172.16.1.96/32", "172.16.1.97/32");
  });

  it("drops another endpoint's addresses and routes when the client reselects to this one", async () => {
    const h = server(["172.16.11.96/28"]);
    const req = request("c1", { src: ["172.16.10.97/32"], dst: ["172.16.10.96/32"] });
    const ipc = req.connection!.context!.ipContext!;
    ipc.srcRoutes.push(create(RouteSchema, { prefix: "172.16.10.96/32" }));
    ipc.dstRoutes.push(create(RouteSchema, { prefix: "172.16.10.97/32" }));
    req.connection!.state = State.RESELECT_REQUESTED;
    assertPair(await h.request(req, ctx()), "172.16.11.96/32", "172.16.11.97/32");
    // Without a reselect (e.g. a second IPAM of a composite endpoint), foreign addresses stay.
    const plain = await h.request(request("c2", { src: ["10.0.0.1/32"], dst: ["10.0.0.0/32"] }), ctx());
    assert.deepEqual(ipOf(plain).src, ["10.0.0.1/32", "172.16.11.99/32"]);
  });

  it("does not recover addresses that are in use by another connection", async () => {
    const h = server(["10.0.0.0/29"]);
    await h.request(request("c1"), ctx());
    const conn = await h.request(request("c2", { src: ["10.0.0.1/32"], dst: ["10.0.0.0/32"] }), ctx());
    const ip = ipOf(conn);
    assert.deepEqual(ip.src, ["10.0.0.1/32", "10.0.0.3/32"]);
    assert.deepEqual(ip.dst, ["10.0.0.0/32", "10.0.0.2/32"]);
  });

  it("honours excluded prefixes", async () => {
    const h = server(["192.168.1.0/24"]);
    const excluded = ["192.168.1.1/32", "192.168.1.3/32", "192.168.1.6/32"];
    assertPair(await h.request(request("c1", { excluded }), ctx()), "192.168.1.0/32", "192.168.1.2/32");
    assertPair(await h.request(request("c2", { excluded }), ctx()), "192.168.1.4/32", "192.168.1.5/32");
    assertPair(await h.request(request("c3", { excluded }), ctx()), "192.168.1.7/32", "192.168.1.8/32");
  });

  it("replaces addresses that become excluded on refresh", async () => {
    const h = server(["192.168.0.0/24"]);
    const conn = await h.request(request("c1", { excluded: ["192.168.0.1/32"] }), ctx());
    assertPair(conn, "192.168.0.0/32", "192.168.0.2/32");
    conn.context!.ipContext!.excludedPrefixes = ["192.168.0.0/30"];
    const again = await h.request(create(NetworkServiceRequestSchema, { connection: conn }), ctx());
    assertPair(again, "192.168.0.4/32", "192.168.0.5/32");
  });

  it("gives one pair per CIDR group (dual stack)", async () => {
    const h = server(["192.168.0.0/24", "fd00::/64"]);
    const c1 = await h.request(request("c1"), ctx());
    assert.deepEqual(ipOf(c1), {
      src: ["192.168.0.1/32", "fd00::1/128"],
      dst: ["192.168.0.0/32", "fd00::/128"],
      srcRoutes: ["192.168.0.0/32", "fd00::/128"],
      dstRoutes: ["192.168.0.1/32", "fd00::1/128"],
    });
    const c2 = await h.request(request("c2"), ctx());
    assert.deepEqual(ipOf(c2).dst, ["192.168.0.2/32", "fd00::2/128"]);
    const again = await h.request(create(NetworkServiceRequestSchema, { connection: c1 }), ctx());
    assert.deepEqual(ipOf(again), ipOf(c1));
  });

  it("uses the next prefix of a group when the first is full", async () => {
    const h = server([["10.0.0.0/31", "10.0.1.0/31"]]);
    assertPair(await h.request(request("c1"), ctx()), "10.0.0.0/32", "10.0.0.1/32");
    assertPair(await h.request(request("c2"), ctx()), "10.0.1.0/32", "10.0.1.1/32");
  });

  it("is ResourceExhausted when no pair is left, and frees nothing it did not take", async () => {
    const h = server(["192.168.1.2/31"]);
    assertPair(await h.request(request("c1"), ctx()), "192.168.1.2/32", "192.168.1.3/32");
    await assert.rejects(
      h.request(request("c2"), ctx()),
      (e: NsmError) => e.code === Code.ResourceExhausted && e.message.includes("192.168.1.2/31"),
    );
    const all = server(["192.168.1.2/31"]);
    await assert.rejects(
      all.request(request("c1", { excluded: ["192.168.1.2/31"] }), ctx()),
      (e: NsmError) => e.code === Code.ResourceExhausted,
    );
  });

  it("gives back the first group's pair when the second group has none", async () => {
    const h = server(["10.0.0.0/30", "fd00::/126"]);
    await h.request(request("c1"), ctx());
    await assert.rejects(
      h.request(request("c2", { excluded: ["fd00::/126"] }), ctx()),
      (e: NsmError) => e.code === Code.ResourceExhausted && e.message.includes("fd00::/126"),
    );
    const c3 = await h.request(request("c3"), ctx());
    assert.deepEqual(ipOf(c3).dst, ["10.0.0.2/32", "fd00::2/128"]);
  });

  it("rejects bad prefixes at construction with InvalidArgument naming them", () => {
    assert.throws(
      () => point2pointIpamServer({ prefixes: ["172.16.1.100/33"] }),
      (e: NsmError) => e.code === Code.InvalidArgument && e.message.includes("172.16.1.100/33"),
    );
    assert.throws(
      () => point2pointIpamServer({ prefixes: [] }),
      (e: NsmError) => e.code === Code.InvalidArgument,
    );
    assert.throws(
      () => point2pointIpamServer({ prefixes: [[]] }),
      (e: NsmError) => e.code === Code.InvalidArgument,
    );
  });

  it("rejects a bad excluded prefix with InvalidArgument", async () => {
    const h = server(["10.0.0.0/24"]);
    await assert.rejects(
      h.request(request("c1", { excluded: ["not-a-prefix"] }), ctx()),
      (e: NsmError) => e.code === Code.InvalidArgument && e.message.includes("not-a-prefix"),
    );
  });

  it("releases the addresses when the first Request fails downstream", async () => {
    let fail = true;
    const h = server(
      ["192.168.0.0/24"],
      injectError(() => new NsmError("boom", Code.Unavailable), { request: () => fail }),
    );
    await assert.rejects(h.request(request("c1"), ctx()), (e: NsmError) => e.code === Code.Unavailable);
    fail = false;
    assertPair(await h.request(request("c2"), ctx()), "192.168.0.0/32", "192.168.0.1/32");
  });

  it("keeps the addresses when a refresh fails downstream", async () => {
    let fail = false;
    const h = server(
      ["192.168.0.0/24"],
      injectError(() => new NsmError("boom", Code.Unavailable), { request: () => fail }),
    );
    const conn = await h.request(request("c1"), ctx());
    fail = true;
    await assert.rejects(h.request(create(NetworkServiceRequestSchema, { connection: conn }), ctx()));
    fail = false;
    assertPair(await h.request(request("c2"), ctx()), "192.168.0.2/32", "192.168.0.3/32");
    assertPair(
      await h.request(create(NetworkServiceRequestSchema, { connection: conn }), ctx()),
      "192.168.0.0/32",
      "192.168.0.1/32",
    );
  });

  it("does not mutate the caller's request", async () => {
    const h = server(["10.0.0.0/24"]);
    const req = request("c1");
    await h.request(req, ctx());
    assert.deepEqual(req.connection!.context!.ipContext!.srcIpAddrs, []);
  });

  it("propagates downstream errors unchanged", async () => {
    const h = server(
      ["10.0.0.0/24"],
      injectError(() => new NsmError("nope", Code.PermissionDenied)),
    );
    await assert.rejects(
      h.request(request("c1"), ctx()),
      (e: NsmError) => e.code === Code.PermissionDenied && e.rawMessage === "nope",
    );
  });

  it("needs metadata earlier in the chain", () => {
    assert.throws(
      () => bind(point2pointIpamServer({ prefixes: ["10.0.0.0/24"] })),
      (e: NsmError) => e.code === Code.FailedPrecondition,
    );
  });
});
