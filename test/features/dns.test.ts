// SPDX-License-Identifier: Apache-2.0
/**
 * examples/dns end to end on the local runtime: the endpoint sends its DNS config
 * (NSM_DNS_CONFIGS) in the DNSContext, the client's sidecar runs a DNS proxy on 127.0.0.1:53 in
 * the pod's network namespace and points the pod's resolv.conf at it; the runtime bind-mounts
 * that file at the container's /etc/resolv.conf. The container resolves names with its own
 * resolver (`getent hosts`, glibc's stub resolver reading /etc/resolv.conf): a name of the
 * endpoint's domain is answered by the endpoint's DNS server (across the NSM interface); any
 * other name by the pod's original resolver (here a stand-in "cluster DNS" on 127.0.0.2 in the
 * pod's netns, named by the resolv.conf the pod started with); deleting the pod restores its
 * resolv.conf. The host's /etc/resolv.conf is never touched.
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

describe("features: examples/dns", { skip: skipReason() }, () => {
  let rt: TestRuntime;
  let resolvConf: string;
  let clusterDns: ChildProcess | undefined;

  /** `getent hosts NAME` in the pod's container: its IPv4 addresses, or "" (not found). */
  const resolve = async (name: string) => {
    const r = await rt.nsm("exec", "pods/dnsutils", "-n", NS, "--", "getent", "ahostsv4", name);
    const addrs = new Set(r.stdout.split("\n").flatMap((l) => (l.trim() ? [l.split(/\s+/)[0]!] : [])));
    return { code: r.code, addresses: [...addrs].join(","), text: r.stdout + r.stderr };
  };
  let hostResolvConf: string;

  before(async () => {
    hostResolvConf = readFileSync("/etc/resolv.conf", "utf8");
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

  it("the container's /etc/resolv.conf is that file; the host's is unchanged", async () => {
    const r = await rt.nsm("exec", "pods/dnsutils", "-n", NS, "--", "cat", "/etc/resolv.conf");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, readFileSync(resolvConf, "utf8"));
    assert.equal(readFileSync("/etc/resolv.conf", "utf8"), hostResolvConf);
  });

  it("a name of the endpoint's domain resolves in the pod to the endpoint's DNS answer", async () => {
    const r = await resolve("nse.my.dns.service");
    assert.equal(r.code, 0, r.text);
    assert.equal(r.addresses, "172.16.1.100");
    // The search domain the endpoint sent: the short name resolves too.
    const short = await resolve("nse");
    assert.equal(short.addresses, "172.16.1.100", short.text);
  });

  it("other names fall back to the pod's original resolver; unknown names are not found", async () => {
    let r = await resolve("kubernetes.default");
    for (let i = 0; i < 20 && r.addresses !== "10.96.0.1"; i++) {
      await new Promise((res) => setTimeout(res, 250)); // the stand-in may still be starting
      r = await resolve("kubernetes.default");
    }
    assert.equal(r.addresses, "10.96.0.1", r.text);
    const unknown = await resolve("nowhere.example");
    assert.equal(unknown.addresses, "");
    assert.equal(unknown.code, 2, unknown.text); // getent: key not found
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
