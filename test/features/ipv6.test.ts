// SPDX-License-Identifier: Apache-2.0
/**
 * IPv6 and dual stack end to end on `nsm up --nodes 2`: examples/ipv6 (an endpoint with
 * `NSM_CIDR_PREFIX=2001:db8::/116`) and examples/dual-stack (`172.16.1.100/31,2001:db8::/116`),
 * both on one node (veth), and the dual-stack example with the client on the other node
 * (VXLAN). Each checks the client's addresses on nsm-1 and the pings of upstream's READMEs, both
 * ways, then deletes its namespace.
 */
import assert from "node:assert/strict";
import { cpSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ipJson, podNetns, REPO, rows, skipReason, type TestRuntime, testRuntime } from "../local/helpers.js";

const skip = skipReason();

/** The global addresses of nsm-1 in the client. */
function clientAddresses(rt: TestRuntime, ns: string): string[] {
  const [link] = ipJson(podNetns(rt, ns, "alpine"), "addr", "show", "dev", "nsm-1");
  return (link?.addr_info ?? [])
    .filter((a: { scope: string }) => a.scope === "global")
    .map((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`);
}

/**
 * examples/dual-stack under another service and namespace (`name`), the client kept off the
 * endpoint's node; payload IP makes the tunnel WireGuard instead of VXLAN.
 */
function remoteDualStack(dir: string, name: string, payload: "ETHERNET" | "IP"): string {
  const out = join(dir, name);
  cpSync(join(REPO, "examples", "dual-stack"), out, { recursive: true });
  for (const f of readdirSync(out)) {
    const text = readFileSync(join(out, f), "utf8")
      .replaceAll("kernel2kernel-dual-stack", name)
      .replace("podAffinity:", "podAntiAffinity:")
      .replace("payload: ETHERNET", `payload: ${payload}`);
    writeFileSync(join(out, f.replace("kernel2kernel-dual-stack", name)), text);
  }
  return out;
}

describe("IPv6 and dual stack on the local runtime", { skip }, () => {
  let rt: TestRuntime;

  before(async () => {
    rt = testRuntime("ipv6");
    await rt.ok("up", "--nodes", "2");
  });
  after(() => rt?.cleanup());

  const ping = async (ns: string, pod: string, address: string) => {
    const r = await rt.nsm("exec", pod, "-n", ns, "--", "ping", "-c", "2", "-i", "0.2", "-W", "2", address);
    assert.match(r.stdout, /2 packets transmitted, 2 received/, `${pod} → ${address}: ${r.stdout}${r.stderr}`);
  };
  const nodeOf = async (ns: string, prefix: string) => {
    const pods = rows(await rt.ok("get", "pods", "-n", ns, "-o", "wide"));
    return pods.find((p) => p[0]!.startsWith(prefix))?.[6];
  };

  it("IPv6 only, same node: the client gets 2001:db8::1, pings 2001:db8:: and back", async () => {
    const ns = "ns-kernel2kernel-ipv6";
    await rt.ok("apply", "-k", join(REPO, "examples", "ipv6"));
    assert.deepEqual(clientAddresses(rt, ns), ["2001:db8::1/128"]);
    await ping(ns, "pods/alpine", "2001:db8::");
    await ping(ns, "deployments/nse-kernel", "2001:db8::1");
    await rt.ok("delete", "ns", ns);
  });

  it("dual stack, same node: 172.16.1.101 and 2001:db8::1 on one interface, both families ping", async () => {
    const ns = "ns-kernel2kernel-dual-stack";
    await rt.ok("apply", "-k", join(REPO, "examples", "dual-stack"));
    assert.deepEqual(clientAddresses(rt, ns).sort(), ["172.16.1.101/32", "2001:db8::1/128"]);
    for (const a of ["172.16.1.100", "2001:db8::"]) await ping(ns, "pods/alpine", a);
    for (const a of ["172.16.1.101", "2001:db8::1"]) await ping(ns, "deployments/nse-kernel", a);
    await rt.ok("delete", "ns", ns);
  });

  for (const [tunnel, payload, name] of [
    ["VXLAN", "ETHERNET", "k2e2k-dual-stack"],
    ["WireGuard", "IP", "k2ip2k-dual-stack"],
  ] as const) {
    it(`dual stack across nodes (${tunnel}): both families ping both ways`, async () => {
      await remoteDualStackCase(name, payload);
    });
  }

  const remoteDualStackCase = async (name: string, payload: "ETHERNET" | "IP") => {
    const ns = `ns-${name}`;
    await rt.ok("apply", "-k", remoteDualStack(join(rt.dir, ".."), name, payload));
    const [client, endpoint] = [await nodeOf(ns, "alpine"), await nodeOf(ns, "nse-kernel")];
    assert.ok(client && endpoint && client !== endpoint, `client on ${client}, endpoint on ${endpoint}`);
    assert.deepEqual(clientAddresses(rt, ns).sort(), ["172.16.1.101/32", "2001:db8::1/128"]);
    for (const a of ["172.16.1.100", "2001:db8::"]) await ping(ns, "pods/alpine", a);
    for (const a of ["172.16.1.101", "2001:db8::1"]) await ping(ns, "deployments/nse-kernel", a);
    await rt.ok("delete", "ns", ns);
  };
});
