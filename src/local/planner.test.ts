// SPDX-License-Identifier: Apache-2.0
/**
 * The planner without root: manifests + a state in memory → actions. Placement, the injected
 * client, re-apply, scaling, template changes, deletes, and the errors that stop an apply before
 * anything changes.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { localConfig } from "./config.js";
import { LocalError } from "./errors.js";
import type { Host } from "./host.js";
import { checkObject, loadManifests, type Manifest } from "./manifest.js";
import { type ApplyAction, type PlanInput, planApply, planDelete } from "./planner.js";
import { INIT_CLIENT_NAME, NSM_BIN, SIDECAR_CLIENT_NAME } from "./pods.js";
import { emptyState, type PodState, runtimePaths, type State } from "./state.js";

const EXAMPLE = join(import.meta.dirname, "..", "..", "examples", "kernel2kernel");
const NS = "ns-kernel2kernel";
const paths = runtimePaths("/run/nsm-test-planner");
const SECURITY = { SPIFFE_ENDPOINT_SOCKET: `unix://${paths.agentSocket}` };

/** Deterministic: commands from a fixed list, counting "random" bytes, a fixed clock. */
function fakeHost(commands = ["sleep"]): Host {
  let n = 0;
  return {
    commandExists: (cmd) => commands.includes(cmd),
    randomBytes: (size) => Uint8Array.from({ length: size }, () => n++ % 256),
    now: () => Date.parse("2026-01-02T03:04:05Z"),
  };
}

function stateWithNodes(count: number): State {
  const s = emptyState(paths);
  s.phase = "up";
  for (let i = 1; i <= count; i++) {
    const dir = join(paths.nodesDir, `node-${i}`);
    s.nodes.push({
      name: `node-${i}`,
      netns: `${paths.prefix}-node-${i}`,
      dir,
      nsmgrSocket: join(dir, "nsm.io.sock"),
      forwarderSocket: join(dir, "forwarder.sock"),
      address: `198.18.0.${i}`,
      createdAt: "",
    });
  }
  return s;
}

function input(state: State, host = fakeHost()): PlanInput {
  return { paths, state, config: localConfig({ inherited: { NSM_LOG_LEVEL: "DEBUG" } }), security: SECURITY, host };
}

function manifest(obj: Record<string, unknown>): Manifest {
  return checkObject({ obj, source: "test.yaml" });
}

function deployment(name: string, replicas: number, container: Record<string, unknown>, extra = {}): Manifest {
  return manifest({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [container], ...extra } },
    },
  });
}

const idle = { name: "idle", image: "busybox", command: ["sleep", "3600"] };

/** What `apply` would record, so that a second plan sees the first one done. */
function perform(state: State, actions: readonly ApplyAction[]): void {
  for (const a of actions) {
    if (a.type === "namespace")
      state.namespaces.push({ name: a.name, annotations: { ...a.annotations }, createdAt: "" });
    if (a.type === "networkservice")
      state.networkServices.push({ namespace: a.namespace, name: a.name, record: a.json, createdAt: "" });
    if (a.type === "deployment") {
      state.deployments = state.deployments.filter((d) => d.name !== a.deployment.name);
      state.deployments.push({ ...a.deployment });
    }
    if (a.type === "delete-pods") state.pods = state.pods.filter((p) => !a.pods.includes(p));
    if (a.type === "start-pods") state.pods.push(...a.pods.map((p) => ({ ...p, phase: "Running" as const })));
  }
}

const started = (actions: readonly ApplyAction[]) =>
  actions.flatMap((a) => (a.type === "start-pods" ? [a.pods.map((p) => p.name)] : []));

describe("planner: apply", () => {
  it("plans the example in order: namespace, service, workloads, endpoints then clients", () => {
    const state = stateWithNodes(2);
    const actions = planApply(input(state), loadManifests([EXAMPLE]));
    assert.deepEqual(
      actions.map((a) => `${a.type}${"result" in a ? `:${a.result}` : ""}`),
      [
        "namespace:created",
        "networkservice:registered",
        "deployment:created",
        "pod:created",
        "start-pods",
        "start-pods",
      ],
    );
    const [endpoints, clients] = started(actions);
    assert.equal(endpoints!.length, 1);
    assert.match(endpoints![0]!, /^nse-kernel-[0-9a-f]{10}-[a-z0-9]{5}$/);
    assert.deepEqual(clients, ["alpine"]);
    assert.equal(state.pods.length, 0, "the state is not changed");
    assert.equal(state.namespaces.length, 0, "the state is not changed");
  });

  it("places the client by podAffinity on its endpoint's node, and the endpoint on the least loaded node", () => {
    const state = stateWithNodes(2);
    state.pods.push({ ...podOn("node-1", "other"), labels: { app: "other" } });
    const actions = planApply(input(state), loadManifests([EXAMPLE]));
    const pods = actions.flatMap((a) => (a.type === "start-pods" ? a.pods : []));
    const nse = pods.find((p) => p.name.startsWith("nse-kernel-"))!;
    const client = pods.find((p) => p.name === "alpine")!;
    assert.equal(nse.node, "node-2");
    assert.equal(client.node, "node-2");
  });

  it("places a client listed before its endpoint once the endpoint is placed", () => {
    const state = stateWithNodes(3);
    const manifests = loadManifests([EXAMPLE]);
    const reordered = [
      ...manifests.filter((m) => m.name === "alpine"),
      ...manifests.filter((m) => m.name !== "alpine"),
    ];
    const pods = planApply(input(state), reordered).flatMap((a) => (a.type === "start-pods" ? a.pods : []));
    assert.equal(pods.length, 2);
    assert.equal(pods[0]!.node, pods[1]!.node);
  });

  it("injects cmd-nsc-init and the cmd-nsc sidecar into the annotated pod, on its node's nsmgr", () => {
    const state = stateWithNodes(1);
    const actions = planApply(input(state), loadManifests([EXAMPLE]));
    const client = actions.flatMap((a) => (a.type === "start-pods" ? a.pods : [])).find((p) => p.name === "alpine")!;
    assert.equal(client.nsurls, "kernel://kernel2kernel/nsm-1");
    assert.deepEqual(
      client.containers.map((c) => [c.name, c.type, c.injected]),
      [
        [INIT_CLIENT_NAME, "init", true],
        ["alpine", "app", false],
        [SIDECAR_CLIENT_NAME, "app", true],
      ],
    );
    const sidecar = client.containers[2]!;
    assert.deepEqual(sidecar.argv.slice(-2), [NSM_BIN, "nsc"]);
    assert.equal(sidecar.env.NSM_NETWORK_SERVICES, "kernel://kernel2kernel/nsm-1");
    assert.equal(sidecar.env.NSM_CONNECT_TO, `unix://${state.nodes[0]!.nsmgrSocket}`);
    assert.equal(sidecar.env.SPIFFE_ENDPOINT_SOCKET, SECURITY.SPIFFE_ENDPOINT_SOCKET);
    assert.equal(sidecar.env.NSM_LOG_LEVEL, "DEBUG", "inherited settings reach NSM processes");
    assert.equal(client.containers[1]!.env.NSM_LOG_LEVEL, undefined, "but not other containers");
  });

  it("a second apply of the same manifests changes nothing", () => {
    const state = stateWithNodes(2);
    perform(state, planApply(input(state), loadManifests([EXAMPLE])));
    const again = planApply(input(state), loadManifests([EXAMPLE]));
    assert.deepEqual(
      again.map((a) => `${a.type}${"result" in a ? `:${a.result}` : ""}`),
      ["namespace:unchanged", "networkservice:unchanged", "deployment:unchanged", "pod:unchanged"],
    );
  });

  it("scaling down deletes the newest pods; a new template replaces every pod", () => {
    const state = stateWithNodes(2);
    perform(state, planApply(input(state), [deployment("web", 3, idle)]));
    const pods = state.pods.map((p, i) => ({ ...p, createdAt: `2026-01-0${i + 1}T00:00:00Z` }));
    state.pods = pods;
    const down = planApply(input(state), [deployment("web", 1, idle)]);
    const deleted = down.find((a) => a.type === "delete-pods");
    assert.deepEqual(deleted?.type === "delete-pods" && deleted.pods.map((p) => p.name), [
      pods[2]!.name,
      pods[1]!.name,
    ]);
    assert.deepEqual(started(down), []);
    const changed = planApply(input(state), [deployment("web", 3, { ...idle, command: ["sleep", "60"] })]);
    const replaced = changed.find((a) => a.type === "delete-pods");
    assert.equal(replaced?.type === "delete-pods" && replaced.pods.length, 3);
    assert.equal(started(changed)[0]!.length, 3);
    assert.ok(changed.some((a) => a.type === "deployment" && a.result === "configured"));
  });

  it("spreads by podAntiAffinity and refuses what cannot be placed", () => {
    const anti = {
      affinity: {
        podAntiAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: [
            { topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: { app: "spread" } } },
          ],
        },
      },
    };
    const state = stateWithNodes(2);
    const two = planApply(input(state), [deployment("spread", 2, idle, anti)]);
    const nodes = two.flatMap((a) => (a.type === "start-pods" ? a.pods.map((p) => p.node) : []));
    assert.deepEqual(nodes.sort(), ["node-1", "node-2"]);
    assert.throws(
      () => planApply(input(state), [deployment("spread", 3, idle, anti)]),
      /podAntiAffinity excludes every node/,
    );
  });

  it("refuses bad manifests with a LocalError that names the object, and changes nothing", () => {
    const state = stateWithNodes(1);
    const before = JSON.stringify(state);
    const nsm = { name: "nse", image: "ghcr.io/networkservicemesh/cmd-nsc-vpp:v1" };
    const cases: [Manifest[], RegExp][] = [
      [[deployment("x", 1, idle)].map((m) => ({ ...m, namespace: "nowhere" })), /namespace "nowhere" not found/],
      [
        [deployment("x", 1, { name: "c", image: "busybox", command: ["no-such-cmd"] })],
        /command "no-such-cmd" is not found/,
      ],
      [[deployment("x", 1, { name: "c", image: "busybox", args: ["-x"] })], /has `args` but no `command`/],
      [[deployment("x", 1, nsm)], /container "nse": image .* NSM component this runtime cannot run/],
      [[deployment("x", 1, idle, { nodeName: "node-9" })], /cannot be scheduled: nodeName "node-9" is not a node/],
    ];
    for (const [manifests, error] of cases) {
      assert.throws(
        () => planApply(input(state), manifests),
        (err: unknown) => {
          assert.ok(err instanceof LocalError, String(err));
          assert.match(err.message, error);
          return true;
        },
      );
    }
    assert.equal(JSON.stringify(state), before);
  });

  it("gives a new pod a netns name of its own when its usual one is taken", () => {
    const state = stateWithNodes(1);
    const usual = `${paths.prefix}-default-p`;
    state.pods.push({ ...podOn("node-1", "other"), netns: usual });
    const p = manifest({ apiVersion: "v1", kind: "Pod", metadata: { name: "p" }, spec: { containers: [idle] } });
    const [pod] = planApply(input(state), [p]).flatMap((a) => (a.type === "start-pods" ? a.pods : []));
    assert.notEqual(pod!.netns, usual);
    assert.ok(pod!.netns.startsWith(`${usual}-`), pod!.netns);
  });

  it("refuses to change a Pod that exists", () => {
    const state = stateWithNodes(1);
    const pod = (cmd: string) =>
      manifest({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "p" },
        spec: { containers: [{ ...idle, command: [cmd] }] },
      });
    perform(state, planApply(input(state), [pod("sleep")]));
    assert.throws(
      () => planApply(input(state, fakeHost(["sleep", "true"])), [pod("true")]),
      /pod\/p exists with a different spec; pods cannot be changed/,
    );
  });
});

function podOn(node: string, name: string): PodState {
  return {
    namespace: "default",
    name,
    uid: "u",
    node,
    netns: `${paths.prefix}-${name}`,
    labels: {},
    annotations: {},
    specHash: "h",
    phase: "Running",
    createdAt: "",
    containers: [],
  };
}

describe("planner: delete", () => {
  it("deleting the example removes its pods, deployment, service and namespace", () => {
    const state = stateWithNodes(2);
    perform(state, planApply(input(state), loadManifests([EXAMPLE])));
    state.pods.push(podOn("node-1", "elsewhere"));
    const plan = planDelete(state, loadManifests([EXAMPLE]));
    assert.deepEqual(plan.pods.map((p) => p.namespace).sort(), [NS, NS]);
    assert.deepEqual([...plan.deployments], [`${NS}/nse-kernel`]);
    assert.deepEqual([...plan.services], ["kernel2kernel"]);
    assert.deepEqual(plan.namespaces, [NS]);
    assert.deepEqual(plan.missing, []);
    assert.ok(plan.deleted.includes(`namespace "${NS}" deleted`));
  });

  it("deleting one pod keeps the rest; what does not exist is reported as missing", () => {
    const state = stateWithNodes(1);
    perform(state, planApply(input(state), loadManifests([EXAMPLE])));
    const [alpine] = loadManifests([join(EXAMPLE, "client.yaml")], () => {}, NS);
    const plan = planDelete(state, [alpine!, deployment("ghost", 1, idle)]);
    assert.deepEqual(
      plan.pods.map((p) => p.name),
      ["alpine"],
    );
    assert.deepEqual([...plan.deployments], []);
    assert.deepEqual(plan.deleted, ['pod "alpine" deleted']);
    assert.deepEqual(plan.missing, ["deployment.apps/ghost"]);
  });
});
