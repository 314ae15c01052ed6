// SPDX-License-Identifier: Apache-2.0
/**
 * Trace collectors for tests and benchmarks:
 * - {@link startJaeger}: the real Jaeger v2 (scripts/peers.d/jaeger.sh) with in-memory storage,
 *   receiving OTLP/gRPC on a unix socket (reachable from every netns of the local runtime, pods
 *   included, since they share the filesystem) and serving its query API on a loopback port of
 *   the root netns;
 * - {@link startOtlpSink}: a stand-in OTLP/gRPC trace receiver that accepts every export and
 *   counts the bytes (for the benchmark's smoke run when Jaeger is not built).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { openSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { peerPath } from "./peers.js";

export interface Collector {
  /** NSM_OPEN_TELEMETRY_ENDPOINT for the roles: `unix:///…/otlp.sock`. */
  readonly endpoint: string;
  stop(): Promise<void>;
}

export interface Jaeger extends Collector {
  /** `http://127.0.0.1:PORT`: Jaeger's query API (`/api/traces`, `/api/services`). */
  readonly queryUrl: string;
  /** Jaeger's own log. */
  readonly logFile: string;
}

/** A free TCP port on 127.0.0.1. */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

function jaegerConfig(socket: string, queryPort: number, grpcPort: number): string {
  return `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
extensions:
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:${queryPort}
    grpc:
      endpoint: 127.0.0.1:${grpcPort}
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: ${socket}
        transport: unix
processors:
  batch:
    timeout: 200ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`;
}

async function waitUntil(what: string, proc: ChildProcess, ok: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (proc.exitCode !== null) throw new Error(`${what} exited with ${proc.exitCode}`);
    if (await ok().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} not ready after ${ms} ms`);
}

/** Starts Jaeger in the root netns with its files in `dir`; stop() ends it by its PID. */
export async function startJaeger(dir: string): Promise<Jaeger> {
  const socket = join(dir, "otlp.sock");
  const [queryPort, grpcPort] = [await freePort(), await freePort()];
  const config = join(dir, "jaeger.yaml");
  writeFileSync(config, jaegerConfig(socket, queryPort, grpcPort));
  const logFile = join(dir, "jaeger.log");
  const out = openSync(logFile, "a");
  const proc = spawn(peerPath("jaeger"), ["--config", config], { stdio: ["ignore", out, out] });
  const queryUrl = `http://127.0.0.1:${queryPort}`;
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill("SIGTERM");
    await new Promise((r) => proc.once("exit", r));
  };
  try {
    await waitUntil("jaeger", proc, async () => (await fetch(`${queryUrl}/api/services`)).ok, 60_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { endpoint: `unix://${socket}`, queryUrl, logFile, stop };
}

/** An OTLP/gRPC trace receiver that accepts everything (see the module doc). */
export async function startOtlpSink(dir: string): Promise<Collector & { received(): number }> {
  const socket = join(dir, "otlp-sink.sock");
  const server = new grpc.Server();
  let bytes = 0;
  const service: grpc.ServiceDefinition = {
    export: {
      path: "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
      requestStream: false,
      responseStream: false,
      requestSerialize: (b: Buffer) => b,
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: () => Buffer.alloc(0), // an empty ExportTraceServiceResponse
      responseDeserialize: (b: Buffer) => b,
    },
  };
  server.addService(service, {
    export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
      bytes += call.request.length;
      done(null, Buffer.alloc(0));
    },
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    ),
  );
  return {
    endpoint: `unix://${socket}`,
    received: () => bytes,
    stop: () => new Promise<void>((r) => server.tryShutdown(() => r())),
  };
}
