// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NetworkServiceEndpointSchema } from "../../../../api/gen/registry_pb.js";
import {
  type Connection,
  ConnectionContextSchema,
  ConnectionSchema,
  create,
  IPContextSchema,
  NetworkServiceRequestSchema,
  RouteSchema,
} from "../../../../api/index.js";
import { bind, chain, type NetworkServiceElement } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { Code, NsmError } from "../../../core/errors.js";
import { memoryRegistry } from "../../../registry/chains/memory/index.js";
import { metadataServer } from "../metadata/index.js";
import { connectsTo, Vl3Network, vl3Client, vl3Peers, vl3Server } from "./index.js";

const ctx = () => CallContext.create();

function request(id: string, ip: { src?: string[]; dst?: string[]; dstRoutes?: [string, string][] } = {}) {
  return create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, {
      id,
      context: create(ConnectionContextSchema, {
        ipContext: create(IPContextSchema, {
          srcIpAddrs: ip.src ?? [],
          dstIpAddrs: ip.dst ?? [],
          dstRoutes: (ip.dstRoutes ?? []).map(([prefix, nextHop]) => create(RouteSchema, { prefix, nextHop })),
        }),
      }),
    }),
  });
}

const routes = (rs: { prefix: string; nextHop: string }[]) =>
  rs.map((r) => (r.nextHop ? `${r.prefix} via ${r.nextHop}` : r.prefix));

function ipOf(conn: Connection) {
  const c = conn.context!.ipContext!;
  return { src: c.srcIpAddrs, dst: c.dstIpAddrs, srcRoutes: routes(c.srcRoutes), dstRoutes: routes(c.dstRoutes) };
}

function endpoint(prefix = "172.16.1.0/24") {
  const net = new Vl3Network();
  net.reset(prefix);
  return { net, ep: bind(chain(metadataServer(), vl3Server(net))) };
}

describe("vl3 network", () => {
  it("the block's first address is the endpoint's; the whole network is /16 (IPv4) as upstream", () => {
    const net = new Vl3Network();
    net.reset("172.16.1.0/24");
    assert.deepEqual(
      { ...net.share },
      { prefix: "172.16.1.0/24", self: "172.16.1.0/32", selfIp: "172.16.1.0", network: "172.16.0.0/16" },
    );
  });

  it("is Unavailable before the IPAM answered; refuses a block with no room", () => {
    const net = new Vl3Network();
    assert.throws(
      () => net.share,
      (e: unknown) => NsmError.from(e).code === Code.Unavailable,
    );
    assert.throws(
      () => net.reset("172.16.1.0/31"),
      (e: unknown) => NsmError.from(e).code === Code.InvalidArgument,
    );
    assert.throws(
      () => net.reset("172.16.1.0"),
      (e: unknown) => NsmError.from(e).code === Code.InvalidArgument,
    );
  });
});

describe("vl3 server", () => {
  it("gives a client an address of the block, the endpoint's address and routes to block and network", async () => {
    const { ep } = endpoint();
    const conn = await ep.request(request("c1"), ctx());
    assert.deepEqual(ipOf(conn), {
      src: ["172.16.1.1/32"],
      dst: ["172.16.1.0/32"],
      srcRoutes: ["172.16.1.0/24 via 172.16.1.0", "172.16.0.0/16 via 172.16.1.0"],
      dstRoutes: ["172.16.1.1/32"],
    });
    const again = await ep.request(create(NetworkServiceRequestSchema, { connection: conn }), ctx());
    assert.deepEqual(ipOf(again), ipOf(conn), "a refresh keeps everything");
    assert.deepEqual(ipOf(await ep.request(request("c2"), ctx())).src, ["172.16.1.2/32"]);
  });

  it("Close frees the address; a restarted endpoint gives a client its address back", async () => {
    const { ep } = endpoint();
    const c1 = await ep.request(request("c1"), ctx());
    await ep.close(c1, ctx());
    assert.deepEqual(ipOf(await ep.request(request("c2"), ctx())).src, ["172.16.1.1/32"]);
    const restarted = endpoint().ep;
    const back = await restarted.request(request("c3", { src: ["172.16.1.7/32"], dst: ["172.16.1.0/32"] }), ctx());
    assert.deepEqual(ipOf(back).src, ["172.16.1.7/32"]);
  });

  it("a client healing from another vL3 endpoint loses that endpoint's addresses and routes", async () => {
    const { ep } = endpoint("172.16.2.0/24");
    const req = request("c1", { src: ["172.16.1.5/32", "10.9.9.9/32"], dst: ["172.16.1.0/32"] });
    req.connection!.context!.ipContext!.srcRoutes.push(
      create(RouteSchema, { prefix: "172.16.1.0/24", nextHop: "172.16.1.0" }),
    );
    const conn = await ep.request(req, ctx());
    assert.deepEqual(ipOf(conn), {
      src: ["10.9.9.9/32", "172.16.2.1/32"],
      dst: ["172.16.2.0/32"],
      srcRoutes: ["172.16.2.0/24 via 172.16.2.0", "172.16.0.0/16 via 172.16.2.0"],
      dstRoutes: ["172.16.2.1/32"],
    });
  });

  it("a peer (announcing its block) keeps its addresses and gets a route to this block only", async () => {
    const { net, ep } = endpoint("172.16.1.0/24");
    const peer = new Vl3Network();
    peer.reset("172.16.2.0/24");
    const tail: NetworkServiceElement = { name: "t", request: async (r) => r.connection!, close: async () => {} };
    const client = bind(chain(vl3Client(peer), tail));
    const announced = await client.request(request("p1"), ctx());
    assert.deepEqual(ipOf(announced), {
      src: ["172.16.2.0/32"],
      dst: [],
      srcRoutes: [],
      dstRoutes: ["172.16.2.0/24 via 172.16.2.0"],
    });
    const conn = await ep.request(create(NetworkServiceRequestSchema, { connection: announced }), ctx());
    assert.deepEqual(ipOf(conn), {
      src: ["172.16.2.0/32"],
      dst: ["172.16.1.0/32"],
      srcRoutes: ["172.16.1.0/24 via 172.16.1.0"],
      dstRoutes: ["172.16.2.0/24 via 172.16.2.0"],
    });
    assert.deepEqual(
      ipOf(await ep.request(request("c1"), ctx())).src,
      ["172.16.1.1/32"],
      "no client address was taken",
    );
    assert.deepEqual(net.peerAddresses, ["172.16.2.0"]);
    await ep.close(conn, ctx());
    assert.deepEqual(net.peerAddresses, []);
  });

  it("a new block: the next refresh moves the client to it", async () => {
    const { net, ep } = endpoint("172.16.1.0/24");
    const c1 = await ep.request(request("c1"), ctx());
    net.reset("172.16.5.0/24");
    const moved = await ep.request(create(NetworkServiceRequestSchema, { connection: c1 }), ctx());
    assert.deepEqual(ipOf(moved).src, ["172.16.5.1/32"]);
    assert.deepEqual(ipOf(moved).dst, ["172.16.5.0/32"]);
  });

  it("an exhausted block is ResourceExhausted and a failed Request keeps nothing", async () => {
    const net = new Vl3Network();
    net.reset("10.0.0.0/30");
    let fail = true;
    const failing: NetworkServiceElement = {
      name: "f",
      request: async (r) => {
        if (fail) throw new NsmError("down", Code.Unavailable);
        return r.connection!;
      },
      close: async () => {},
    };
    const ep = bind(chain(metadataServer(), vl3Server(net), failing));
    await assert.rejects(ep.request(request("a"), ctx()), (e: unknown) => NsmError.from(e).code === Code.Unavailable);
    fail = false;
    assert.deepEqual(ipOf(await ep.request(request("a"), ctx())).src, ["10.0.0.1/32"]);
    assert.deepEqual(ipOf(await ep.request(request("b"), ctx())).src, ["10.0.0.2/32"]);
    assert.deepEqual(ipOf(await ep.request(request("c"), ctx())).src, ["10.0.0.3/32"]);
    await assert.rejects(
      ep.request(request("d"), ctx()),
      (e: unknown) => NsmError.from(e).code === Code.ResourceExhausted,
    );
  });
});

describe("vl3 peers", () => {
  it("of each pair, the endpoint whose name sorts last connects", () => {
    assert.equal(connectsTo("vl3-b", "vl3-a"), true);
    assert.equal(connectsTo("vl3-a", "vl3-b"), false);
    assert.equal(connectsTo("vl3-a", "vl3-a"), false);
  });

  it("connects to endpoints as they register and closes them when they leave", async () => {
    const life = new AbortController();
    const registry = memoryRegistry({ signal: life.signal });
    const requested: string[] = [];
    const closed: string[] = [];
    const client = {
      request: async (r: { connection?: Connection }) => {
        requested.push(r.connection!.networkServiceEndpointName);
        return r.connection!;
      },
      close: async (c: Connection) => {
        closed.push(c.networkServiceEndpointName);
        return undefined;
      },
    };
    const nse = (name: string) =>
      create(NetworkServiceEndpointSchema, { name, networkServiceNames: ["vl3"], url: "unix:///x" });
    await registry.nse.register(nse("vl3-a"), ctx());
    const peers = vl3Peers({
      name: "vl3-m",
      service: "vl3",
      registry: registry.nse,
      client: client as never,
      log: ctx().log,
      retryMs: 20,
    });
    try {
      await registry.nse.register(nse("vl3-z"), ctx());
      await registry.nse.register(nse("vl3-b"), ctx());
      for (let i = 0; i < 100 && peers.connected.size < 2; i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual([...peers.connected.keys()].sort(), ["vl3-a", "vl3-b"]);
      await peers.reannounce();
      assert.deepEqual(requested.sort(), ["vl3-a", "vl3-a", "vl3-b", "vl3-b"], "each peer requested again");
      requested.length = 0;
      await registry.nse.unregister(nse("vl3-a"), ctx());
      for (let i = 0; i < 100 && closed.length < 1; i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(closed, ["vl3-a"]);
    } finally {
      await peers.stop();
      life.abort();
    }
    assert.deepEqual(requested, []);
    assert.deepEqual(closed.sort(), ["vl3-a", "vl3-b"]);
  });

  it("a lost peer connection is dropped at once and requested again until the peer is back", async () => {
    const life = new AbortController();
    const registry = memoryRegistry({ signal: life.signal });
    let peerUp = true;
    let requests = 0;
    const client = {
      request: async (r: { connection?: Connection }) => {
        requests++;
        if (!peerUp) throw new NsmError("dial failed", Code.Unavailable);
        return r.connection!;
      },
      close: async () => undefined,
    };
    await registry.nse.register(
      create(NetworkServiceEndpointSchema, { name: "vl3-a", networkServiceNames: ["vl3"], url: "unix:///x" }),
      ctx(),
    );
    const peers = vl3Peers({
      name: "vl3-m",
      service: "vl3",
      registry: registry.nse,
      client: client as never,
      log: ctx().log,
      retryMs: 20,
    });
    const until = async (cond: () => boolean) => {
      for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(cond());
    };
    try {
      await until(() => peers.connected.size === 1);
      const conn = peers.connected.get("vl3-a")!;
      peerUp = false;
      const before = requests;
      peers.lost(conn);
      assert.equal(peers.connected.has("vl3-a"), false, "dropped at once, not at registry expiry");
      await until(() => requests >= before + 2);
      assert.equal(peers.connected.size, 0, "not connected while the peer is down");
      peerUp = true;
      await until(() => peers.connected.has("vl3-a"));
    } finally {
      await peers.stop();
      life.abort();
    }
  });
});
