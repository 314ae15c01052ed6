// SPDX-License-Identifier: Apache-2.0
/**
 * Upstream's Kernel2Kernel README, command by command, with `kubectl` standing for `nsm`:
 * `apply -k`, `wait --for=condition=ready … pod -l app=…`, `get pods -l … --template …`,
 * `exec pods/alpine … -- ping`, `exec deployments/nse-kernel … -- ping`, `delete ns`; and the
 * other kubectl verbs (scale, delete pod of a Deployment, label, annotate, describe, -o forms).
 * Bad input (unknown verb, flag, kind; a bad selector; a bad manifest) is one error line and
 * changes nothing.
 */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { EXAMPLE, skipReason, type TestRuntime, testRuntime } from "./helpers.js";

const NS = "ns-kernel2kernel";
const skip = skipReason();
const TEMPLATE_NAMES = '{{range .items}}{{.metadata.name}}{{"\\n"}}{{end}}';
const TEMPLATE_NODES = '{{range .items}}{{.spec.nodeName}}{{"\\n"}}{{end}}';

/** `nsm exec … -- ping -c 4` as the README runs it (interval shortened). */
async function ping(rt: TestRuntime, target: string, address: string): Promise<void> {
  const r = await rt.nsm("exec", target, "-n", NS, "--", "ping", "-c", "4", "-i", "0.2", "-W", "2", address);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /4 packets transmitted, 4 received, 0% packet loss/);
}

function stateJson(rt: TestRuntime): any {
  return JSON.parse(readFileSync(join(rt.dir, "state.json"), "utf8"));
}

describe("kubectl-compatible CLI: upstream Kernel2Kernel README", { skip }, () => {
  let rt: TestRuntime;

  before(async () => {
    rt = testRuntime("kubectl");
    await rt.ok("up");
  });
  after(() => rt?.cleanup());

  it("apply -k, wait --for=condition=ready pod -l app=…, then both pings", async () => {
    const out = await rt.ok("apply", "-k", EXAMPLE);
    assert.match(out, /namespace\/ns-kernel2kernel created/);
    assert.equal(
      await rt.ok("wait", "--for=condition=ready", "--timeout=1m", "pod", "-l", "app=alpine", "-n", NS),
      "pod/alpine condition met\n",
    );
    const nse = await rt.ok("wait", "--for=condition=ready", "--timeout=1m", "pod", "-l", "app=nse-kernel", "-n", NS);
    assert.match(nse, /^pod\/nse-kernel-[0-9a-f]{10}-[a-z0-9]{5} condition met\n$/);
    await ping(rt, "pods/alpine", "172.16.1.100");
    await ping(rt, "deployments/nse-kernel", "172.16.1.101");
  });

  it("get pods -l … --template prints names and nodes as the README's scripts read them", async () => {
    const nsc = await rt.ok("get", "pods", "-l", "app=alpine", "-n", NS, "--template", TEMPLATE_NAMES);
    assert.equal(nsc, "alpine\n");
    const node = await rt.ok("get", "pods", "-l", "app=alpine", "-n", NS, "--template", TEMPLATE_NODES);
    assert.equal(node, "node-1\n");
    const nse = (await rt.ok("get", "pods", "-l", "app=nse-kernel", "-n", NS, "--template", TEMPLATE_NAMES)).trim();
    await ping(rt, nse, "172.16.1.101");
    assert.equal(
      await rt.ok("get", "pods", "-n", NS, "-o", "go-template={{ (index .items 0).metadata.name }}"),
      "alpine",
    );
    assert.equal(await rt.ok("get", "pod", "alpine", "-n", NS, "-o", "jsonpath={.status.hostIP}"), "198.18.0.1");
    assert.equal(JSON.parse(await rt.ok("get", "pod", "alpine", "-n", NS, "-o", "json")).metadata.labels.app, "alpine");
    assert.match(
      await rt.ok("get", "pods", "-n", NS, "-o", "wide"),
      /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE/,
    );
    assert.equal(await rt.ok("get", "deployments", "-n", NS, "-o", "name"), "deployment.apps/nse-kernel\n");
  });

  it("nsm-system lists the components as pods a DaemonSet selector finds", async () => {
    const names = await rt.ok(
      "get",
      "pods",
      "-n",
      "nsm-system",
      "-l",
      "app=nsmgr",
      "--field-selector",
      "spec.nodeName==node-1",
      "-o",
      "name",
    );
    assert.equal(names, "pod/nsmgr-node-1\n");
    const fwd = await rt.ok(
      "get",
      "pods",
      "-l",
      "app=forwarder-vpp",
      "--field-selector",
      "spec.nodeName==node-1",
      "-n",
      "nsm-system",
      "--template",
      TEMPLATE_NAMES,
    );
    assert.equal(fwd, "forwarder-node-1\n");
    assert.equal(await rt.ok("get", "pods", "-n", "nsm-system", "-l", "app=registry", "-o", "name"), "pod/registry\n");
  });

  it("label, annotate and describe change and show metadata", async () => {
    assert.equal(await rt.ok("label", "pod", "alpine", "tier=client", "-n", NS), "pod/alpine labeled\n");
    assert.equal(await rt.ok("get", "pods", "-l", "tier=client", "-n", NS, "-o", "name"), "pod/alpine\n");
    assert.equal(await rt.ok("annotate", "ns", NS, "owner=test"), `namespace/${NS} annotated\n`);
    const r = await rt.nsm("annotate", "ns", NS, "owner=other");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /'owner' already has a value \(test\), and --overwrite is false/);
    const d = await rt.ok("describe", "pod", "alpine", "-n", NS);
    assert.match(d, /^Name:\s+alpine$/m);
    assert.match(d, /^Labels:\s+app=alpine$/m);
    assert.match(d, /^\s+tier=client$/m);
    assert.match(d, /^Node:\s+node-1\/198\.18\.0\.1$/m);
  });

  it("a deleted pod of a Deployment is made again; scale to 0 and back; pings after", async () => {
    const old = (await rt.ok("get", "pods", "-l", "app=nse-kernel", "-n", NS, "-o", "name")).trim();
    const out = await rt.ok("delete", old, "-n", NS);
    assert.match(out, new RegExp(`pod "${old.slice(4)}" deleted`));
    const now = (await rt.ok("get", "pods", "-l", "app=nse-kernel", "-n", NS, "-o", "name")).trim();
    assert.match(now, /^pod\/nse-kernel-/);
    assert.notEqual(now, old);
    assert.match(
      await rt.ok("scale", "deployment", "nse-kernel", "--replicas=0", "-n", NS),
      /deployment.apps\/nse-kernel scaled/,
    );
    assert.equal(await rt.ok("get", "pods", "-l", "app=nse-kernel", "-n", NS, "-o", "name"), "");
    await rt.ok("scale", "deployment/nse-kernel", "--replicas", "1", "-n", NS);
    await rt.ok("wait", "--for=condition=ready", "--timeout=1m", "pod", "-l", "app=nse-kernel", "-n", NS);
    // The client heals to the new endpoint (it may be on another node now).
    await eventually(() => ping(rt, "pods/alpine", "172.16.1.100"), 60_000);
  });

  it("bad input is one error line naming the problem, and changes nothing", async () => {
    const before = JSON.stringify(
      stateJson(rt)
        .pods.map((p: any) => p.name)
        .sort(),
    );
    const cases: [string[], RegExp, number][] = [
      [["frobnicate", "pods"], /^nsm: unknown command "frobnicate"/, 2],
      [["get", "pods", "--bogus"], /^nsm get: unknown option --bogus$/, 2],
      [["get", "widgets", "x"], /resource type "widgets"/, 1],
      [["get", "pods", "-l", "app in (a", "-n", NS], /unable to parse requirement "app in \(a"/, 1],
      [["get", "pods", "--field-selector", "spec.color==red", "-n", NS], /field label not supported: spec.color/, 1],
      [["get", "pods", "-n", NS, "-o", "xml"], /output format "xml"/, 1],
      [["delete", "pod", "nope", "-n", NS], /pods "nope" not found in namespace "ns-kernel2kernel"/, 1],
      [["delete", "pods", "-l", "app=(", "-n", NS], /unable to parse requirement/, 1],
      [["delete", "ns", "nsm-system"], /cannot be deleted here/, 1],
      [
        ["wait", "--for=condition=ready", "--timeout=1s", "pod", "-l", "app=none", "-n", NS],
        /no matching resources found/,
        1,
      ],
      [["scale", "deployment", "nse-kernel", "-n", NS], /--replicas=COUNT is required/, 2],
    ];
    for (const [args, re, code] of cases) {
      const r = await rt.nsm(...args);
      assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split("\n").length, 1, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr.trim(), re, args.join(" "));
    }
    // apply is all or nothing: a good Namespace and Pod next to a bad Deployment change nothing.
    const dir = join(rt.dir, "..", "half");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "a-ns.yaml"), "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns-half\n");
    writeFileSync(
      join(dir, "b-pod.yaml"),
      "apiVersion: v1\nkind: Pod\nmetadata:\n  name: ok\n  namespace: ns-half\nspec:\n  containers:\n    - name: c\n      image: alpine\n      command: [sleep, '100']\n",
    );
    writeFileSync(
      join(dir, "c-bad.yaml"),
      "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: bad\n  namespace: ns-half\nspec:\n  replicas: many\n",
    );
    const r = await rt.nsm("apply", "-f", dir);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Deployment\/bad: spec\.replicas: expected an integer, got a string/);
    assert.equal(await rt.ok("get", "ns", "ns-half", "-o", "name").catch(() => "absent"), "absent");
    assert.equal(
      JSON.stringify(
        stateJson(rt)
          .pods.map((p: any) => p.name)
          .sort(),
      ),
      before,
    );
  });

  it("create ns makes an empty namespace once; delete ns removes it", async () => {
    assert.equal(await rt.ok("create", "ns", "ns-extra"), "namespace/ns-extra created\n");
    const again = await rt.nsm("create", "namespace", "ns-extra");
    assert.equal(again.code, 1);
    assert.match(again.stderr.trim(), /^nsm create: error: namespaces "ns-extra" already exists$/);
    assert.match(await rt.ok("get", "ns", "-o", "name"), /^namespace\/ns-extra$/m);
    assert.match(await rt.ok("delete", "ns", "ns-extra"), /namespace "ns-extra" deleted/);
    assert.doesNotMatch(await rt.ok("get", "ns", "-o", "name"), /ns-extra/);
  });

  it("delete ns removes the example; wait --for=delete returns at once for what is gone", async () => {
    const out = await rt.ok("delete", "ns", NS);
    assert.match(out, /namespace "ns-kernel2kernel" deleted/);
    assert.equal(await rt.ok("get", "pods", "-A", "-l", "app=alpine", "-o", "name"), "");
    assert.equal(stateJson(rt).namespaces.length, 0);
    assert.equal(await rt.ok("wait", "--for=delete", "--timeout=5s", "pod", "-l", "app=alpine", "-n", NS), "");
  });
});

async function eventually(fn: () => Promise<void>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
