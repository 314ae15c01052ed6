// SPDX-License-Identifier: Apache-2.0
/**
 * examples/nse-composition on the local runtime: client → firewall → passthrough-1 →
 * passthrough-2 → final endpoint, chosen by the NetworkService's `matches`. Ping end to end,
 * TCP :8080 through the firewall's ACL, :80 dropped, the whole path in `nsm get connections`,
 * a malformed ACL refused at start, and nothing left after delete and down.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { linksOf, podNetns, REPO, rows, skipReason, type TestRuntime, testRuntime } from "../local/helpers.js";

const NS = "ns-nse-composition";
const EXAMPLE = join(REPO, "examples", "nse-composition");
const skip = skipReason();

/** A TCP server on `ports` in `netns` answering "hi <port>" (a child process; kill it by pid). */
function tcpListeners(netns: string, ports: number[]): Promise<ChildProcess> {
  const code = `let n=0;for (const p of ${JSON.stringify(ports)}) require("net").createServer(s=>s.end("hi "+p+"\\n")).listen(p,"0.0.0.0",()=>{if(++n===${ports.length})console.log("listening")})`;
  const child = spawn("ip", ["netns", "exec", netns, process.execPath, "-e", code], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    child.stdout!.once("data", () => resolve(child));
    child.once("exit", (c) => reject(new Error(`listener exited with ${c}`)));
  });
}

const tcp = (port: number) => [
  "exec",
  "alpine",
  "-n",
  NS,
  "--",
  "timeout",
  "3",
  "bash",
  "-c",
  `exec 3<>/dev/tcp/172.16.1.100/${port}; cat <&3`,
];

describe("endpoints: examples/nse-composition (firewall + passthroughs)", { skip }, () => {
  let rt: TestRuntime;
  let listener: ChildProcess | undefined;
  let pods: string[][];

  before(async () => {
    rt = testRuntime("composition", { NSM_PASS_FDS: "true" });
    await rt.ok("up");
    const out = await rt.ok("apply", "-f", EXAMPLE);
    assert.match(out, /pod ns-nse-composition\/alpine running on node-1, connected kernel:\/\/nse-composition\/nsm-1/);
    pods = rows(await rt.ok("get", "pods", "-n", NS));
    const gateway = pods.find((r) => r[1]!.startsWith("nse-kernel-"))![1]!;
    listener = await tcpListeners(podNetns(rt, NS, gateway), [80, 8080]);
  });
  const stopListener = () => {
    if (listener?.exitCode === null && listener.pid) process.kill(listener.pid);
    listener = undefined;
  };
  after(async () => {
    stopListener();
    await rt?.cleanup();
  });

  it("the client pings the final endpoint through the three passthrough hops", async () => {
    const r = await rt.nsm("exec", "alpine", "-n", NS, "--", "ping", "-c", "4", "-i", "0.2", "-W", "2", "172.16.1.100");
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /4 packets transmitted, 4 received, 0% packet loss/);
  });

  it("every hop's netns reached the forwarder as a descriptor (client and passthroughs send theirs)", () => {
    const log = readFileSync(join(rt.dir, "logs", "node-1-forwarder.log"), "utf8");
    const proofs = log.split("\n").filter((l) => l.includes("netns ownership proven by a received descriptor"));
    const connsProven = (side: string) =>
      new Set(proofs.filter((l) => l.includes(`"side":"${side}"`)).map((l) => /"connId":"([^"]+)"/.exec(l)?.[1]));
    // client → firewall → passthrough-1 → passthrough-2 → final endpoint: four cross-connects.
    assert.ok(connsProven("client").size >= 4, `client sides proven by descriptor:\n${proofs.join("\n")}`);
    assert.ok(connsProven("endpoint").size >= 4, `endpoint sides proven by descriptor:\n${proofs.join("\n")}`);
  });

  it("TCP :8080 passes the firewall's ACL", async () => {
    const r = await rt.nsm(...tcp(8080));
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stdout.trim(), "hi 8080");
  });

  it("TCP :80 is dropped by the firewall (the endpoint listens on it)", async () => {
    const r = await rt.nsm(...tcp(80));
    assert.equal(r.code, 124, `expected a timeout, got ${r.code}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stdout, "");
  });

  it("each hop bridges its two interfaces", () => {
    for (const hop of ["nse-firewall-", "nse-passthrough-1-", "nse-passthrough-2-"]) {
      const pod = pods.find((r) => r[1]!.startsWith(hop))![1]!;
      const names = linksOf(podNetns(rt, NS, pod)).map((l) => l.ifname);
      assert.equal(names.filter((n) => n.startsWith("ptb-")).length, 1, `${hop}: ${names}`);
      assert.equal(names.filter((n) => n.startsWith("fwo-")).length, 1, `${hop}: ${names}`);
      assert.equal(names.length, 3, `${hop}: bridge, incoming, outgoing: ${names}`);
    }
  });

  it("nsm get connections shows the whole path: client, then nsmgr > forwarder > endpoint per hop", async () => {
    const conns = rows(await rt.ok("get", "connections"));
    assert.equal(conns.length, 1, JSON.stringify(conns));
    const [row] = conns;
    assert.equal(row![2], "nse-composition");
    assert.match(row![3]!, /^nse-kernel-/);
    assert.equal(row![4], "172.16.1.101/32");
    assert.equal(row![5], "172.16.1.100/32");
    const path = row![7]!.split(" > ");
    const hops = ["nse-firewall-", "nse-passthrough-1-", "nse-passthrough-2-", "nse-kernel-"];
    assert.equal(path.length, 1 + 3 * hops.length, row![7]);
    assert.equal(path[0], "alpine");
    hops.forEach((h, i) => {
      assert.equal(path[1 + 3 * i], "nsmgr-node-1");
      assert.equal(path[2 + 3 * i], "forwarder-node-1");
      assert.ok(path[3 + 3 * i]!.startsWith(h), `${path[3 + 3 * i]} is not ${h}…`);
    });
  });

  it("a malformed ACL file stops the firewall at start with one line naming the file and the field", async () => {
    const dir = mkdtempSync(join(tmpdir(), "acl-"));
    const file = join(dir, "config.yaml");
    writeFileSync(file, "allow tcp8080:\n  ispermit: 1\n  proto: 6\n  dstportoricmpcodefirst: 80800\n");
    try {
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [join(REPO, "bin", "nsm.js"), "nse", "firewall"], {
          env: { PATH: process.env.PATH, NSM_SERVICE_NAME: "x", NSM_ACL_CONFIG_PATH: file },
          stdio: ["ignore", "ignore", "pipe"],
        });
        let stderr = "";
        child.stderr!.on("data", (d) => {
          stderr += d;
        });
        child.on("close", (code) => resolve({ code, stderr }));
      });
      assert.equal(r.code, 2);
      assert.equal(
        r.stderr,
        `nsm: NSM_ACL_CONFIG_PATH="${file}": "allow tcp8080".dstportoricmpcodefirst: 80800 is not an integer in 0-65535\n`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("delete removes the pods and every hop's bridge; down leaves nothing", async () => {
    stopListener();
    await rt.ok("delete", "-f", EXAMPLE);
    assert.deepEqual(rows(await rt.ok("get", "pods", "-n", NS)), []);
    assert.equal(rt.netns().filter((n) => n.includes("nse-composition")).length, 0, `left: ${rt.netns().join(", ")}`);
    await rt.ok("down");
    assert.deepEqual(rt.netns(), []);
    assert.deepEqual(rt.processes(), []);
  });
});
