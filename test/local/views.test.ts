// SPDX-License-Identifier: Apache-2.0
/**
 * Connection views through the CLI on examples/kernel2kernel: `nsm get connections -o
 * wide|json|yaml`, `nsm describe connection`, `nsm top connections --once` during a ping, and
 * `nsm logs -f` following a container's log.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { appendFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "yaml";
import { EXAMPLE, REPO, rows, skipReason, type TestRuntime, testRuntime } from "./helpers.js";

const NS = "ns-kernel2kernel";
const skip = skipReason();

interface Item {
  node: string;
  connection: {
    id: string;
    path: { pathSegments: { name: string; id: string; expires?: string; metrics?: Record<string, string> }[] };
    context: { ipContext: { srcIpAddrs: string[]; dstIpAddrs: string[] } };
    mechanism: { type: string; parameters: Record<string, string> };
  };
}

describe("local runtime: connection views (kernel2kernel)", { skip }, () => {
  let rt: TestRuntime;
  let nsePod: string;

  before(async () => {
    rt = testRuntime("views");
    await rt.ok("up");
    await rt.ok("apply", "-f", EXAMPLE);
    nsePod = rows(await rt.ok("get", "pods", "-n", NS)).find((r) => r[1]!.startsWith("nse-kernel-"))![1]!;
  });
  after(() => rt?.cleanup());

  it("get connections -o wide shows the mechanism, the interface and every hop with its token expiry", async () => {
    const table = rows(await rt.ok("get", "connections", "-o", "wide"));
    assert.equal(table.length, 1, JSON.stringify(table));
    const [node, id, svc, endpoint, src, dst, state, mech, ifname, ...hops] = table[0]!;
    assert.deepEqual(
      [node, id, svc, endpoint, src, dst, state, mech, ifname],
      ["node-1", "alpine-0", "kernel2kernel", nsePod, "172.16.1.101/32", "172.16.1.100/32", "UP", "KERNEL", "nsm-1"],
    );
    assert.match(
      hops.join(" "),
      new RegExp(
        `^alpine\\(in \\d+s\\) > nsmgr-node-1\\(in \\d+s\\) > forwarder-node-1\\(in \\d+s\\) > ${nsePod}\\(in \\d+s\\)$`,
      ),
    );
  });

  it("get connections -o json and -o yaml give the connection with its path, IP context and mechanism", async () => {
    for (const format of ["json", "yaml"] as const) {
      const out = await rt.ok("get", "connections", "-o", format);
      const doc = (format === "json" ? JSON.parse(out) : parse(out)) as { kind: string; items: Item[] };
      assert.equal(doc.kind, "List");
      assert.equal(doc.items.length, 1);
      const c = doc.items[0]!.connection;
      assert.deepEqual(
        c.path.pathSegments.map((s) => s.name),
        ["alpine", "nsmgr-node-1", "forwarder-node-1", nsePod],
      );
      assert.ok(
        c.path.pathSegments.every((s) => s.expires),
        format,
      );
      assert.deepEqual(c.context.ipContext.srcIpAddrs, ["172.16.1.101/32"]);
      assert.equal(c.mechanism.type, "KERNEL");
      assert.equal(c.mechanism.parameters.name, "nsm-1");
      assert.equal(c.path.pathSegments[2]!.metrics?.rx_bytes !== undefined, true, "forwarder segment metrics");
    }
  });

  it("describe connection shows the path, token expiries, mechanisms, IP context, DNS and traffic", async () => {
    await rt.ok(
      "exec",
      "alpine",
      "-n",
      NS,
      "--",
      "ping",
      "-c",
      "5",
      "-i",
      "0.1",
      "-s",
      "300",
      "-W",
      "2",
      "172.16.1.100",
    );
    const out = await rt.ok("describe", "connection", "alpine-0");
    assert.match(out, /^ID: +alpine-0$/m);
    assert.match(out, /^State: +UP$/m);
    for (const [i, name] of ["alpine", "nsmgr-node-1", "forwarder-node-1", nsePod].entries())
      assert.match(out, new RegExp(`^  ${i}\\. ${name}  id=\\S+  token expires \\S+ \\(in \\d+s\\)$`, "m"));
    assert.match(out, /^ {5}metrics: .*rx_bytes=\d+/m);
    // Every hop's mechanism, each as that hop holds the connection: the client's interface up to
    // the forwarder, the endpoint's own interface on the last hop.
    const mechanisms = out.slice(out.indexOf("Mechanisms:\n"), out.indexOf("IP context:"));
    const hop = (from: string, to: string, ifname: string) =>
      new RegExp(
        `^ {2}${from} > ${to}: KERNEL \\(LOCAL\\)\n {4}inodeURL: (?:file:///proc/\\d+/ns/net|inode://\\d+/\\d+)\n {4}name: ${ifname}$`,
        "m",
      );
    assert.match(mechanisms, hop("alpine", "nsmgr-node-1", "nsm-1"));
    assert.match(mechanisms, hop("nsmgr-node-1", "forwarder-node-1", "nsm-1"));
    assert.match(mechanisms, hop("forwarder-node-1", nsePod, "\\S+"));
    assert.equal(mechanisms.match(/^ {2}\S+ > \S+: /gm)?.length, 3, mechanisms);
    assert.doesNotMatch(mechanisms, /not known/);
    assert.match(out, /^ {2}client addresses: +172\.16\.1\.101\/32$/m);
    assert.match(out, /^ {2}endpoint addresses: +172\.16\.1\.100\/32$/m);
    assert.match(out, /^DNS:$/m);
    const rx = /^ {2}rx: (\d+) bytes, (\d+) packets/m.exec(out);
    assert.ok(rx, out);
    assert.ok(Number(rx[2]) >= 5 && Number(rx[1]) >= 5 * 342, out);
    const missing = await rt.nsm("describe", "connection", "nope");
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no connection "nope" \(known: alpine-0\)/);
  });

  it("top connections --once shows a receive rate while a ping runs", async () => {
    const args = ["exec", "alpine", "-n", NS, "--", "ping", "-w", "8", "-i", "0.05", "-s", "1000", "172.16.1.100"];
    const ping = spawn(process.execPath, [join(REPO, "bin", "nsm.js"), ...args], {
      env: { ...process.env, NSM_LOCAL_STATE_DIR: rt.dir },
      stdio: ["ignore", "pipe", "ignore"],
    });
    const pinged = new Promise((resolve) => ping.once("exit", resolve));
    // Sample only once the ping runs (starting `nsm exec` or `nsm top` takes a while on a busy
    // machine: the ping goes on for 8 s).
    await new Promise<void>((resolve) => {
      let out = "";
      ping.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        if (/bytes from/.test(out)) resolve();
      });
      ping.once("exit", () => resolve());
    });
    const table = rows(await rt.ok("top", "connections", "--once", "--interval", "800ms"));
    await pinged;
    assert.equal(table.length, 1, JSON.stringify(table));
    const [node, id, svc, ifname, rxRate, txRate, rxPps] = table[0]!;
    assert.deepEqual([node, id, svc, ifname], ["node-1", "alpine-0", "kernel2kernel", "nsm-1"]);
    assert.match(rxRate!, /^[\d.]+(k|M)?B\/s$/);
    assert.match(txRate!, /^[\d.]+(k|M)?B\/s$/);
    assert.ok(Number(rxPps) > 1, JSON.stringify(table));
    assert.match(rxRate!, /kB\/s$/, JSON.stringify(table));
  });

  it("logs -f prints the lines a container appends, until interrupted", async () => {
    const state = JSON.parse(readFileSync(join(rt.dir, "state.json"), "utf8"));
    const pod = state.pods.find((p: { name: string }) => p.name === nsePod);
    const log = pod.containers[0].log as string;
    const child = spawn(process.execPath, [join(REPO, "bin", "nsm.js"), "logs", "-f", nsePod, "-n", NS], {
      env: { ...process.env, NSM_LOCAL_STATE_DIR: rt.dir },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    try {
      for (let i = 0; i < 50 && !/endpoint serving and registered/.test(out); i++)
        await new Promise((r) => setTimeout(r, 100));
      assert.match(out, /endpoint serving and registered/);
      appendFileSync(
        log,
        `${JSON.stringify({ time: new Date().toISOString(), level: "info", msg: "appended by the test", connId: "c-1" })}\n`,
      );
      for (let i = 0; i < 50 && !/appended by the test/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
      assert.match(out, /^\[nse\] .*INFO +appended by the test connId=c-1$/m);
    } finally {
      child.kill("SIGINT");
    }
    const code = await new Promise((r) => child.once("exit", r));
    assert.equal(code, 0);
    // Components are named as nsm stop names them.
    assert.match(await rt.ok("logs", "nsmgr/node-1"), /^\[nsmgr\] .*nsmgr serving/m);
    assert.match(await rt.ok("logs", "forwarder/node-1", "--tail", "50"), /^\[forwarder\] /m);
    assert.match(await rt.ok("logs", "registry"), /^\[registry\] .*registry serving/m);
  });
});
