// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer as createNetServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, it } from "node:test";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { create, NetworkService, NetworkServiceRequestSchema } from "../api/index.js";
import { bind, chain, type NetworkServiceElement, passThrough } from "../sdk/core/chain.js";
import { CallContext } from "../sdk/core/context.js";
import { Code, NsmError } from "../sdk/core/errors.js";
import { silentLogger } from "../sdk/core/logger.js";
import { setChainTracer } from "../sdk/core/tracing.js";
import { closeChannel, dialChannel } from "../sdk/grpc/dial.js";
import { bindUrls, shutdown } from "../sdk/grpc/listen.js";
import { addService, grpcClient } from "../sdk/grpc/service.js";
import { createTracing, parseOtlpEndpoint, type Tracing } from "./trace.js";

const request = (id: string) => create(NetworkServiceRequestSchema, { connection: { id } });
const ctx = () => CallContext.create({ deadline: Date.now() + 10_000 });

function failing(name: string): NetworkServiceElement {
  return {
    name,
    request: async () => {
      throw new NsmError("no endpoint", Code.NotFound);
    },
    close: (conn, c, next) => next.close(conn, c),
  };
}

function started(serviceName: string): { tracing: Tracing; spans: InMemorySpanExporter } {
  const spans = new InMemorySpanExporter();
  const tracing = createTracing({ serviceName, exporter: spans, log: silentLogger });
  setChainTracer(tracing.tracer);
  return { tracing, spans };
}

const byName = (spans: readonly ReadableSpan[], name: string) => spans.find((s) => s.name === name);
const parentId = (s: ReadableSpan | undefined) => s?.parentSpanContext?.spanId;

describe("parseOtlpEndpoint (NSM_OPEN_TELEMETRY_ENDPOINT)", () => {
  it("takes upstream's host:port as plaintext gRPC, URLs and unix sockets; rejects the rest", () => {
    assert.deepEqual(parseOtlpEndpoint("otel-collector.observability.svc.cluster.local:4317"), {
      url: "http://otel-collector.observability.svc.cluster.local:4317",
      tls: false,
    });
    assert.deepEqual(parseOtlpEndpoint("https://c:4317"), { url: "https://c:4317", tls: true });
    assert.deepEqual(parseOtlpEndpoint("[::1]:4317"), { url: "http://[::1]:4317", tls: false });
    assert.deepEqual(parseOtlpEndpoint("unix:///run/otlp.sock"), { url: "unix:///run/otlp.sock", tls: false });
    for (const bad of ["", "collector", "c:99999", "ftp://c:1", "a b:1"]) assert.throws(() => parseOtlpEndpoint(bad));
  });
});

describe("chain tracing", () => {
  afterEach(() => setChainTracer(undefined));

  it("opens one span per element, each the parent of the next, with upstream's attributes", async () => {
    const { tracing, spans } = started("nsmgr-1");
    await bind(chain(passThrough("first"), passThrough("second"))).request(request("conn-1"), ctx());
    await tracing.flush();
    const all = spans.getFinishedSpans();
    const first = byName(all, "first.Request");
    const second = byName(all, "second.Request");
    assert.ok(first && second, all.map((s) => s.name).join(","));
    assert.equal(parentId(second), first.spanContext().spanId);
    assert.equal(parentId(first), undefined);
    assert.equal(second.spanContext().traceId, first.spanContext().traceId);
    assert.deepEqual(first.attributes, { type: "networkService", id: "conn-1" });
    assert.equal(first.resource.attributes["service.name"], "nsmgr-1");
    await tracing.shutdown();
  });

  it("marks the failing element's span and the ones above it as errors", async () => {
    const { tracing, spans } = started("nsc-1");
    await assert.rejects(bind(chain(passThrough("outer"), failing("inner"))).request(request("c"), ctx()));
    await tracing.flush();
    const inner = byName(spans.getFinishedSpans(), "inner.Request");
    assert.equal(inner?.status.code, 2 /* ERROR */);
    assert.match(inner?.status.message ?? "", /no endpoint/);
    assert.equal(byName(spans.getFinishedSpans(), "outer.Request")?.status.code, 2);
    await tracing.shutdown();
  });

  it("records nothing when no tracer is installed", async () => {
    const spans = new InMemorySpanExporter();
    const tracing = createTracing({ serviceName: "x", exporter: spans, log: silentLogger });
    await bind(chain(passThrough("a"))).request(request("c"), ctx());
    await tracing.flush();
    assert.equal(spans.getFinishedSpans().length, 0);
    await tracing.shutdown();
  });

  it("continues the caller's trace across a gRPC hop (traceparent metadata)", async () => {
    const { tracing, spans } = started("both");
    const dir = mkdtempSync(join(tmpdir(), "nsm-trace-"));
    const server = new grpc.Server();
    const remote = bind(chain(passThrough("remote")));
    addService(server, NetworkService, {
      request: (req, c) => remote.request(req, c),
      close: async () => create(EmptySchema),
    });
    const [url] = await bindUrls(server, [`unix://${join(dir, "s.sock")}`]);
    const channel = dialChannel(url!);
    try {
      const client = grpcClient(NetworkService, channel);
      const caller: NetworkServiceElement = {
        name: "caller",
        request: (req, c) => client.request(req, c),
        close: async () => {},
      };
      await bind(chain(passThrough("local"), caller)).request(request("c-2"), ctx());
      await tracing.flush();
      const all = spans.getFinishedSpans();
      const local = byName(all, "caller.Request");
      const served = byName(all, "remote.Request");
      assert.ok(local && served, all.map((s) => s.name).join(","));
      assert.equal(served.spanContext().traceId, local.spanContext().traceId);
      assert.equal(parentId(served), local.spanContext().spanId);
    } finally {
      closeChannel(channel);
      await shutdown(server, 2000);
      rmSync(dir, { recursive: true, force: true });
      await tracing.shutdown();
    }
  });

  for (const collector of ["absent", "silent"] as const) {
    it(`a collector that is ${collector} neither fails nor slows a Request, and shutdown is bounded`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "nsm-trace-"));
      const socket = join(dir, "otlp.sock");
      // silent: accepts connections and never answers (a hung collector).
      const accepted: Socket[] = [];
      const silent = createNetServer((socket) => accepted.push(socket));
      if (collector === "silent") await new Promise<void>((r) => silent.listen(socket, r));
      const tracing = createTracing({
        serviceName: "x",
        target: parseOtlpEndpoint(`unix://${socket}`),
        log: silentLogger,
        exportDelayMs: 10,
        exportTimeoutMs: 1000,
      });
      setChainTracer(tracing.tracer);
      try {
        const bound = bind(chain(passThrough("a"), passThrough("b")));
        const t0 = performance.now();
        for (let i = 0; i < 200; i++) await bound.request(request(`c-${i}`), ctx());
        const perRequestMs = (performance.now() - t0) / 200;
        assert.ok(perRequestMs < 5, `a Request took ${perRequestMs} ms with the collector ${collector}`);
        await new Promise((r) => setTimeout(r, 100)); // exports are attempted and fail or hang meanwhile
        const t1 = performance.now();
        const conn = await bound.request(request("last"), ctx());
        assert.equal(conn.id, "last");
        assert.ok(performance.now() - t1 < 50);
      } finally {
        const t2 = performance.now();
        await tracing.shutdown();
        assert.ok(performance.now() - t2 < 3000, "shutdown waited for the collector");
        for (const socket of accepted) socket.destroy();
        silent.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
