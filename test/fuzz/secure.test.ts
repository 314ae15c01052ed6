// SPDX-License-Identifier: Apache-2.0
/**
 * Hostile input against a secure local runtime (`nsm up`, mTLS and tokens on every hop):
 * - mutated and random messages to every method of the identity provider's SPIFFE Workload API
 *   (with and without the `workload.spiffe.io` header) and to nsmgr over mTLS with an SVID of the
 *   runtime's CA: clear statuses only, every process alive, no fd, netns or link left behind;
 * - a client holding a valid pod identity (the example's `alpine`) naming another pod's netns,
 *   the root netns or /proc/1/ns/net in its Request: PermissionDenied or InvalidArgument, and
 *   nothing is created anywhere.
 *
 * Bounded: NSM_FUZZ_SECONDS per target (default 5); NSM_FUZZ_SEED reproduces a run.
 */
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { ConnectionSchema, NetworkServiceRequestSchema } from "../../src/api/index.js";
import { CallContext } from "../../src/sdk/core/context.js";
import { Code, NsmError } from "../../src/sdk/core/errors.js";
import { CHANNEL_LINGER_MS } from "../../src/sdk/grpc/dial.js";
import { createClient } from "../../src/sdk/networkservice/chains/client/index.js";
import { kernelMechanismClient } from "../../src/sdk/networkservice/common/kernelmechanism/index.js";
import { mechanismsClient } from "../../src/sdk/networkservice/common/mechanisms/index.js";
import { type CertificateAuthority, loadCa } from "../../src/security/ca.js";
import { authorizeClient } from "../../src/security/index.js";
import { staticX509Source, type X509Source } from "../../src/security/source.js";
import { workloadSpiffeId } from "../../src/security/spiffeid.js";
import { channelCredentials, secureDialOptions } from "../../src/security/tls.js";
import { createTokenGenerator } from "../../src/security/token.js";
import { linksOf, podNetns, skipReason, type TestRuntime, testRuntime } from "../local/helpers.js";
import { fuzzSeconds, fuzzSeed, holdings, leaks, Rng, randomInit, rawClient, settle } from "./harness.js";
import {
  type FuzzReport,
  fuzzTarget,
  NETWORK_SERVICES,
  REGISTRY_SERVICES,
  seeds,
  splitExample,
  type Target,
  WORKLOAD_SERVICES,
} from "./targets.js";

const skip = skipReason();
const codeName = (c: Code) => Object.entries(Code).find(([, v]) => v === c)?.[0] ?? String(c);
const NS = "ns-kernel2kernel";

async function podSource(ca: CertificateAuthority, pod: string): Promise<X509Source> {
  const svid = await ca.issue(workloadSpiffeId(ca.trustDomain, NS, pod));
  return staticX509Source(svid, ca.bundle);
}

describe("fuzz: a secure runtime (nsm up): Workload API, nsmgr over mTLS, hostile netns", {
  skip,
  timeout: 240_000,
}, () => {
  let rt: TestRuntime;
  let state: any;
  let ca: CertificateAuthority;
  let alpine: X509Source;
  let example: { mesh: string; client: string };
  const clients: grpc.Client[] = [];

  before(async () => {
    rt = testRuntime("fuzz-secure");
    await rt.ok("up");
    example = splitExample();
    await rt.ok("apply", "-f", example.mesh);
    state = JSON.parse(readFileSync(join(rt.dir, "state.json"), "utf8"));
    ca = await loadCa(JSON.parse(readFileSync(join(rt.dir, "ca.json"), "utf8")));
    alpine = await podSource(ca, "alpine");
  });
  after(async () => {
    for (const c of clients) c.close();
    alpine?.close();
    await rt?.cleanup();
    if (example) rmSync(dirname(example.mesh), { recursive: true, force: true });
  });

  const pod = (name: string) => state.pods.find((p: any) => p.name.startsWith(name));
  const pids = () => ({
    registry: state.registry.pid,
    identityProvider: state.identityProvider.pid,
    nsmgr: state.nodes[0].nsmgr.pid,
    forwarder: state.nodes[0].forwarder.pid,
    endpoint: pod("nse-kernel-").containers[0].proc.pid,
  });

  it("Workload API and nsmgr (mTLS) answer mutated and random messages clearly and hold nothing more", async () => {
    const before = holdings(pids(), rt.prefix);
    const seed = fuzzSeed("secure");
    const rng = new Rng(seed);
    const agent = rawClient(`unix://${join(rt.dir, "agent.sock")}`);
    const creds = channelCredentials(alpine, { tokenGenerator: createTokenGenerator(alpine) });
    const nsmgr = rawClient(`unix://${join(rt.dir, "nodes", "node-1", "nsm.io.sock")}`, creds);
    clients.push(agent, nsmgr);
    const header = () => {
      const md = new grpc.Metadata();
      if (rng.chance(0.8)) md.set("workload.spiffe.io", rng.chance(0.9) ? "true" : "false");
      return md;
    };
    const targets: Target[] = [
      { role: "identity provider", client: agent, services: WORKLOAD_SERVICES, metadata: header },
      { role: "nsmgr (mTLS)", client: nsmgr, services: [...NETWORK_SERVICES, ...REGISTRY_SERVICES] },
    ];
    const holderUrl = "file:///nonexistent";
    const reports: Record<string, FuzzReport> = {};
    for (const t of targets) {
      reports[t.role] = await fuzzTarget(t, {
        rng,
        seconds: fuzzSeconds(5),
        seeds: seeds(holderUrl),
        holderUrl,
        deadlineMs: 3000,
        // the identity provider waits up to 3 s for a caller's identity to appear before it
        // answers PermissionDenied: streams get longer than that
        streamDeadlineMs: 4500,
        parallel: 8,
      });
    }
    assert.ok((reports["identity provider"]!.byCode["FetchX509SVID:7"] ?? 0) > 0, "a stranger is PermissionDenied");
    for (const [role, r] of Object.entries(reports)) {
      console.log(`# ${role}: ${r.calls} calls, ${r.skipped} not sent, statuses ${JSON.stringify(r.byCode)}`);
      if (process.env.NSM_FUZZ_VERBOSE) for (const d of r.details) console.log(`#   ${role} ${d}`);
    }
    assert.deepEqual(
      Object.values(reports).flatMap((r) => r.problems),
      [],
      `seed ${seed}`,
    );
    for (const r of Object.values(reports)) assert.ok(r.calls > 10, "each target got calls");
    assert.equal(await settle(() => leaks(before, holdings(pids(), rt.prefix)), 15_000), undefined, `seed ${seed}`);
  });

  it("a client with a valid pod identity naming another pod's netns, the root netns or /proc/1 gets nothing", async () => {
    const before = holdings(pids(), rt.prefix);
    const nsePid = pod("nse-kernel-").containers[0].proc.pid;
    const attacks: [string, string][] = [
      ["another pod's netns", `file:///proc/${nsePid}/ns/net`],
      ["the root netns (the test process)", `file:///proc/${process.pid}/ns/net`],
      ["pid 1", "file:///proc/1/ns/net"],
      ["the root netns by name", "file:///proc/self/ns/net"],
      ["a bind-mounted netns path", `file:///var/run/netns/${state.nodes[0].netns}`],
    ];
    for (const [what, url] of attacks) {
      const client = createClient({
        name: "alpine",
        connectTo: `unix://${join(rt.dir, "nodes", "node-1", "nsm.io.sock")}`,
        ...secureDialOptions(alpine, { tokenGenerator: createTokenGenerator(alpine) }),
        authorize: authorizeClient(),
        additional: [mechanismsClient({ KERNEL: kernelMechanismClient({ inodeUrl: url, interfaceName: "nsm-9" }) })],
      });
      const request = create(NetworkServiceRequestSchema, {
        connection: create(ConnectionSchema, { id: `attack-${what.length}`, networkService: "kernel2kernel" }),
      });
      const ctx = CallContext.create({ deadline: Date.now() + 15_000 });
      const err = await client.request(request, ctx).then(
        (conn) => new Error(`connected ${conn.id}`),
        (e: unknown) => e,
      );
      const code = err instanceof NsmError ? err.code : undefined;
      assert.ok(code === Code.PermissionDenied || code === Code.InvalidArgument, `${what}: ${String(err)} (${code})`);
      // nsmgr's channels (forwarder, registry) stay pooled for CHANNEL_LINGER_MS after a call:
      // their fds are allowed here and must be gone at the end; links and netns never.
      assert.equal(leaks(before, holdings(pids(), rt.prefix), 16), undefined, `${what}: something was created`);
    }
    const settled = await settle(() => leaks(before, holdings(pids(), rt.prefix), 2), CHANNEL_LINGER_MS + 5000);
    assert.equal(settled, undefined, "after the attacks: something is still held");
  });

  it("authorized Requests with random field values get clear errors, release what they took and create nothing", async () => {
    const before = holdings(pids(), rt.prefix);
    const seed = fuzzSeed("secure-requests");
    const rng = new Rng(seed);
    const nsePid = pod("nse-kernel-").containers[0].proc.pid;
    const urls = [`file:///proc/${nsePid}/ns/net`, `file:///proc/${process.pid}/ns/net`, "file:///proc/1/ns/net"];
    const client = (url: string) =>
      createClient({
        name: "alpine",
        connectTo: `unix://${join(rt.dir, "nodes", "node-1", "nsm.io.sock")}`,
        ...secureDialOptions(alpine, { tokenGenerator: createTokenGenerator(alpine) }),
        authorize: authorizeClient(),
        additional: [mechanismsClient({ KERNEL: kernelMechanismClient({ inodeUrl: url, interfaceName: "nsm-9" }) })],
      });
    const clients = urls.map(client);
    const problems: string[] = [];
    const codes: Record<string, number> = {};
    const until = Date.now() + fuzzSeconds(5) * 1000;
    for (let i = 0; Date.now() < until; i++) {
      const req = create(NetworkServiceRequestSchema, randomInit(NetworkServiceRequestSchema, rng) as never);
      req.connection ??= create(ConnectionSchema);
      if (rng.chance(0.7)) req.connection.networkService = "kernel2kernel";
      if (rng.chance(0.7)) req.connection.path = undefined;
      if (rng.chance(0.5)) req.connection.id = `random-${i}`;
      const c = rng.pick(clients);
      const outcome = await c.request(req, CallContext.create({ deadline: Date.now() + 10_000 })).then(
        async (conn) => {
          await c.close(conn, CallContext.create({ deadline: Date.now() + 10_000 })).catch(() => {});
          return "OK";
        },
        (e: unknown) => e,
      );
      const code = outcome === "OK" ? "OK" : outcome instanceof NsmError ? codeName(outcome.code) : String(outcome);
      codes[code] = (codes[code] ?? 0) + 1;
      if (outcome === "OK") problems.push(`request ${i} connected with a netns it does not own`);
      else if (!(outcome instanceof NsmError) || outcome.code === Code.Unknown || /\n\s+at /.test(outcome.message))
        problems.push(`request ${i}: ${String(outcome)}`);
    }
    console.log(`# authorized random Requests: ${JSON.stringify(codes)}`);
    assert.deepEqual(problems, [], `seed ${seed}`);
    assert.equal(await settle(() => leaks(before, holdings(pids(), rt.prefix)), 15_000), undefined, `seed ${seed}`);
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
