// SPDX-License-Identifier: Apache-2.0
/**
 * Our components with X.509-SVIDs from a real SPIRE (spire-server + spire-agent, join-token node
 * attestation, unix workload attestation) instead of our identity provider: registry, nsmgr,
 * forwarder, icmp-responder and NSC each run as root with their own group, SPIRE issues each its
 * own SPIFFE ID by `unix:uid:0` + `unix:gid:<gid>`, and a kernel2kernel connection pings both ways.
 * The forwarder's netns-ownership check resolves the NSC's and NSE's pids through the process
 * identity file this test writes, so their SPIRE identities must match what the check expects.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { registry } from "../../src/api/index.js";
import { socketAccepts } from "../../src/local/cluster.js";
import { CallContext } from "../../src/sdk/core/context.js";
import { closeChannel, dialChannel } from "../../src/sdk/grpc/dial.js";
import { registryClients } from "../../src/sdk/grpc/registry.js";
import {
  createTokenGenerator,
  createX509Source,
  type ProcessIdentity,
  processIdentity,
  secureDialOptions,
  writeProcessIdentities,
  type X509Source,
} from "../../src/security/index.js";
import { kernelSkipReason, NetnsSet } from "../helpers/netns.js";
import { missingPeers } from "../helpers/peers.js";
import { stopChild } from "../helpers/process.js";
import { ipv4Of, ping } from "./mixed.js";
import { Spire } from "./spire.js";

const REPO = join(import.meta.dirname, "..", "..");
const BIN = join(REPO, "bin", "nsm.js");
const skip = kernelSkipReason() ?? missingPeers("spire-server", "spire-agent");

/** Our processes: name → group (their SPIRE selector) and SPIFFE ID path. */
const ROLES = {
  registry: { gid: 30001, path: "ns/nsm-system/component/registry" },
  nsmgr: { gid: 30002, path: "ns/nsm-system/component/nsmgr-node-1" },
  forwarder: { gid: 30003, path: "ns/nsm-system/component/forwarder-node-1" },
  nse: { gid: 30004, path: "ns/default/pod/icmp-responder" },
  nsc: { gid: 30005, path: "ns/default/pod/nsc" },
} as const;
type Role = keyof typeof ROLES;
/** The test process itself (group 0) reads the registry as this pod. */
const ADMIN_PATH = "ns/default/pod/admin";

describe("interop: our components with SVIDs from a real SPIRE", { skip }, () => {
  const tag = Math.random().toString(16).slice(2, 8);
  const trustDomain = `spire-${tag}.test`;
  const id = (path: string) => `spiffe://${trustDomain}/${path}`;
  const dir = skip ? "" : mkdtempSync(join(tmpdir(), "nsm-spire-"));
  const spire = new Spire(dir, trustDomain);
  const netns = new NetnsSet(`nsmsp-${tag}`);
  const children: ChildProcess[] = [];
  const listed: ProcessIdentity[] = [];
  const identities = join(dir, "identities.json");
  const logs = new Map<string, string>();
  const pids = new Map<Role, number>();
  let admin: X509Source | undefined;
  let nodeNs = "";
  let nseNs = "";
  let nscNs = "";

  const tails = () => [...logs.entries()].map(([n, f]) => `--- ${n} ---\n${tail(f)}`).join("\n") + `\n${spire.tails()}`;

  const writeIdentities = () => writeProcessIdentities(identities, { version: 1, trustDomain, processes: listed });

  /** `nsm ARGS` as `role` (its group), in `ns` if given; NSE and NSC are listed for the forwarder. */
  const start = (role: Role, ns: string | undefined, args: string[], env: Record<string, string>) => {
    const log = join(dir, `${role}.log`);
    logs.set(role, log);
    const fd = openSync(log, "a");
    const cmd = [process.execPath, BIN, ...args];
    const argv = ns ? ["ip", "netns", "exec", ns, ...cmd] : cmd;
    const child = spawn(argv[0]!, argv.slice(1), {
      gid: ROLES[role].gid,
      stdio: ["ignore", fd, fd],
      env: {
        PATH: process.env.PATH,
        HOME: "/root",
        TMPDIR: dir,
        NSM_LOG_LEVEL: "debug",
        SPIFFE_ENDPOINT_SOCKET: spire.socket,
        ...env,
      },
    });
    closeSync(fd);
    children.push(child);
    pids.set(role, child.pid!);
    if (role === "nse" || role === "nsc") {
      const entry = processIdentity(child.pid!, id(ROLES[role].path));
      if (!entry) throw new Error(`${role} exited at once\n${tails()}`);
      listed.push(entry);
      writeIdentities();
    }
    return child;
  };

  const dialAdmin = () => secureDialOptions(admin!, { tokenGenerator: createTokenGenerator(admin!) });

  const findNse = async (name: string): Promise<registry.NetworkServiceEndpoint[]> => {
    const channel = dialChannel(`unix://${dir}/registry.sock`, dialAdmin());
    try {
      const q = create(registry.NetworkServiceEndpointQuerySchema, {
        networkServiceEndpoint: create(registry.NetworkServiceEndpointSchema, { name }),
      });
      const out: registry.NetworkServiceEndpoint[] = [];
      for await (const r of registryClients(channel).nse.find(q, CallContext.create({ deadline: Date.now() + 3000 })))
        if (r.networkServiceEndpoint?.name === name && !r.deleted) out.push(r.networkServiceEndpoint);
      return out;
    } finally {
      closeChannel(channel);
    }
  };

  const until = async (what: string, check: () => Promise<boolean> | boolean, timeoutMs = 45_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        if (await check()) return;
      } catch {
        // not yet
      }
      if (Date.now() > deadline) throw new Error(`${what}: not after ${timeoutMs} ms\n${tails()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  before(async () => {
    await spire.startServer();
    await spire.entry(id(ADMIN_PATH), 0);
    for (const r of Object.values(ROLES)) await spire.entry(id(r.path), r.gid);
    await spire.startAgent();
    admin = await createX509Source({ socket: spire.socket, timeoutMs: 30_000 });
    writeIdentities();
    nodeNs = netns.add("node");
    nseNs = netns.add("nse");
    nscNs = netns.add("nsc");
    start("registry", undefined, ["registry"], { NSM_LISTEN_ON: `unix://${dir}/registry.sock` });
    await until("registry socket", () => socketAccepts(`${dir}/registry.sock`));
    start("nsmgr", nodeNs, ["nsmgr"], {
      NSM_NAME: "nsmgr-node-1",
      NSM_LISTEN_ON: `unix://${dir}/nsm.io.sock`,
      NSM_REGISTRY_URL: `unix://${dir}/registry.sock`,
    });
    await until("nsmgr socket", () => socketAccepts(`${dir}/nsm.io.sock`));
    start("forwarder", nodeNs, ["forwarder"], {
      NSM_NAME: "forwarder-1",
      NSM_LISTEN_ON: `unix://${dir}/forwarder.sock`,
      NSM_CONNECT_TO: `unix://${dir}/nsm.io.sock`,
      NSM_PROCESS_IDENTITIES: identities,
    });
    await until("forwarder registered", async () => (await findNse("forwarder-1")).length > 0);
    start("nse", nseNs, ["nse", "icmp-responder"], {
      NSM_NAME: "icmp-responder",
      NSM_CONNECT_TO: `unix://${dir}/nsm.io.sock`,
      NSM_SERVICE_NAMES: "icmp-spire",
      NSM_CIDR_PREFIX: "172.16.77.0/29",
    });
    await until("icmp-responder registered", async () => (await findNse("icmp-responder")).length > 0);
    start("nsc", nscNs, ["nsc"], {
      NSM_NAME: "nsc",
      NSM_CONNECT_TO: `unix://${dir}/nsm.io.sock`,
      NSM_NETWORK_SERVICES: "kernel://icmp-spire/nsm-1",
    });
    await until("nsm-1 in the NSC's netns with an address", () => ipv4Of(nscNs, "nsm-1").length > 0, 60_000);
  });

  after(async () => {
    admin?.close();
    for (const c of children.splice(0).reverse()) await stopChild(c);
    netns.deleteAll();
    await spire.close();
    if (dir && !process.env.NSM_TEST_KEEP_LOGS) rmSync(dir, { recursive: true, force: true });
  });

  it("the test process holds the SVID SPIRE registered for its group, not one of ours", () => {
    const snap = admin!.current();
    assert.equal(snap.svid.spiffeId, id(ADMIN_PATH));
    assert.equal(snap.bundle.trustDomain, trustDomain);
  });

  it("spire-agent attested each component by its pid and group, and each holds that SPIFFE ID", () => {
    const agentLog = readFileSync(spire.logs.get("spire-agent")!, "utf8");
    for (const [role, r] of Object.entries(ROLES)) {
      const pid = pids.get(role as Role);
      const attested = agentLog
        .split("\n")
        .some((l) => l.includes("PID attested") && l.includes(`pid=${pid} `) && l.includes(`gid:${r.gid}`));
      assert.ok(attested, `spire-agent attested ${role} (pid ${pid}) with gid:${r.gid}`);
      const obtained = readFileSync(logs.get(role)!, "utf8")
        .split("\n")
        .some((l) => l.includes('"X.509-SVID obtained"') && l.includes(`"spiffeId":"${id(r.path)}"`));
      assert.ok(obtained, `${role} logged its X.509-SVID ${id(r.path)}`);
    }
  });

  it("the registry (mTLS with its SPIRE SVID) lists the forwarder and the NSE", async () => {
    const [fwd] = await findNse("forwarder-1");
    assert.equal(fwd?.name, "forwarder-1");
    const [nse] = await findNse("icmp-responder");
    assert.deepEqual(nse?.networkServiceNames, ["icmp-spire"]);
  });

  it("kernel2kernel: nsm-1 in the NSC, the endpoint's interface in the same /29, pings both ways", () => {
    const [clientAddr] = ipv4Of(nscNs, "nsm-1");
    const endpointAddrs = ipv4Of(nseNs);
    assert.match(clientAddr ?? "", /^172\.16\.77\.[0-7]$/, tails());
    assert.equal(endpointAddrs.length, 1, `endpoint addresses: ${endpointAddrs}`);
    assert.match(endpointAddrs[0]!, /^172\.16\.77\.[0-7]$/);
    assert.ok(existsSync(`/proc/${children.at(-1)!.pid}`), "the NSC is still running");
    const there = ping(nscNs, endpointAddrs[0]!);
    assert.ok(there.ok, `${there.output}\n${tails()}`);
    const back = ping(nseNs, clientAddr!);
    assert.ok(back.ok, `${back.output}\n${tails()}`);
  });
});

function tail(file: string, lines = 12): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}
