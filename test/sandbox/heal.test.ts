// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  type Connection,
  ConnectionEventType,
  create,
  MonitorConnection,
  MonitorScopeSelectorSchema,
  State,
} from "../../src/api/index.js";
import { CallContext } from "../../src/sdk/core/context.js";
import { closeChannel, dialChannel } from "../../src/sdk/grpc/dial.js";
import { grpcClient } from "../../src/sdk/grpc/service.js";
import { healClient } from "../../src/sdk/networkservice/common/heal/index.js";
import { kernelMechanismServer } from "../../src/sdk/networkservice/common/kernelmechanism/index.js";
import { mechanismsServer } from "../../src/sdk/networkservice/common/mechanisms/index.js";
import { point2pointIpamServer } from "../../src/sdk/networkservice/common/point2pointipam/index.js";
import { deadlineContext, nscRequest } from "../../src/sdk/testing/requests.js";
import { createSandbox, type Sandbox } from "../../src/sdk/testing/sandbox.js";

const ctx = () => deadlineContext();

/** The connections a hop reports now for the client connection `nscId` (MonitorConnections' initial state). */
async function reported(url: string, nscId: string): Promise<Connection[]> {
  const ch = dialChannel(url);
  const stop = new AbortController();
  const watchCtx = CallContext.create().withCancel({ signal: stop.signal, timeoutMs: 5000 });
  try {
    const selector = create(MonitorScopeSelectorSchema, { pathSegments: [{ id: nscId }] });
    for await (const e of grpcClient(MonitorConnection, ch).monitorConnections(selector, watchCtx)) {
      assert.equal(e.type, ConnectionEventType.INITIAL_STATE_TRANSFER);
      return Object.values(e.connections);
    }
    return [];
  } finally {
    stop.abort();
    closeChannel(ch);
  }
}
const request = (service: string, id: string) => nscRequest(service, id);

function healed(): {
  wait(): Promise<{ conn: Connection; how: string }>;
  onHealed: (c: Connection, how: string) => void;
} {
  let resolve: (v: { conn: Connection; how: string }) => void = () => {};
  let p = new Promise<{ conn: Connection; how: string }>((r) => {
    resolve = r;
  });
  return {
    wait: () => p,
    onHealed: (conn, how) => {
      resolve({ conn, how });
      p = new Promise((r) => {
        resolve = r;
      });
    },
  };
}

describe("sandbox: heal", () => {
  let sb: Sandbox;
  const lifetime = new AbortController();
  before(async () => {
    sb = await createSandbox({ nodes: 1 });
  });
  after(async () => {
    lifetime.abort();
    await sb.close();
  });

  it("reselects another endpoint when its endpoint dies", async () => {
    await sb.registerNetworkService({ name: "heal-nse", payload: "ETHERNET" });
    const a = await sb.addEndpoint({ name: "nse-a", networkServices: ["heal-nse"], cidrPrefixes: ["10.1.0.0/24"] });
    await sb.addEndpoint({ name: "nse-b", networkServices: ["heal-nse"], cidrPrefixes: ["10.2.0.0/24"] });
    const h = healed();
    const client = sb.client({ name: "h1", heal: healClient({ signal: lifetime.signal, onHealed: h.onHealed }) });
    let conn = await client.request(request("heal-nse", "h1-0"), ctx());
    if (conn.networkServiceEndpointName !== "nse-a") {
      // Make sure the endpoint we kill is the one in use.
      await client.close(conn, ctx());
      conn = await client.request(request("heal-nse", "h1-0"), ctx());
    }
    assert.equal(conn.networkServiceEndpointName, "nse-a");
    const t0 = Date.now();
    await a.stop();
    const { conn: after, how } = await h.wait();
    assert.equal(how, "reselect");
    assert.equal(after.networkServiceEndpointName, "nse-b");
    // The new endpoint's IPAM drops the old endpoint's addresses on a reselect.
    assert.deepEqual(after.context?.ipContext?.srcIpAddrs, ["10.2.0.1/32"], "an address from the new endpoint only");
    assert.ok(Date.now() - t0 < 5000, `healed in ${Date.now() - t0} ms`);
    // A successful reselect leaves the connection UP, as returned and as every hop reports it.
    assert.equal(State[after.state], "UP", "the healed connection as returned to the client");
    await new Promise((r) => setTimeout(r, 200));
    const hops = [sb.nodes[0]!.nsmgr, ...sb.nodes[0]!.forwarders, sb.endpoints.get("nse-b")!];
    for (const hop of hops) {
      const seen = await reported(hop.url, "h1-0");
      assert.equal(seen.length, 1, `${hop.name} reports the healed connection`);
      assert.equal(State[seen[0]!.state], "UP", `${hop.name} reports it UP`);
    }
    await client.close(after, ctx());
  });

  it("re-requests on the same path after an nsmgr restart when the data plane is alive", async () => {
    await sb.registerNetworkService({ name: "heal-mgr", payload: "ETHERNET" });
    await sb.addEndpoint({ name: "nse-m", networkServices: ["heal-mgr"], cidrPrefixes: ["10.3.0.0/24"] });
    const h = healed();
    const client = sb.client({
      name: "h2",
      heal: healClient({
        signal: lifetime.signal,
        onHealed: h.onHealed,
        livenessCheck: async () => true,
        livenessCheckIntervalMs: 60_000,
      }),
    });
    const conn = await client.request(request("heal-mgr", "h2-0"), ctx());
    await sb.nodes[0]!.nsmgr.restart();
    const { conn: after, how } = await h.wait();
    assert.equal(how, "re-request");
    assert.deepEqual(
      after.path?.pathSegments.map((s) => s.id),
      conn.path?.pathSegments.map((s) => s.id),
      "the same path: same nsmgr, forwarder and endpoint segments",
    );
    assert.deepEqual(after.context?.ipContext?.srcIpAddrs, conn.context?.ipContext?.srcIpAddrs);
    await client.close(after, ctx());
  });
});

describe("sandbox: refresh requested by the endpoint", () => {
  let sb: Sandbox;
  const lifetime = new AbortController();
  before(async () => {
    sb = await createSandbox({ nodes: 1 });
  });
  after(async () => {
    lifetime.abort();
    await sb.close();
  });

  it("a REFRESH_REQUESTED event from the endpoint makes the client re-request its connection", async () => {
    await sb.registerNetworkService({ name: "heal-refresh", payload: "ETHERNET" });
    const requests: string[] = [];
    const nse = await sb.addEndpoint({
      name: "nse-r",
      networkServices: ["heal-refresh"],
      additional: [
        {
          name: "countRequests",
          request: (req, c, next) => {
            requests.push(req.connection!.id);
            return next.request(req, c);
          },
          close: (conn, c, next) => next.close(conn, c),
        },
        point2pointIpamServer({ prefixes: ["10.4.0.0/24"] }),
        mechanismsServer({ KERNEL: kernelMechanismServer() }),
      ],
    });
    const client = sb.client({ name: "h4", heal: healClient({ signal: lifetime.signal }) });
    const conn = await client.request(request("heal-refresh", "h4-0"), ctx());
    assert.equal(requests.length, 1);
    const atEndpoint = conn.path!.pathSegments.at(-1)!.id;
    nse.endpoint!.monitor.refreshRequested(atEndpoint);
    const deadline = Date.now() + 5000;
    while (requests.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(requests, [atEndpoint, atEndpoint], "the same connection was requested again");
    await client.close(conn, ctx());
  });
});

describe("sandbox: network service changes", () => {
  let sb: Sandbox;
  const lifetime = new AbortController();
  before(async () => {
    sb = await createSandbox({ nodes: 1 });
  });
  after(async () => {
    lifetime.abort();
    await sb.close();
  });

  it("moves a live client to the endpoint its NetworkService now selects (change-nse-dynamically)", async () => {
    const selecting = (color: string) => ({
      name: "color",
      payload: "ETHERNET",
      matches: [{ routes: [{ destinationSelector: { color } }] }],
    });
    await sb.registerNetworkService(selecting("blue"));
    await sb.addEndpoint({
      name: "nse-blue",
      networkServices: ["color"],
      labels: { color: "blue" },
      cidrPrefixes: ["172.16.2.100/31"],
    });
    await sb.addEndpoint({
      name: "nse-green",
      networkServices: ["color"],
      labels: { color: "green" },
      cidrPrefixes: ["172.16.1.100/31"],
    });
    const h = healed();
    const client = sb.client({ name: "h3", heal: healClient({ signal: lifetime.signal, onHealed: h.onHealed }) });
    const conn = await client.request(request("color", "h3-0"), ctx());
    assert.equal(conn.networkServiceEndpointName, "nse-blue");
    await sb.registerNetworkService(selecting("green"));
    const { conn: moved } = await h.wait();
    assert.equal(moved.networkServiceEndpointName, "nse-green");
    await sb.registerNetworkService(selecting("blue"));
    const { conn: back } = await h.wait();
    assert.equal(back.networkServiceEndpointName, "nse-blue");
    await client.close(back, ctx());
  });
});
