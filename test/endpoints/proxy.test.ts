// SPDX-License-Identifier: Apache-2.0
/**
 * examples/proxy on the local runtime: the HTTP gateway (`cmd-nse-l7-proxy` → `nsm nse proxy`)
 * serves two HTTP servers of the mesh (clients of `http-gateway`) to a caller outside it: a
 * network namespace of the test's own joined to the gateway's pod by a veth, with no NSM
 * connection. GET returns a server's body (each server in turn, X-Forwarded-For the caller);
 * with no server connected the gateway answers 503; delete and down leave nothing.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { podNetns, REPO, rows, skipReason, type TestRuntime, testRuntime } from "../local/helpers.js";

const NS = "ns-proxy";
const EXAMPLE = join(REPO, "examples", "proxy");
const skip = skipReason();
const OUTSIDE_IP = "10.99.0.1";
const GATEWAY_IP = "10.99.0.2";

const ip = (...args: string[]) => execFileSync("ip", args, { encoding: "utf8" });

/** A netns standing for the world outside the mesh, with a veth to the gateway's pod. */
function outsideNetns(outside: string, gateway: string): void {
  ip("netns", "add", outside);
  ip("-n", outside, "link", "add", "out0", "type", "veth", "peer", "name", "out-gw", "netns", gateway);
  ip("-n", outside, "addr", "add", `${OUTSIDE_IP}/30`, "dev", "out0");
  ip("-n", gateway, "addr", "add", `${GATEWAY_IP}/30`, "dev", "out-gw");
  for (const [netns, dev] of [
    [outside, "out0"],
    [outside, "lo"],
    [gateway, "out-gw"],
  ] as const)
    ip("-n", netns, "link", "set", dev, "up");
}

async function podNames(rt: TestRuntime, selector: string): Promise<string[]> {
  const list = JSON.parse(await rt.ok("get", "pods", "-n", NS, "-l", selector, "-o", "json"));
  return list.items.map((p: { metadata: { name: string } }) => p.metadata.name);
}

/** `curl` from the outside netns: [HTTP status, body]. */
function curlFrom(outside: string, url: string): [number, string] {
  const out = execFileSync(
    "ip",
    ["netns", "exec", outside, "curl", "-s", "--max-time", "10", "-w", "\n%{http_code}", url],
    { encoding: "utf8" },
  );
  const i = out.lastIndexOf("\n");
  return [Number(out.slice(i + 1)), out.slice(0, i)];
}

describe("endpoints: examples/proxy (nsm nse proxy, HTTP gateway)", { skip }, () => {
  let rt: TestRuntime;
  let outside: string;

  before(async () => {
    rt = testRuntime("proxy");
    await rt.ok("up");
    const out = await rt.ok("apply", "-f", EXAMPLE);
    assert.equal((out.match(/connected kernel:\/\/http-gateway\/nsm-1/g) ?? []).length, 2, out);
    const [gatewayPod] = await podNames(rt, "app=http-gateway");
    outside = `${rt.prefix}-outside`;
    outsideNetns(outside, podNetns(rt, NS, gatewayPod!));
  });
  after(async () => {
    try {
      ip("netns", "delete", outside);
    } catch {}
    await rt?.cleanup();
  });

  it("GET from outside the mesh returns the servers' bodies, each in turn", () => {
    const bodies = [0, 1, 2, 3].map(() => {
      const [status, body] = curlFrom(outside, `http://${GATEWAY_IP}:8080/`);
      assert.equal(status, 200, body);
      return body;
    });
    for (const b of bodies)
      assert.match(b, new RegExp(`^hello from web-\\S+ to ${OUTSIDE_IP.replaceAll(".", "\\.")}\\n$`));
    assert.equal(new Set(bodies).size, 2, `both servers answered: ${bodies.join("")}`);
    assert.equal(bodies[0], bodies[2]);
  });

  it("the servers are reached only through the NSM connection (they have no other interface)", async () => {
    const pods = await podNames(rt, "app=web");
    assert.equal(pods.length, 2);
    for (const name of pods) {
      const links = JSON.parse(ip("-n", podNetns(rt, NS, name), "-j", "link", "show")) as { ifname: string }[];
      assert.deepEqual(links.map((l) => l.ifname).sort(), ["lo", "nsm-1"]);
    }
  });

  it("with no server connected the gateway answers 503", async () => {
    await rt.ok("delete", "deployment", "web", "-n", NS);
    const [status, body] = curlFrom(outside, `http://${GATEWAY_IP}:8080/`);
    assert.equal(status, 503);
    assert.equal(body, "no HTTP server is connected to the gateway\n");
  });

  it("delete and down leave nothing", async () => {
    ip("netns", "delete", outside);
    await rt.ok("delete", "-f", EXAMPLE);
    assert.deepEqual(rows(await rt.ok("get", "pods", "-n", NS)), []);
    await rt.ok("down");
    assert.deepEqual(rt.netns(), []);
    assert.deepEqual(rt.processes(), []);
  });
});
