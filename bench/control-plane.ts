// SPDX-License-Identifier: Apache-2.0
/**
 * Control-plane cost of one local Request through the sandbox (nsc → nsmgr → forwarder → nse
 * over unix sockets, no data plane), next to the floor: 3 bare grpc-js unary calls (one per
 * hop) to a server that answers at once, in the same process and run.
 *
 * Usage: npm run bench:control-plane [-- --requests 1000] [--smoke]
 * --smoke: 20 requests (seconds; what scripts/bench-smoke.sh runs so the benchmark cannot rot).
 * The last line is JSON; the ratio is the figure (absolute times on a shared machine are noise).
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { ConnectionSchema, create, NetworkService, NetworkServiceRequestSchema } from "../src/api/index.js";
import { CallContext } from "../src/sdk/core/context.js";
import { closeChannel, dialChannel } from "../src/sdk/grpc/dial.js";
import { addService, grpcClient } from "../src/sdk/grpc/service.js";
import { createSandbox } from "../src/sdk/testing/sandbox.js";

const { values } = parseArgs({
  options: { requests: { type: "string", default: "1000" }, smoke: { type: "boolean", default: false } },
});
const N = values.smoke ? 20 : Number(values.requests);
if (!Number.isInteger(N) || N < 1) throw new Error("--requests must be a positive integer");
const WARMUP = Math.min(100, Math.ceil(N / 10));

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const round = (x: number) => Math.round(x * 1000) / 1000;

async function measureSandbox(): Promise<number[]> {
  const sb = await createSandbox({ nodes: 1 });
  try {
    await sb.registerNetworkService({ name: "bench", payload: "ETHERNET" });
    await sb.addEndpoint({ name: "nse-bench", networkServices: ["bench"], cidrPrefixes: ["10.0.0.0/8"] });
    const client = sb.client({ name: "nsc" });
    const times: number[] = [];
    for (let i = 0; i < N + WARMUP; i++) {
      const req = create(NetworkServiceRequestSchema, {
        connection: create(ConnectionSchema, { id: `nsc-${i}`, networkService: "bench" }),
      });
      const ctx = CallContext.create({ deadline: Date.now() + 10_000 });
      const t0 = performance.now();
      const conn = await client.request(req, ctx);
      const dt = performance.now() - t0;
      if (i >= WARMUP) times.push(dt);
      await client.close(conn, ctx);
      if (i % 200 === 0) process.stderr.write(`  sandbox: ${i}/${N + WARMUP}\r`);
    }
    return times;
  } finally {
    await sb.close();
  }
}

async function measureFloor(): Promise<number[]> {
  const dir = mkdtempSync(join(tmpdir(), "nsm-bench-"));
  const server = new grpc.Server();
  addService(server, NetworkService, {
    request: async (req) => req.connection!,
    close: async () => create(EmptySchema),
  });
  const url = `unix://${dir}/floor.sock`;
  await new Promise<void>((res, rej) =>
    server.bindAsync(url, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())),
  );
  const channel = dialChannel(url);
  const client = grpcClient(NetworkService, channel);
  try {
    const times: number[] = [];
    for (let i = 0; i < N + WARMUP; i++) {
      const req = create(NetworkServiceRequestSchema, {
        connection: create(ConnectionSchema, { id: `f-${i}`, networkService: "bench" }),
      });
      const ctx = CallContext.create({ deadline: Date.now() + 10_000 });
      const t0 = performance.now();
      for (let h = 0; h < 3; h++) await client.request(req, ctx);
      const dt = performance.now() - t0;
      if (i >= WARMUP) times.push(dt);
    }
    return times;
  } finally {
    closeChannel(channel);
    server.forceShutdown();
    rmSync(dir, { recursive: true, force: true });
  }
}

const floor = await measureFloor();
const ours = await measureSandbox();
const result = {
  requests: N,
  p50_ms: round(pct(ours, 50)),
  p95_ms: round(pct(ours, 95)),
  floor_p50_ms: round(pct(floor, 50)),
  floor_p95_ms: round(pct(floor, 95)),
  ratio_p50: round(pct(ours, 50) / pct(floor, 50)),
  ratio_p95: round(pct(ours, 95) / pct(floor, 95)),
};
console.log(`control plane, local Request (nsc→nsmgr→forwarder→nse), ${N} requests:`);
console.log(`  ours : p50 ${result.p50_ms} ms  p95 ${result.p95_ms} ms`);
console.log(`  floor (3 bare grpc-js unary calls): p50 ${result.floor_p50_ms} ms  p95 ${result.floor_p95_ms} ms`);
console.log(`  ratio: p50 ${result.ratio_p50}×  p95 ${result.ratio_p95}×`);
console.log(JSON.stringify(result));
