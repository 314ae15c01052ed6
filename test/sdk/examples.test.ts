// SPDX-License-Identifier: Apache-2.0
/**
 * examples/sdk through the local runtime: `nsm up`, `nsm apply` of a manifest whose containers run
 * the custom endpoint and the custom client (both import only `nsm-ts/sdk`), a ping through the
 * connection, the endpoint's route and DNS server on the client's side, the endpoint's log line
 * naming the client, and `nsm down` leaving nothing behind.
 */
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import {
  ipJson,
  ipv4Of,
  listNetns,
  podNetns,
  REPO,
  rows,
  skipReason,
  type TestRuntime,
  testRuntime,
} from "../local/helpers.js";

const NS = "ns-sdk";
const CLIENT = "custom-client";
const ROUTE = "10.60.0.0/16";
const skip = skipReason();

/** examples/sdk/manifests with NSM_TS pointing at this checkout and the client's resolv.conf in `dir`. */
function manifests(dir: string, resolvConf: string): string {
  const out = join(dir, "manifests");
  cpSync(join(REPO, "examples", "sdk", "manifests"), out, { recursive: true });
  for (const f of ["endpoint.yaml", "client.yaml"]) {
    const p = join(out, f);
    const text = readFileSync(p, "utf8")
      .replaceAll("value: /opt/nsm-ts", `value: ${REPO}`)
      .replace("value: /tmp/nsm-sdk-resolv.conf", `value: ${resolvConf}`);
    writeFileSync(p, text);
  }
  return out;
}

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(250);
  }
}

describe("examples/sdk: a custom endpoint and a custom client through the local runtime", { skip }, () => {
  let rt: TestRuntime;
  let work: string;
  let resolvConf: string;
  let clientNetns: string;
  let nseAddress: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "nsm-sdk-examples-"));
    resolvConf = join(work, "resolv.conf");
    rt = testRuntime("sdk");
    await rt.ok("up");
    const out = await rt.ok("apply", "-f", manifests(work, resolvConf));
    assert.match(out, /networkservice\/sdk-demo registered/);
    clientNetns = podNetns(rt, NS, CLIENT);
    // The client writes resolv.conf once its Request came back through its chain.
    const conf = await waitFor("the client's resolv.conf", () =>
      existsSync(resolvConf) ? readFileSync(resolvConf, "utf8") : undefined,
    );
    nseAddress = /^nameserver (\S+)$/m.exec(conf)?.[1] ?? "";
  });
  after(async () => {
    await rt?.cleanup();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("the client got the endpoint's DNS server and search domain (written by its own element)", () => {
    const conf = readFileSync(resolvConf, "utf8");
    assert.match(nseAddress, /^172\.16\.5\.\d+$/, conf);
    assert.match(conf, /^search sdk\.example$/m);
  });

  it("the client's nsm-1 has its address, and the endpoint's route goes through it", () => {
    const [addr] = ipv4Of(clientNetns, "nsm-1");
    assert.match(addr ?? "", /^172\.16\.5\.\d+\/32$/);
    const routes = ipJson(clientNetns, "route", "show", ROUTE);
    assert.equal(routes.length, 1, JSON.stringify(routes));
    assert.equal(routes[0].dev, "nsm-1");
  });

  it("the client pings the endpoint through the connection", async () => {
    const r = await rt.nsm("exec", CLIENT, "-n", NS, "--", "ping", "-c", "3", "-i", "0.2", "-W", "2", nseAddress);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /3 received/);
  });

  it("the endpoint logged the client by name", async () => {
    const pods = rows(await rt.ok("get", "pods", "-n", NS));
    const nse = pods.find((p) => p[1]?.startsWith("custom-endpoint-"))?.[1];
    assert.ok(nse, JSON.stringify(pods));
    const logs = await rt.ok("logs", nse, "-n", NS);
    assert.match(logs, new RegExp(`client ${CLIENT} connected`));
  });

  it("nsm down leaves no netns, process or state behind", async () => {
    await rt.ok("down");
    assert.deepEqual(rt.netns(), []);
    assert.deepEqual(rt.processes(), []);
    assert.ok(!listNetns().some((n) => n.startsWith(`${rt.prefix}-`)));
    assert.ok(!existsSync(rt.dir), "the state dir is still there");
    assert.ok(!existsSync(resolvConf), "the client did not close its connection (its element removes resolv.conf)");
  });
});
