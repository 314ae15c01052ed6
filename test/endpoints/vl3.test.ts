// SPDX-License-Identifier: Apache-2.0
/**
 * examples/vl3-basic on the local runtime (`nsm up --nodes 2`): the IPAM hands each vL3 endpoint
 * a /24 of 172.16.0.0/16, the endpoints (one per node) peer with each other, the clients (one per
 * node, each on its node's endpoint) ping each other and both endpoints and resolve each other's
 * names (vL3 DNS); deleting an endpoint's
 * pod heals (its Deployment makes a new one, which takes the freed block back and peers again);
 * bad settings stop `nsm ipam` and `nsm nse vl3` at start with one line; delete and down leave
 * nothing.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ipJson, ipv4Of, podNetns, REPO, rows, skipReason, type TestRuntime, testRuntime } from "../local/helpers.js";

const NS = "ns-vl3";
const EXAMPLE = join(REPO, "examples", "vl3-basic");
const skip = skipReason();

/** `nsm ARGS` in a clean environment (no runtime): exit code and stderr. */
function nsmAlone(args: string[], env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(REPO, "bin", "nsm.js"), ...args], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr!.on("data", (d) => {
      stderr += d;
    });
    child.on("close", (code) => resolve({ code, stderr }));
  });
}

describe("endpoints: examples/vl3-basic (vL3 network over two nodes)", { skip }, () => {
  let rt: TestRuntime;
  /** Client pod → its vL3 address (no length). */
  const addr: Record<string, string> = {};
  let clients: string[] = [];

  const podsOf = async (prefix: string) =>
    rows(await rt.ok("get", "pods", "-n", NS, "-o", "wide"))
      .filter((r) => r[0]!.startsWith(prefix))
      .map((r) => ({ name: r[0]!, node: r[6]! }));

  const ping = (from: string, to: string, count = 3) =>
    rt.nsm("exec", from, "-n", NS, "--", "ping", "-c", String(count), "-i", "0.2", "-W", "2", to);

  /** Resolves `name` (A) at `server` from inside `pod` with Node's resolver. */
  const resolve = (pod: string, server: string, name: string) =>
    rt.nsm(
      "exec",
      pod,
      "-n",
      NS,
      "--",
      process.execPath,
      "-e",
      'const r=new (require("dns").promises.Resolver)({timeout:2000,tries:1});r.setServers([process.argv[1]]);r.resolve4(process.argv[2]).then(a=>console.log(a.join(",")),e=>{console.error(e.code);process.exit(1)})',
      server,
      name,
    );

  before(async () => {
    rt = testRuntime("vl3");
    await rt.ok("up", "--nodes", "2");
    const out = await rt.ok("apply", "-f", EXAMPLE);
    assert.match(out, /pod ns-vl3\/alpine-\S+ running on node-1, connected kernel:\/\/vl3-basic\/nsm-1/);
    assert.match(out, /pod ns-vl3\/alpine-\S+ running on node-2, connected kernel:\/\/vl3-basic\/nsm-1/);
    clients = (await podsOf("alpine-")).map((p) => p.name);
    for (const c of clients) addr[c] = ipv4Of(podNetns(rt, NS, c), "nsm-1")[0]!.split("/")[0]!;
  });
  after(() => rt?.cleanup());

  it("each client has an address of its node's endpoint's /24 and a route to 172.16.0.0/16", () => {
    assert.equal(clients.length, 2);
    const blocks = clients.map((c) => addr[c]!.split(".").slice(0, 3).join("."));
    assert.deepEqual(blocks.sort(), ["172.16.0", "172.16.1"], JSON.stringify(addr));
    for (const c of clients) {
      const routes = ipJson(podNetns(rt, NS, c), "route", "show", "dev", "nsm-1").map((r) => r.dst);
      assert.ok(routes.includes("172.16.0.0/16"), `${c}: ${routes}`);
    }
  });

  it("the clients on different nodes ping each other's vL3 address", async () => {
    const [a, b] = clients as [string, string];
    for (const [from, to] of [
      [a, b],
      [b, a],
    ]) {
      const r = await ping(from!, addr[to!]!);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /3 packets transmitted, 3 received, 0% packet loss/);
    }
  });

  it("every client reaches both endpoints (172.16.0.0 and 172.16.1.0), as upstream's README checks", async () => {
    for (const c of clients)
      for (const nse of ["172.16.0.0", "172.16.1.0"]) {
        const r = await ping(c, nse, 2);
        assert.equal(r.code, 0, `${c} → ${nse}: ${r.stdout}${r.stderr}`);
      }
  });

  it("the endpoints peer: one connection between them, across the two nodes (6 segments)", async () => {
    const conns = rows(await rt.ok("get", "connections"));
    const peering = conns.filter((r) => r[1]!.startsWith("nse-vl3-"));
    assert.equal(peering.length, 1, JSON.stringify(conns));
    const path = peering[0]![7]!.split(" > ");
    assert.equal(path.length, 6, peering[0]![7]);
    assert.ok(path[0]!.startsWith("nse-vl3-") && path[5]!.startsWith("nse-vl3-"), peering[0]![7]);
    assert.deepEqual(
      path.slice(1, 5).sort(),
      ["forwarder-node-1", "forwarder-node-2", "nsmgr-node-1", "nsmgr-node-2"],
      peering[0]![7],
    );
  });

  it("vL3 DNS: each client resolves the other's <pod>.vl3-basic. at its own endpoint (asked across the peering)", async () => {
    const [a, b] = clients as [string, string];
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as const) {
      const server = `${addr[from]!.split(".").slice(0, 3).join(".")}.0`;
      const r = await resolve(from, server, `${to}.vl3-basic.`);
      assert.equal(r.code, 0, `${from} → ${to}: ${r.stdout}${r.stderr}`);
      assert.equal(r.stdout.trim(), addr[to]);
    }
    const unknown = await resolve(a, "172.16.0.0", "nobody.vl3-basic.");
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /ENOTFOUND/);
  });

  it("the IPAM restarts (kill -9): each endpoint asks for its block again and gets it; traffic goes on", async () => {
    const [ipam] = await podsOf("vl3-ipam-");
    const log = join(rt.dir, "logs", `${NS}_${ipam!.name}_vl3-ipam.log`);
    const allocated = () =>
      readFileSync(log, "utf8")
        .split("\n")
        .filter((l) => l.includes('"prefix allocated"'))
        .map((l) => JSON.parse(l).prefix as string);
    const before = allocated().sort();
    assert.deepEqual(before, ["172.16.0.0/24", "172.16.1.0/24"]);
    await rt.ok("restart", `pod/${ipam!.name}`, "-n", NS, "--kill");
    const started = Date.now();
    while (allocated().length < 4 && Date.now() - started < 30_000) await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(allocated().slice(2).sort(), before, "the same blocks after the restart");
    const [a, b] = clients as [string, string];
    const r = await ping(a, addr[b]!);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  it("an endpoint killed (-9) is dropped by its peer at once, not at its registration's expiry (1 min)", async () => {
    // Of the two, the endpoint whose name sorts last connects to the other: kill the other.
    const [victim, peer] = (await podsOf("nse-vl3-")).map((p) => p.name).sort() as [string, string];
    const log = join(rt.dir, "logs", `${NS}_${peer}_nse.log`);
    const lost = () =>
      readFileSync(log, "utf8")
        .split("\n")
        .filter((l) => l.includes('"msg":"vL3 peer connection lost') && l.includes(victim)).length;
    const before = lost();
    await rt.ok("stop", `pod/${victim}`, "-n", NS, "--kill");
    const t0 = Date.now();
    while (lost() === before && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 200));
    assert.equal(lost(), before + 1, `${peer} did not drop ${victim} within 30 s`);
    process.stdout.write(`# vl3 figure: peer_dropped ${Date.now() - t0} ms\n`);
    await rt.ok("start", `pod/${victim}`, "-n", NS);
    const [a, b] = clients as [string, string];
    let back = false;
    while (!back && Date.now() - t0 < 90_000) {
      back = (await ping(a, addr[b]!, 1)).code === 0 && (await ping(b, addr[a]!, 1)).code === 0;
      if (!back) await new Promise((r) => setTimeout(r, 500));
    }
    assert.ok(back, "the clients did not reach each other again once the endpoint was back");
  });

  it("deleting an endpoint's pod heals: the new endpoint peers again and the clients ping each other", async () => {
    const nses = await podsOf("nse-vl3-");
    const victim = nses.find((p) => p.node === "node-1")!;
    await rt.ok("delete", "pod", victim.name, "-n", NS);
    const [a, b] = clients as [string, string];
    let healed = false;
    const started = Date.now();
    while (!healed && Date.now() - started < 60_000) {
      healed = (await ping(a, addr[b]!, 1)).code === 0 && (await ping(b, addr[a]!, 1)).code === 0;
      if (!healed) await new Promise((r) => setTimeout(r, 500));
    }
    assert.ok(healed, "clients did not reach each other within 60 s of the endpoint's death");
    const now = await podsOf("nse-vl3-");
    assert.equal(now.length, 2);
    assert.ok(!now.some((p) => p.name === victim.name), "the deleted pod is gone");
    const conns = rows(await rt.ok("get", "connections"));
    assert.ok(
      !conns.some((r) => r[3] === victim.name),
      `a connection still names ${victim.name}: ${JSON.stringify(conns)}`,
    );
    assert.equal(conns.filter((r) => r[1]!.startsWith("nse-vl3-")).length, 1, JSON.stringify(conns));
  });

  it("a client's death: its replacement gets an address and a name, reaches the other client, the old name is gone", async () => {
    const old = (await podsOf("alpine-")).find((p) => p.node === "node-2")!;
    const other = clients.find((c) => c !== old.name)!;
    await rt.ok("delete", "pod", old.name, "-n", NS);
    const now = await podsOf("alpine-");
    const fresh = now.find((p) => p.node === "node-2" && p.name !== old.name);
    assert.ok(fresh, JSON.stringify(now));
    const ip = ipv4Of(podNetns(rt, NS, fresh.name), "nsm-1")[0]!.split("/")[0]!;
    const block = addr[old.name]!.split(".").slice(0, 3).join(".");
    assert.equal(ip.split(".").slice(0, 3).join("."), block, "from the same endpoint's block");
    const r = await ping(other, ip);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const back = await ping(fresh.name, addr[other]!);
    assert.equal(back.code, 0, back.stdout + back.stderr);
    const otherServer = `${addr[other]!.split(".").slice(0, 3).join(".")}.0`;
    const named = await resolve(other, otherServer, `${fresh.name}.vl3-basic.`);
    assert.equal(named.stdout.trim(), ip, named.stderr);
    const gone = await resolve(other, otherServer, `${old.name}.vl3-basic.`);
    assert.match(gone.stderr, /ENOTFOUND/, gone.stdout);
  });

  it("bad settings stop nsm ipam and nsm nse vl3 at start with one line naming the variable", async () => {
    const cases: [string[], Record<string, string>, string][] = [
      [["ipam"], { NSM_PREFIX: "172.16.0.300/16" }, 'nsm: NSM_PREFIX="172.16.0.300/16": '],
      [["ipam"], { NSM_PREFIX: "172.16.0.0/16", NSM_CLIENT_PREFIX_LEN: "8" }, 'nsm: NSM_CLIENT_PREFIX_LEN="8": '],
      [["nse", "vl3"], { NSM_PREFIX_SERVER_URL: "ftp://ipam:5006" }, 'nsm: NSM_PREFIX_SERVER_URL="ftp://ipam:5006": '],
      [["nse", "vl3"], { NSM_DNS_TEMPLATES: "{{ .Name }}.x" }, 'nsm: NSM_DNS_TEMPLATES="{{ .Name }}.x": '],
    ];
    for (const [args, env, start] of cases) {
      const r = await nsmAlone(args, env);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.ok(r.stderr.startsWith(start), r.stderr);
      assert.equal(r.stderr.split("\n").filter(Boolean).length, 1, r.stderr);
    }
  });

  it("delete removes the pods and their namespaces; down leaves no netns, links or processes", async () => {
    await rt.ok("delete", "-f", EXAMPLE);
    assert.deepEqual(rows(await rt.ok("get", "pods", "-n", NS)), []);
    assert.equal(rt.netns().filter((n) => n.includes("vl3")).length, 0, `left: ${rt.netns().join(", ")}`);
    await rt.ok("down");
    assert.deepEqual(rt.netns(), []);
    assert.deepEqual(rt.processes(), []);
  });
});
