// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { resolveComponents } from "./components.js";
import { LocalError } from "./errors.js";
import { emptyState, runtimePaths, type State } from "./state.js";

const paths = runtimePaths("/tmp/nsm-components-test");
const proc = (pid: number) => ({ pid, start: 1, log: `/tmp/${pid}.log`, argv: ["x"] });

function state(): State {
  const s = emptyState(paths);
  s.registry = proc(10);
  s.nodes.push({
    name: "node-1",
    netns: "n1",
    dir: "/d",
    nsmgrSocket: "/d/nsm.io.sock",
    forwarderSocket: "/d/f.sock",
    nsmgr: proc(11),
    forwarder: proc(12),
    createdAt: "",
  });
  s.pods.push({
    namespace: "ns",
    name: "nse-a",
    uid: "u",
    node: "node-1",
    netns: "p",
    labels: {},
    annotations: {},
    specHash: "h",
    phase: "Running",
    createdAt: "",
    containers: [
      { name: "init", type: "init", injected: false, image: "i", argv: [], env: {}, log: "l" },
      { name: "nse", type: "app", injected: false, image: "i", argv: [], env: {}, log: "l", proc: proc(20) },
      { name: "side", type: "app", injected: false, image: "i", argv: [], env: {}, log: "l", proc: proc(21) },
    ],
  });
  return s;
}

const resolve = (s: State, target: string, o: { namespace?: string; container?: string } = {}) =>
  resolveComponents(s, target, { paths, roleOfContainer: (c) => (c.name === "nse" ? "nse" : undefined), ...o });

describe("nsm stop|start|restart targets", () => {
  it("names the registry, a node's nsmgr or forwarder (node-1 or 1), and a pod's app containers", () => {
    const s = state();
    const [reg] = resolve(s, "registry");
    assert.equal(reg!.proc?.pid, 10);
    assert.deepEqual(reg!.readiness, { kind: "socket", path: paths.registrySocket });
    assert.equal(resolve(s, "nsmgr/node-1")[0]!.proc?.pid, 11);
    const [fwd] = resolve(s, "forwarder/1");
    assert.equal(fwd!.proc?.pid, 12);
    assert.equal(fwd!.readiness.kind, "log");
    const pod = resolve(s, "pod/nse-a", { namespace: "ns" });
    assert.deepEqual(
      pod.map((c) => [c.label, c.readiness.kind]),
      [
        ["container nse of pod ns/nse-a", "log"],
        ["container side of pod ns/nse-a", "running"],
      ],
    );
    assert.equal(resolve(s, "pod/nse-a", { namespace: "ns", container: "side" }).length, 1);
  });

  it("records a restarted process in the state", () => {
    const s = state();
    resolve(s, "forwarder/node-1")[0]!.setProc(proc(99));
    assert.equal(s.nodes[0]!.forwarder?.pid, 99);
  });

  it("refuses unknown targets with a message that says what exists", () => {
    const s = state();
    assert.throws(
      () => resolve(s, "nsmgr/node-7"),
      (e: Error) => e instanceof LocalError && /nodes: node-1/.test(e.message),
    );
    assert.throws(() => resolve(s, "nsmgr"), /say which node/);
    assert.throws(() => resolve(s, "pod/nse-a"), /no pod "nse-a" in namespace "default"/);
    assert.throws(() => resolve(s, "pod/nse-a", { namespace: "ns", container: "init" }), /no app container "init"/);
    assert.throws(() => resolve(s, "bogus"), /unknown target "bogus"/);
  });
});
