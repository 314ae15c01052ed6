// SPDX-License-Identifier: Apache-2.0
/**
 * Mutated and random protobuf messages, sent as raw bytes, to every gRPC method of the registry
 * (memory backend), nsmgr, forwarder and endpoint (icmp-responder) of a local runtime started with
 * `nsm up --insecure`. Afterwards every process is alive with the same pid, every answer was a
 * clear gRPC status (no UNKNOWN, no stack trace, none past its deadline), no fd, netns or link is
 * left behind, and a good Request (the example's client pod) connects and pings.
 *
 * Bounded: NSM_FUZZ_SECONDS per target (default 6); NSM_FUZZ_SEED reproduces a run.
 */
import assert from "node:assert/strict";
import { readdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { registry } from "../../src/api/index.js";
import { linksOf, podNetns, skipReason, type TestRuntime, testRuntime } from "../local/helpers.js";
import { fuzzSeconds, fuzzSeed, holdings, leaks, Rng, rawClient, rawUnary, settle, unclear } from "./harness.js";
import {
  type FuzzReport,
  fuzzTarget,
  type Holder,
  NETWORK_SERVICES,
  REGISTRY_SERVICES,
  seeds,
  splitExample,
  startHolder,
  type Target,
} from "./targets.js";

const skip = skipReason();
const NS = "ns-kernel2kernel";

function endpointSocket(rt: TestRuntime): string {
  const dir = join(rt.dir, "tmp");
  const sub = readdirSync(dir).find((d) => d.startsWith("nse-kernel-"));
  if (!sub) throw new Error(`no endpoint socket under ${dir}`);
  return join(dir, sub, "listen.on");
}

function rolePids(rt: TestRuntime, state: any): Record<string, number> {
  const node = state.nodes[0];
  const nse = state.pods.find((p: any) => p.name.startsWith("nse-kernel-"));
  void rt;
  return {
    registry: state.registry.pid,
    nsmgr: node.nsmgr.pid,
    forwarder: node.forwarder.pid,
    endpoint: nse.containers[0].proc.pid,
  };
}

describe("fuzz: every gRPC method of registry, nsmgr, forwarder and endpoint (nsm up --insecure)", {
  skip,
  timeout: 240_000,
}, () => {
  let rt: TestRuntime;
  let holder: Holder;
  let example: { mesh: string; client: string };
  const clients: { close(): void }[] = [];

  before(async () => {
    rt = testRuntime("fuzz-grpc");
    example = splitExample();
    await rt.ok("up", "--insecure");
    await rt.ok("apply", "-f", example.mesh);
    holder = await startHolder(`${rt.prefix}-fuzzholder`);
  });
  after(async () => {
    for (const c of clients) c.close();
    holder?.close();
    await rt?.cleanup();
    if (example) rmSync(dirname(example.mesh), { recursive: true, force: true });
  });

  it("answers every mutated or random message clearly, keeps its processes and holds nothing more", async () => {
    const { readFileSync } = await import("node:fs");
    const state = JSON.parse(readFileSync(join(rt.dir, "state.json"), "utf8"));
    const pids = rolePids(rt, state);
    const before = holdings(pids, rt.prefix);
    const dial = (sock: string) => {
      const c = rawClient(`unix://${sock}`);
      clients.push(c);
      return c;
    };
    const targets: Target[] = [
      { role: "registry", client: dial(join(rt.dir, "registry.sock")), services: REGISTRY_SERVICES },
      {
        role: "nsmgr",
        client: dial(join(rt.dir, "nodes", "node-1", "nsm.io.sock")),
        services: [...NETWORK_SERVICES, ...REGISTRY_SERVICES],
      },
      {
        role: "forwarder",
        client: dial(join(rt.dir, "nodes", "node-1", "forwarder.sock")),
        services: NETWORK_SERVICES,
      },
      { role: "endpoint", client: dial(endpointSocket(rt)), services: NETWORK_SERVICES },
    ];
    const seed = fuzzSeed("grpc");
    const rng = new Rng(seed);
    const reports: Record<string, FuzzReport> = {};
    for (const t of targets) {
      reports[t.role] = await fuzzTarget(t, {
        rng,
        seconds: fuzzSeconds(6),
        seeds: seeds(holder.url),
        holderUrl: holder.url,
        deadlineMs: 3000,
        parallel: 4,
      });
    }
    for (const [role, r] of Object.entries(reports)) {
      console.log(`# ${role}: ${r.calls} calls, ${r.skipped} not sent, statuses ${JSON.stringify(r.byCode)}`);
      if (process.env.NSM_FUZZ_VERBOSE) for (const d of r.details) console.log(`#   ${role} ${d}`);
    }
    const problems = Object.values(reports).flatMap((r) => r.problems);
    assert.deepEqual(problems, [], `seed ${seed}`);
    for (const r of Object.values(reports)) assert.ok(r.calls > 10, "each target got calls");
    const leak = await settle(() => leaks(before, holdings(pids, rt.prefix)), 15_000);
    assert.equal(leak, undefined, `seed ${seed}`);
  });

  it("a huge input quoted in an error comes back cut to a bounded message", async () => {
    const c = rawClient(`unix://${join(rt.dir, "registry.sock")}`);
    clients.push(c);
    const body = toBinary(
      registry.NetworkServiceEndpointSchema,
      create(registry.NetworkServiceEndpointSchema, { name: "fuzz-huge", url: "x".repeat(200_000) }),
    );
    const r = await rawUnary(c, "/registry.NetworkServiceEndpointRegistry/Register", body, 5000);
    assert.equal(r.code, 3, r.details.slice(0, 200));
    assert.equal(unclear(r, 5000), undefined);
    assert.match(r.details, /more characters\)$/);
  });

  it("a good Request still succeeds afterwards: the client pod connects and pings the endpoint", async () => {
    const out = await rt.ok("apply", "-f", example.client);
    assert.match(out, /connected kernel:\/\/kernel2kernel\/nsm-1/);
    assert.deepEqual(
      linksOf(podNetns(rt, NS, "alpine")).map((l) => l.ifname),
      ["nsm-1"],
    );
    const r = await rt.nsm("exec", "alpine", "-n", NS, "--", "ping", "-c", "2", "-i", "0.2", "-W", "2", "172.16.1.100");
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /2 packets transmitted, 2 received/);
  });
});
