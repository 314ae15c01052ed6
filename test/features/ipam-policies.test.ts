// SPDX-License-Identifier: Apache-2.0
/**
 * examples/ipam-policies on the local runtime, as upstream's README runs it: two clients on a
 * polite endpoint (172.16.1.0/29), the endpoint deleted, a strict endpoint (172.16.2.0/29)
 * applied; the clients heal to it and keep no address or route of the first pool (`ip r show
 * dev nsm-N` holds only the route to the new endpoint).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { retrying } from "../../src/sdk/testing/async.js";
import { REPO, skipReason, type TestRuntime, testRuntime } from "../local/helpers.js";

const NS = "ns-ipam-policies";
const EXAMPLE = join(REPO, "examples", "ipam-policies");
const skip = skipReason();

const eventually = (fn: () => unknown, timeoutMs = 90_000) => retrying(fn, timeoutMs, 1000);

describe("examples/ipam-policies on the local runtime", { skip }, () => {
  let rt: TestRuntime;

  before(async () => {
    rt = testRuntime("ipampol");
    await rt.ok("up");
    await rt.ok("apply", "-k", EXAMPLE);
    for (const app of ["alpine-1", "alpine-2", "first-nse"])
      await rt.ok("wait", "--for=condition=ready", "--timeout=1m", "pod", "-l", `app=${app}`, "-n", NS);
  });
  after(() => rt?.cleanup());

  /** Pings the first of `addresses` that answers. */
  const ping = async (pod: string, ...addresses: string[]) => {
    const out: string[] = [];
    for (const a of addresses) {
      const r = await rt.nsm("exec", `pods/${pod}`, "-n", NS, "--", "ping", "-c", "2", "-i", "0.2", "-W", "2", a);
      if (/2 received/.test(r.stdout)) return;
      out.push(r.stdout + r.stderr);
    }
    assert.fail(`${pod} reaches none of ${addresses.join(", ")}: ${out.join("\n")}`);
  };
  const routes = async (pod: string, dev: string) =>
    (await rt.ok("exec", `pods/${pod}`, "-n", NS, "--", "ip", "r", "show", "dev", dev)).trim().replace(/\s+/g, " ");

  it("the polite endpoint: both clients ping it, it pings both", async () => {
    await ping("alpine-1", "172.16.1.0", "172.16.1.2");
    await ping("alpine-2", "172.16.1.0", "172.16.1.2");
    await ping("first-nse", "172.16.1.1");
    await ping("first-nse", "172.16.1.3");
  });

  it("after the switch to the strict endpoint the clients hold only 172.16.2.0/29 routes", async () => {
    await rt.ok("delete", "pod", "-l", "app=first-nse", "-n", NS);
    await rt.ok("apply", "-f", join(EXAMPLE, "second-nse.yaml"), "-n", NS);
    await rt.ok("wait", "--for=condition=ready", "--timeout=1m", "pod", "-l", "app=second-nse", "-n", NS);
    await eventually(() => ping("alpine-1", "172.16.2.0", "172.16.2.2"));
    await eventually(() => ping("alpine-2", "172.16.2.0", "172.16.2.2"));
    await ping("second-nse", "172.16.2.1");
    await ping("second-nse", "172.16.2.3");
    // One route, to the new endpoint (this iproute2 leaves out the `dev` it filters by).
    assert.match(await routes("alpine-1", "nsm-1"), /^172\.16\.2\.[02]( dev nsm-1)?$/);
    assert.match(await routes("alpine-2", "nsm-2"), /^172\.16\.2\.[02]( dev nsm-2)?$/);
    const addr = await rt.ok("exec", "pods/alpine-1", "-n", NS, "--", "ip", "-4", "addr", "show", "dev", "nsm-1");
    assert.match(addr, /inet 172\.16\.2\.[13]\/32/);
    assert.doesNotMatch(addr, /172\.16\.1\./, "no address of the first pool is left");
  });
});
