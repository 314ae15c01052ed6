// SPDX-License-Identifier: Apache-2.0
/**
 * examples/vl3-lb on the local runtime: a vL3 load balancer (`nsm vl3-lb`, upstream
 * cmd-lb-vl3-vpp) named finance.vl3-lb. spreads HTTP on its port 8080 over the two vL3 clients
 * labelled app=finance (port 8081); a client finds it by the vL3 DNS name and reaches both
 * servers; a malformed setting stops the balancer at start with one line; delete and down leave
 * nothing (no netns, processes or nftables table outside the pods).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { REPO, rows, skipReason, type TestRuntime, testRuntime } from "../local/helpers.js";

const NS = "ns-vl3-lb";
const EXAMPLE = join(REPO, "examples", "vl3-lb");
const skip = skipReason();

/** Resolves finance.vl3-lb. at the endpoint (172.16.0.0), then GETs port 8080 of the answer. */
const FETCH =
  'const r=new (require("dns").promises.Resolver)({timeout:2000,tries:1});r.setServers(["172.16.0.0"]);' +
  'r.resolve4("finance.vl3-lb.").then(a=>fetch("http://"+a[0]+":8080/",{signal:AbortSignal.timeout(3000)}))' +
  ".then(res=>res.text()).then(t=>process.stdout.write(t),e=>{console.error(String(e));process.exit(1)})";

describe("endpoints: examples/vl3-lb (load balancer inside a vL3 network)", { skip }, () => {
  let rt: TestRuntime;
  let client = "";
  let servers: string[] = [];

  before(async () => {
    rt = testRuntime("vl3-lb");
    await rt.ok("up");
    const out = await rt.ok("apply", "-f", EXAMPLE);
    assert.match(out, /pod ns-vl3-lb\/finance-client-\S+ running on node-1, connected kernel:\/\/vl3-lb\/nsm-1/);
    const pods = rows(await rt.ok("get", "pods", "-n", NS, "-o", "wide")).map((r) => r[0]!);
    client = pods.find((p) => p.startsWith("finance-client-"))!;
    servers = pods.filter((p) => p.startsWith("finance-server-")).sort();
  });
  after(() => rt?.cleanup());

  it("a client reaches finance.vl3-lb:8080 by name, and the requests are spread over both servers", async () => {
    assert.equal(servers.length, 2);
    const seen = new Set<string>();
    const started = Date.now();
    // The balancer installs its rules once the servers' connections show up at nsmgr.
    while (seen.size < 2 && Date.now() - started < 30_000) {
      const r = await rt.nsm("exec", client, "-n", NS, "--", process.execPath, "-e", FETCH);
      const m = /^Hello! I am (\S+)$/.exec(r.stdout.trim());
      if (r.code === 0 && m) seen.add(m[1]!);
      else await new Promise((res) => setTimeout(res, 500));
    }
    assert.deepEqual([...seen].sort(), servers);
  });

  it("a malformed setting stops the balancer at start with one line naming the variable", async () => {
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [join(REPO, "bin", "nsm.js"), "vl3-lb"], {
        env: { PATH: process.env.PATH, NSM_NETWORK_SERVICES: "kernel://vl3-lb/nsm-1", NSM_PORT: "80800" },
        stdio: ["ignore", "ignore", "pipe"],
      });
      let stderr = "";
      child.stderr!.on("data", (d) => {
        stderr += d;
      });
      child.on("close", (code) => resolve({ code, stderr }));
    });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, 'nsm: NSM_PORT="80800": expected an integer from 1 to 65535\n');
  });

  it("delete removes the pods and their namespaces; down leaves no netns or processes", async () => {
    await rt.ok("delete", "-f", EXAMPLE);
    assert.deepEqual(rows(await rt.ok("get", "pods", "-n", NS)), []);
    await rt.ok("down");
    assert.deepEqual(rt.netns(), []);
    assert.deepEqual(rt.processes(), []);
  });
});
