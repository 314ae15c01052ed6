// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  type Connection,
  ConnectionEventType,
  create,
  MonitorConnection,
  MonitorScopeSelectorSchema,
  NetworkServiceRequestSchema,
  State,
} from "../../src/api/index.js";
import { CallContext } from "../../src/sdk/core/context.js";
import { Code, type NsmError } from "../../src/sdk/core/errors.js";
import { closeChannel, dialChannel } from "../../src/sdk/grpc/dial.js";
import { grpcClient } from "../../src/sdk/grpc/service.js";
import { deadlineContext, nscRequest } from "../../src/sdk/testing/requests.js";
import { createSandbox, type Sandbox } from "../../src/sdk/testing/sandbox.js";

const ctx = () => deadlineContext();
const request = (service: string, id: string, labels: Record<string, string> = {}) =>
  nscRequest(service, id, { labels });

async function collect<T>(it: AsyncIterable<T>, n: number): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) {
    out.push(x);
    if (out.length >= n) break;
  }
  return out;
}

describe("sandbox: local connections", () => {
  let sb: Sandbox;
  before(async () => {
    sb = await createSandbox({ nodes: 1 });
    await sb.registerNetworkService({ name: "kernel2kernel", payload: "ETHERNET" });
    await sb.addEndpoint({ name: "nse-kernel", networkServices: ["kernel2kernel"], cidrPrefixes: ["172.16.1.100/31"] });
  });
  after(() => sb.close());

  it("builds the 4-segment path nsc → nsmgr → forwarder → nse with p2p addresses", async () => {
    const client = sb.client({ name: "alpine" });
    const conn = await client.request(request("kernel2kernel", "alpine-0"), ctx());
    try {
      assert.deepEqual(
        conn.path?.pathSegments.map((s) => s.name),
        ["alpine", "nsmgr-0", "forwarder-0", "nse-kernel"],
      );
      assert.equal(conn.path?.index, 0);
      assert.equal(conn.id, "alpine-0");
      assert.equal(conn.path?.pathSegments[0]?.id, "alpine-0");
      const ids = conn.path!.pathSegments.slice(1).map((s) => s.id);
      for (const id of ids) assert.match(id, /^[0-9a-f-]{36}$/, "later hops get UUIDs");
      assert.equal(new Set(ids).size, 3);
      assert.equal(conn.networkServiceEndpointName, "nse-kernel");
      assert.equal(conn.payload, "ETHERNET");
      assert.equal(conn.state, State.UP);
      assert.equal(conn.mechanism?.type, "KERNEL");
      const ip = conn.context?.ipContext;
      assert.deepEqual(ip?.srcIpAddrs, ["172.16.1.101/32"]);
      assert.deepEqual(ip?.dstIpAddrs, ["172.16.1.100/32"]);
      assert.deepEqual(
        ip?.srcRoutes.map((r) => r.prefix),
        ["172.16.1.100/32"],
      );
      assert.deepEqual(
        ip?.dstRoutes.map((r) => r.prefix),
        ["172.16.1.101/32"],
      );
      assert.equal(conn.labels.nodeName, "node-0", "nsmgr's clientinfo stamps the node");
      const again = await client.request(create(NetworkServiceRequestSchema, { connection: conn }), ctx());
      assert.deepEqual(again.context?.ipContext?.srcIpAddrs, ["172.16.1.101/32"], "a refresh keeps the addresses");
      assert.equal(again.path?.pathSegments[3]?.id, conn.path?.pathSegments[3]?.id, "a refresh keeps the path");
    } finally {
      await client.close(conn, ctx());
    }
  });

  it("says which network service is unknown (NotFound)", async () => {
    const client = sb.client({ name: "lost" });
    await assert.rejects(client.request(request("no-such-service", "lost-0"), ctx()), (e: NsmError) => {
      assert.equal(e.code, Code.NotFound);
      assert.match(e.rawMessage, /no-such-service/);
      return true;
    });
  });

  it("rejects malformed requests with InvalidArgument and keeps no state", async () => {
    const client = sb.client({ name: "bad" });
    await assert.rejects(
      client.request(request("", "bad-0"), ctx()),
      (e: NsmError) => e.code === Code.InvalidArgument && /network_service/.test(e.rawMessage),
    );
    const outOfRange = request("kernel2kernel", "bad-1");
    outOfRange.connection!.path = {
      $typeName: "connection.Path",
      index: 7,
      pathSegments: [{ $typeName: "connection.PathSegment", name: "bad", id: "bad-1", token: "", metrics: {} }],
    };
    await assert.rejects(
      client.request(outOfRange, ctx()),
      (e: NsmError) => e.code === Code.InvalidArgument && e.reason === "path-index-out-of-range",
    );
    const badName = request("kernel2kernel", "bad-2");
    badName.mechanismPreferences = [
      {
        $typeName: "connection.Mechanism",
        cls: "LOCAL",
        type: "KERNEL",
        parameters: { name: "a-name-that-is-far-too-long" },
      },
    ];
    await assert.rejects(
      client.request(badName, ctx()),
      (e: NsmError) => e.code === Code.InvalidArgument && /interface name/.test(e.rawMessage),
    );
    const nsmgr = sb.nodes[0]!;
    assert.ok(nsmgr);
    const endpoint = sb.endpoints.get("nse-kernel")!.endpoint!;
    assert.equal(endpoint.monitor.connections().length, 0, "nothing reached the endpoint");
  });

  it("Close removes the connection everywhere and the client's monitor sees DELETE", async () => {
    const client = sb.client({ name: "watcher" });
    const conn = await client.request(request("kernel2kernel", "watcher-0"), ctx());
    const endpoint = sb.endpoints.get("nse-kernel")!.endpoint!;
    assert.equal(endpoint.monitor.connections().length, 1);
    const ch = dialChannel(sb.nodes[0]!.nsmgr.url);
    const watchCtx = CallContext.create().withCancel({ timeoutMs: 10_000 });
    const mon = grpcClient(MonitorConnection, ch).monitorConnections(
      create(MonitorScopeSelectorSchema, { pathSegments: [{ id: "watcher-0" }] }),
      watchCtx,
    );
    const events = collect(mon, 2);
    await new Promise((r) => setTimeout(r, 100));
    await client.close(conn, ctx());
    const [initial, deleted] = await events;
    closeChannel(ch);
    assert.equal(initial?.type, ConnectionEventType.INITIAL_STATE_TRANSFER);
    assert.ok(Object.values(initial!.connections).some((c: Connection) => c.path?.pathSegments[0]?.id === "watcher-0"));
    assert.equal(deleted?.type, ConnectionEventType.DELETE);
    assert.equal(endpoint.monitor.connections().length, 0, "the endpoint no longer has it");
  });
});

describe("sandbox: monitor passthrough", () => {
  let sb: Sandbox;
  before(async () => {
    sb = await createSandbox({ nodes: 1 });
  });
  after(() => sb.close());

  it("an endpoint's death reaches the client's monitor stream as state DOWN, through forwarder and nsmgr", async () => {
    await sb.registerNetworkService({ name: "fragile", payload: "ETHERNET" });
    const nse = await sb.addEndpoint({ name: "nse-fragile", networkServices: ["fragile"] });
    const client = sb.client({ name: "victim" });
    const conn = await client.request(request("fragile", "victim-0"), ctx());
    const ch = dialChannel(sb.nodes[0]!.nsmgr.url);
    const watchCtx = CallContext.create().withCancel({ timeoutMs: 10_000 });
    const stream = grpcClient(MonitorConnection, ch)
      .monitorConnections(create(MonitorScopeSelectorSchema, { pathSegments: [{ id: "victim-0" }] }), watchCtx)
      [Symbol.asyncIterator]();
    try {
      const initial = await stream.next();
      assert.equal(initial.value?.type, ConnectionEventType.INITIAL_STATE_TRANSFER);
      await nse.stop();
      let seen: Connection | undefined;
      for (let r = await stream.next(); !r.done; r = await stream.next()) {
        const c = Object.values(r.value.connections)[0];
        if (c?.state === State.DOWN) {
          seen = c;
          break;
        }
      }
      assert.equal(seen?.state, State.DOWN);
      assert.equal(seen?.path?.pathSegments[0]?.id, "victim-0", "the event is about the client's connection");
    } finally {
      await stream.return?.();
      closeChannel(ch);
      await client.close(conn, ctx()).catch(() => {});
    }
  });
});

describe("sandbox: selection", () => {
  let sb: Sandbox;
  before(async () => {
    sb = await createSandbox({ nodes: 1 });
  });
  after(() => sb.close());

  it("spreads 4 clients over 2 endpoints round-robin", async () => {
    await sb.registerNetworkService({ name: "spread", payload: "ETHERNET" });
    await sb.addEndpoint({ name: "nse-a", networkServices: ["spread"], cidrPrefixes: ["10.0.0.0/24"] });
    await sb.addEndpoint({ name: "nse-b", networkServices: ["spread"], cidrPrefixes: ["10.0.1.0/24"] });
    const conns: Connection[] = [];
    const clients = [0, 1, 2, 3].map((i) => sb.client({ name: `c${i}` }));
    for (const [i, c] of clients.entries()) conns.push(await c.request(request("spread", `c${i}-0`), ctx()));
    const counts = new Map<string, number>();
    for (const c of conns)
      counts.set(c.networkServiceEndpointName, (counts.get(c.networkServiceEndpointName) ?? 0) + 1);
    assert.deepEqual([...counts.entries()].sort(), [
      ["nse-a", 2],
      ["nse-b", 2],
    ]);
    for (const [i, c] of clients.entries()) await c.close(conns[i]!, ctx());
  });

  it("routes app=firewall to vpn-gateway and everyone else to firewall (matches)", async () => {
    await sb.registerNetworkService({
      name: "secure-intranet-connectivity",
      payload: "ETHERNET",
      matches: [
        { sourceSelector: { app: "firewall" }, routes: [{ destinationSelector: { app: "vpn-gateway" } }] },
        { routes: [{ destinationSelector: { app: "firewall" } }] },
      ],
    });
    await sb.addEndpoint({
      name: "vpn-gateway",
      networkServices: ["secure-intranet-connectivity"],
      labels: { app: "vpn-gateway" },
    });
    await sb.addEndpoint({
      name: "firewall",
      networkServices: ["secure-intranet-connectivity"],
      labels: { app: "firewall" },
    });
    const fw = sb.client({ name: "fw" });
    const other = sb.client({ name: "other" });
    const a = await fw.request(request("secure-intranet-connectivity", "fw-0", { app: "firewall" }), ctx());
    const b = await other.request(request("secure-intranet-connectivity", "other-0", { app: "alpine" }), ctx());
    assert.equal(a.networkServiceEndpointName, "vpn-gateway");
    assert.equal(b.networkServiceEndpointName, "firewall");
    await fw.close(a, ctx());
    await other.close(b, ctx());
  });
});
