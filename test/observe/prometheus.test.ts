// SPDX-License-Identifier: Apache-2.0
/**
 * Metrics of a running local runtime: `NSM_PROMETHEUS=true nsm up`, examples/kernel2kernel, a
 * known ping through nsm-1. Every role serves its series (nsmgr and forwarder on the node's
 * underlay address, the pods on :9090 in their own netns); the forwarder's interface counters are
 * at least the traffic sent; a real Prometheus in the node netns scrapes nsmgr and forwarder and
 * its HTTP API returns the same series. Everything stays inside the runtime's namespaces.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { missingPeers, peerPath } from "../helpers/peers.js";
import { EXAMPLE, podNetns, rows, skipReason, type TestRuntime, testRuntime } from "../local/helpers.js";

const NS = "ns-kernel2kernel";
const PINGS = 20;
const PAYLOAD = 200;
/** An ICMP echo of PAYLOAD bytes on the veth: Ethernet 14 + IPv4 20 + ICMP 8 + payload. */
const FRAME = 14 + 20 + 8 + PAYLOAD;
const skip = skipReason();

/** GET `url` from inside `netns` (node's fetch in the namespace). */
function fetchIn(netns: string, url: string): string {
  const code = `fetch(${JSON.stringify(url)}).then(async r => { process.stdout.write(await r.text()); process.exit(r.ok ? 0 : 1); }, e => { console.error(String(e)); process.exit(1); })`;
  return execFileSync("ip", ["netns", "exec", netns, process.execPath, "-e", code], {
    encoding: "utf8",
    timeout: 20_000,
  });
}

/** The value of series `name` whose labels include `labels`. */
function value(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    const m = /^([a-z_]+)\{(.*)\} (\S+)$/.exec(line);
    if (m?.[1] === name && Object.entries(labels).every(([k, v]) => m[2]!.includes(`${k}="${v}"`))) return Number(m[3]);
  }
  return undefined;
}

function nodeNetns(rt: TestRuntime): { netns: string; address: string } {
  const state = JSON.parse(readFileSync(join(rt.dir, "state.json"), "utf8"));
  const node = state.nodes.find((n: { name: string }) => n.name === "node-1");
  return { netns: node.netns, address: node.address };
}

describe("Prometheus metrics of the local runtime (kernel2kernel)", { skip }, () => {
  let rt: TestRuntime;
  let node: { netns: string; address: string };

  before(async () => {
    rt = testRuntime("prom", { NSM_PROMETHEUS: "true" });
    await rt.ok("up");
    await rt.ok("apply", "-f", EXAMPLE);
    node = nodeNetns(rt);
    const ping = await rt.ok(
      "exec",
      "alpine",
      "-n",
      NS,
      "--",
      "ping",
      "-c",
      String(PINGS),
      "-i",
      "0.05",
      "-s",
      String(PAYLOAD),
      "-W",
      "2",
      "172.16.1.100",
    );
    assert.match(ping, new RegExp(`${PINGS} packets transmitted, ${PINGS} (packets )?received`));
  });
  after(() => rt?.cleanup());

  it("the forwarder counts at least the ping's bytes and packets on the client's interface", () => {
    const text = fetchIn(node.netns, `http://${node.address}:9091/metrics`);
    const labels = { service: "kernel2kernel", node: "node-1", interface: "nsm-1" };
    assert.ok((value(text, "nsm_interface_tx_packets_total", labels) ?? 0) >= PINGS, text);
    assert.ok((value(text, "nsm_interface_rx_packets_total", labels) ?? 0) >= PINGS);
    assert.ok((value(text, "nsm_interface_tx_bytes_total", labels) ?? 0) >= PINGS * FRAME);
    assert.ok((value(text, "nsm_interface_rx_bytes_total", labels) ?? 0) >= PINGS * FRAME);
    assert.match(text, /nsm_interface_rx_bytes_total\{[^}]*endpoint="nse-kernel-/);
    assert.ok((value(text, "nsm_calls_total", { role: "forwarder", op: "request", code: "OK" }) ?? 0) >= 1);
    assert.equal(value(text, "nsm_connections", { role: "forwarder" }), 1);
  });

  it("nsmgr, the endpoint and the client serve their call series", async () => {
    const nsmgr = fetchIn(node.netns, `http://${node.address}:9090/metrics`);
    assert.equal(value(nsmgr, "nsm_connections", { role: "nsmgr" }), 1);
    assert.ok((value(nsmgr, "nsm_calls_total", { role: "nsmgr", op: "request", code: "OK" }) ?? 0) >= 1);
    // Path tokens live NSM_MAX_TOKEN_LIFETIME (10m), SVIDs the runtime's 1h: both ahead, within those.
    const token = value(nsmgr, "nsm_token_expiry_seconds", { role: "nsmgr", segment: "nsmgr-node-1" }) ?? 0;
    assert.ok(token > 0 && token <= 600, `nsm_token_expiry_seconds ${token}`);
    const svid = value(nsmgr, "nsm_svid_expiry_seconds", { role: "nsmgr" }) ?? 0;
    assert.ok(svid > 0 && svid <= 3600, `nsm_svid_expiry_seconds ${svid}`);
    const pods = rows(await rt.ok("get", "pods", "-n", NS));
    const nsePod = pods.find((r) => r[1]!.startsWith("nse-kernel-"))![1]!;
    const nse = fetchIn(podNetns(rt, NS, nsePod), "http://127.0.0.1:9090/metrics");
    assert.equal(value(nse, "nsm_connections", { role: "nse" }), 1);
    const nsc = fetchIn(podNetns(rt, NS, "alpine"), "http://127.0.0.1:9090/metrics");
    assert.equal(value(nsc, "nsm_connections", { role: "nsc" }), 1);
    assert.match(nsc, /process_resident_memory_bytes\{/);
  });

  it("a real Prometheus in the node netns scrapes nsmgr and forwarder; its API has the series", async (t) => {
    const missing = missingPeers("prometheus");
    if (missing) return t.skip(missing);
    const dir = mkdtempSync(join(tmpdir(), "nsm-prom-"));
    writeFileSync(
      join(dir, "prometheus.yml"),
      [
        "global: { scrape_interval: 1s }",
        "scrape_configs:",
        "  - job_name: nsm",
        `    static_configs: [{ targets: ["${node.address}:9090", "${node.address}:9091"] }]`,
        "",
      ].join("\n"),
    );
    const listen = `${node.address}:9099`;
    const args = ["netns", "exec", node.netns, peerPath("prometheus"), `--config.file=${join(dir, "prometheus.yml")}`];
    args.push(`--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=${listen}`);
    const prom: ChildProcess = spawn("ip", args, { stdio: "ignore" });
    try {
      const want = { service: "kernel2kernel", interface: "nsm-1" };
      let last = "";
      for (let i = 0; i < 60; i++) {
        await new Promise((r) => setTimeout(r, 1000));
        try {
          last = fetchIn(node.netns, `http://${listen}/api/v1/query?query=nsm_interface_rx_bytes_total`);
        } catch {
          continue;
        }
        const result = JSON.parse(last).data?.result as { metric: Record<string, string>; value: [number, string] }[];
        const hit = result?.find((r) => Object.entries(want).every(([k, v]) => r.metric[k] === v));
        if (!hit) continue;
        // Each target is scraped on its own schedule: the nsmgr's first scrape may come a second
        // after the forwarder's, so its series are waited for too.
        const calls = JSON.parse(fetchIn(node.netns, `http://${listen}/api/v1/query?query=nsm_calls_total`));
        const roles = [...new Set(calls.data.result.map((r: { metric: { role: string } }) => r.metric.role))].sort();
        if (roles.length < 2) {
          last = `nsm_calls_total from ${roles.join(", ")} only`;
          continue;
        }
        assert.ok(Number(hit.value[1]) >= PINGS * FRAME, JSON.stringify(hit));
        assert.equal(hit.metric.node, "node-1");
        assert.deepEqual(roles, ["forwarder", "nsmgr"]);
        return;
      }
      assert.fail(`Prometheus never returned the interface series and both roles' calls: ${last}`);
    } finally {
      prom.kill("SIGTERM");
      await new Promise((r) => prom.once("exit", r));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
