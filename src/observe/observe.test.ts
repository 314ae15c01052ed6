// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConnectionSchema, create, NetworkServiceRequestSchema, registry as reg } from "../api/index.js";
import type { LinkStats } from "../kernel/api.js";
import { bind, chain } from "../sdk/core/chain.js";
import { CallContext } from "../sdk/core/context.js";
import { Code, NsmError } from "../sdk/core/errors.js";
import { silentLogger } from "../sdk/core/logger.js";
import { metricsServer } from "../sdk/networkservice/common/metrics/index.js";
import { memoryRegistry } from "../sdk/registry/chains/memory/index.js";
import { nseKind } from "../sdk/registry/core/kind.js";
import { interfaceMetrics } from "./interfaces.js";
import { createRoleMetrics, parseListenOn, servePrometheus } from "./prometheus.js";
import { observeRegistry } from "./registry.js";

const STATS: LinkStats = {
  rxPackets: 20,
  txPackets: 21,
  rxBytes: 2000,
  txBytes: 2100,
  rxErrors: 0,
  txErrors: 0,
  rxDropped: 1,
  txDropped: 2,
};

function kernelConnection(id: string) {
  return create(ConnectionSchema, {
    id,
    networkService: "kernel2kernel",
    networkServiceEndpointName: "nse-1",
    mechanism: { cls: "LOCAL", type: "KERNEL", parameters: { name: "nsm-1", inodeURL: "file:///proc/42/ns/net" } },
    path: { index: 2, pathSegments: [{ name: "nsc" }, { name: "nsmgr-1" }, { name: "fwd-1" }, { name: "nse-1" }] },
  });
}

const request = (conn: ReturnType<typeof kernelConnection>) =>
  create(NetworkServiceRequestSchema, { connection: conn });

/** The value of the series `name` whose labels include all of `labels` (in any order). */
function value(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split("\n")) {
    const m = /^([a-z_]+)\{(.*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (Object.entries(labels).every(([k, v]) => m[2]!.includes(`${k}="${v}"`))) return Number(m[3]);
  }
  return undefined;
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  return res.text();
}

describe("parseListenOn", () => {
  it("accepts upstream's forms and rejects the rest", () => {
    assert.deepEqual(parseListenOn(":9090"), { host: undefined, port: 9090 });
    assert.deepEqual(parseListenOn("127.0.0.1:0"), { host: "127.0.0.1", port: 0 });
    assert.deepEqual(parseListenOn("[::1]:9091"), { host: "::1", port: 9091 });
    for (const bad of ["9090", "host:", ":99999", "http://x:1", "a b:1"]) assert.throws(() => parseListenOn(bad));
  });
});

describe("role metrics over HTTP", () => {
  it("serves call counts by code, latency, live connections and process metrics", async () => {
    const m = createRoleMetrics("nsmgr", "nsmgr-1");
    const server = await servePrometheus(m.registry, { host: "127.0.0.1", port: 0 }, silentLogger);
    try {
      const h = bind(
        chain(metricsServer(m.observer), {
          request: async (r, ctx, next) => {
            if (r.connection?.id === "bad") throw new NsmError("no", Code.PermissionDenied);
            return next.request(r, ctx);
          },
          close: (c, ctx, next) => next.close(c, ctx),
        }),
      );
      await h.request(request(kernelConnection("a")), CallContext.create());
      await h.request(request(kernelConnection("b")), CallContext.create());
      await assert.rejects(h.request(request(kernelConnection("bad")), CallContext.create()));
      const text = await scrape(server.url);
      const role = { role: "nsmgr", name: "nsmgr-1" };
      assert.equal(value(text, "nsm_calls_total", { ...role, op: "request", code: "OK" }), 2);
      assert.equal(value(text, "nsm_calls_total", { ...role, op: "request", code: "PermissionDenied" }), 1);
      assert.equal(value(text, "nsm_call_duration_seconds_count", { ...role, op: "request", code: "OK" }), 2);
      assert.equal(value(text, "nsm_connections", role), 2);
      m.observer.healed?.("reselect");
      assert.equal(value(await scrape(server.url), "nsm_heals_total", { ...role, how: "reselect" }), 1);
      assert.match(text, /process_resident_memory_bytes\{/);
      assert.equal((await fetch(server.url.replace("/metrics", "/other"))).status, 404);
    } finally {
      await server.close();
    }
  });
});

describe("forwarder interface counters", () => {
  it("fills the forwarder's path segment metrics and the labelled Prometheus counters", async () => {
    const m = createRoleMetrics("forwarder", "fwd-1");
    const asked: string[] = [];
    const counters = interfaceMetrics({
      kernel: {
        linkStats: async (netns, link) => {
          asked.push(`${netns} ${link}`);
          return STATS;
        },
      },
      name: "fwd-1",
      node: "node-1",
      log: silentLogger,
    });
    await counters.register(m.registry);
    const h = bind(counters.server);
    const first = await h.request(request(kernelConnection("c1")), CallContext.create());
    assert.deepEqual(first.path?.pathSegments[2]?.metrics, {}, "a first Request: its interface comes after");
    assert.deepEqual(asked, [], "nothing asked of the kernel for a first Request");
    const conn = await h.request(request(kernelConnection("c1")), CallContext.create());
    assert.equal(conn.path?.pathSegments[2]?.metrics.rx_bytes, "2000");
    assert.equal(conn.path?.pathSegments[2]?.metrics.tx_packets, "21");
    assert.equal(conn.path?.pathSegments[2]?.metrics.tx_drop_packets, "2");
    assert.deepEqual(conn.path?.pathSegments[1]?.metrics, {});
    assert.deepEqual(asked, ["/proc/42/ns/net nsm-1"]);
    const text = await m.registry.metrics();
    const labels = {
      service: "kernel2kernel",
      endpoint: "nse-1",
      node: "node-1",
      connection: "c1",
      interface: "nsm-1",
    };
    assert.equal(value(text, "nsm_interface_rx_bytes_total", labels), 2000);
    assert.equal(value(text, "nsm_interface_tx_packets_total", labels), 21);
    assert.equal(value(text, "nsm_interface_tx_drops_total", labels), 2);
    await new Promise((r) => setTimeout(r, 600)); // the next scrape reads again
    await h.close(conn, CallContext.create());
    assert.doesNotMatch(await m.registry.metrics(), /connection="c1"/);
  });

  it("reads a refresh that names the netns by another path (a sidecar after nsc --init) there", async () => {
    const asked: string[] = [];
    const counters = interfaceMetrics({
      kernel: {
        linkStats: async (netns, link) => {
          asked.push(`${netns} ${link}`);
          return netns === "/proc/43/ns/net" ? STATS : undefined;
        },
      },
      name: "fwd-1",
      log: silentLogger,
    });
    const h = bind(counters.server);
    await h.request(request(kernelConnection("c3")), CallContext.create());
    const moved = kernelConnection("c3");
    moved.mechanism!.parameters.inodeURL = "file:///proc/43/ns/net";
    const conn = await h.request(request(moved), CallContext.create());
    assert.equal(conn.path?.pathSegments[2]?.metrics.rx_bytes, "2000");
    assert.equal(asked.at(-1), "/proc/43/ns/net nsm-1");
  });

  it("never makes a Request wait long for a kernel that does not answer", async () => {
    const counters = interfaceMetrics({
      kernel: { linkStats: () => new Promise(() => {}) },
      name: "fwd-1",
      readTimeoutMs: 50,
      log: silentLogger,
    });
    const h = bind(counters.server);
    await h.request(request(kernelConnection("c2")), CallContext.create());
    const start = Date.now();
    const conn = await h.request(request(kernelConnection("c2")), CallContext.create());
    assert.ok(Date.now() - start < 1000);
    assert.deepEqual(conn.path?.pathSegments[2]?.metrics, {});
  });
});

describe("registry metrics", () => {
  it("counts records (expiry included) and open watchers", async () => {
    const m = createRoleMetrics("registry", "registry");
    const lifetime = new AbortController();
    const chains = observeRegistry(memoryRegistry({ signal: lifetime.signal }), m.registry);
    const ctx = CallContext.create();
    for (const name of ["nse-a", "nse-b"])
      await chains.nse.register(
        create(reg.NetworkServiceEndpointSchema, { name, networkServiceNames: ["s"], url: "tcp://1.2.3.4:5" }),
        ctx,
      );
    const watch = new AbortController();
    const it = chains.nse
      .find(nseKind.query(undefined, true), CallContext.create({ signal: watch.signal }))
      [Symbol.asyncIterator]();
    await it.next();
    let text = await m.registry.metrics();
    assert.match(text, /nsm_registry_records\{kind="nse",role="registry",name="registry"\} 2/);
    assert.match(text, /nsm_registry_watchers\{kind="nse",role="registry",name="registry"\} 1/);
    assert.match(
      text,
      /nsm_registry_calls_total\{kind="nse",op="register",code="OK",role="registry",name="registry"\} 2/,
    );
    watch.abort();
    await it.return?.();
    text = await m.registry.metrics();
    assert.match(text, /nsm_registry_watchers\{kind="nse",role="registry",name="registry"\} 0/);
    lifetime.abort();
  });
});
