// SPDX-License-Identifier: Apache-2.0
/**
 * examples/dns end to end on the local runtime: the endpoint sends its DNS config
 * (NSM_DNS_CONFIGS) in the DNSContext, the client's sidecar runs a DNS proxy on 127.0.0.1:53 in
 * the pod's network namespace and points the pod's resolv.conf at it. A name of the endpoint's
 * domain is answered by the endpoint's DNS server (across the NSM interface); any other name by
 * the pod's original resolver (here a stand-in "cluster DNS" on 127.0.0.2 in the pod's netns,
 * named by the resolv.conf the pod started with); deleting the pod restores its resolv.conf.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { podResolvConf } from "../../src/local/pod-files.js";
import { runtimePaths } from "../../src/local/state.js";
import { podNetns, REPO, skipReason, type TestRuntime, testRuntime } from "../local/helpers.js";

const NS = "ns-dns";
const EXAMPLE = join(REPO, "examples", "dns");
const ORIGINAL = "search cluster.local\nnameserver 127.0.0.2\noptions ndots:5\n";

/** A node script that resolves argv[1] (A) through 127.0.0.1:53 and prints the addresses or the error code. */
const RESOLVE = [
  "const { Resolver } = require('node:dns').promises;",
  "const r = new Resolver({ timeout: 3000, tries: 1 });",
  "r.setServers(['127.0.0.1']);",
  "r.resolve4(process.argv[1]).then((a) => console.log(a.join(',')), (e) => { console.log(e.code); process.exit(2); });",
].join(" ");

describe("features: examples/dns", { skip: skipReason() }, () => {
  let rt: TestRuntime;
  let resolvConf: string;
  let clusterDns: ChildProcess | undefined;

  const resolve = (name: string) => rt.nsm("exec", "dnsutils", "-n", NS, "--", process.execPath, "-e", RESOLVE, name);

  before(async () => {
    rt = testRuntime("dns");
    await rt.ok("up");
    // The resolv.conf the pod starts with (a kubelet would write it): its resolver is 127.0.0.2.
    resolvConf = podResolvConf(runtimePaths(rt.dir), NS, "dnsutils");
    mkdirSync(dirname(resolvConf), { recursive: true });
    writeFileSync(resolvConf, ORIGINAL);
    await rt.ok("apply", "-k", EXAMPLE);
    // The README's waits, as written.
    const ready = await rt.ok("wait", "--for=condition=ready", "--timeout=5m", "pod", "dnsutils", "-n", NS);
    assert.match(ready, /pod\/dnsutils condition met/);
    await rt.ok("wait", "--for=condition=ready", "--timeout=5m", "pod", "-l", "app=nse-kernel", "-n", NS);
    // The "cluster DNS" of the pod: answers kubernetes.default, knows nothing of the endpoint's names.
    clusterDns = spawn(
      "ip",
      ["netns", "exec", podNetns(rt, NS, "dnsutils"), process.execPath, join(REPO, "bin", "nsm.js"), "dns-server"],
      {
        env: { ...process.env, NSM_DNS_RECORDS: "kubernetes.default=10.96.0.1", NSM_LISTEN_ON: "127.0.0.2:53" },
        stdio: "ignore",
      },
    );
  });
  after(async () => {
    clusterDns?.kill("SIGTERM");
    await rt?.cleanup();
  });

  it("the pod's resolv.conf points at the proxy, with the endpoint's search domain first", () => {
    const text = readFileSync(resolvConf, "utf8");
    const active = text.split("\n").filter((l) => l && !l.startsWith("#"));
    assert.deepEqual(active, ["nameserver 127.0.0.1", "search my.dns.service cluster.local", "options ndots:5"]);
  });

  it("a name of the endpoint's domain is answered by the endpoint's DNS server", async () => {
    const r = await resolve("nse.my.dns.service");
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stdout.trim(), "172.16.1.100");
  });

  it("other names fall back to the pod's original resolver; unknown names are NXDOMAIN", async () => {
    let r = await resolve("kubernetes.default");
    for (let i = 0; i < 20 && r.stdout.trim() !== "10.96.0.1"; i++) {
      await new Promise((res) => setTimeout(res, 250)); // the stand-in may still be starting
      r = await resolve("kubernetes.default");
    }
    assert.equal(r.stdout.trim(), "10.96.0.1", r.stdout + r.stderr);
    const unknown = await resolve("nowhere.example");
    assert.equal(unknown.stdout.trim(), "ENOTFOUND");
  });

  it("the connection carries the DNS config: nsm describe shows it", async () => {
    const out = await rt.ok("describe", "connection", "dnsutils-0");
    assert.match(out, /172\.16\.1\.100/);
    assert.match(out, /my\.dns\.service/);
  });

  it("deleting the pod restores its resolv.conf", async () => {
    await rt.ok("delete", "pod", "dnsutils", "-n", NS);
    assert.equal(readFileSync(resolvConf, "utf8"), ORIGINAL);
  });
});
