// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { DEFAULT_HOST_PATH } from "./config.js";
import { systemHost } from "./host.js";
import { age, renderLogLine, table } from "./inspect.js";
import { loadManifests, type WorkloadManifest } from "./manifest.js";
import { podResolvConf } from "./pod-files.js";
import { buildPod, deploymentPodName, expandVars, NSM_BIN, NSM_NODE_FLAGS, podNsurls, roleOf } from "./pods.js";
import { type NodeState, RUNTIME_MARKER_ENV, runtimePaths } from "./state.js";

const EXAMPLE = join(import.meta.dirname, "..", "..", "examples", "kernel2kernel");
const paths = runtimePaths("/run/nsm-test-pods");
const common = { paths, hostPath: DEFAULT_HOST_PATH, host: systemHost };
const node: NodeState = {
  name: "node-1",
  netns: `${paths.prefix}-node-1`,
  dir: join(paths.nodesDir, "node-1"),
  nsmgrSocket: join(paths.nodesDir, "node-1", "nsm.io.sock"),
  forwarderSocket: join(paths.nodesDir, "node-1", "forwarder.sock"),
  createdAt: "",
};

describe("pods", () => {
  const [, , nse, alpine] = loadManifests([EXAMPLE]) as WorkloadManifest[];

  it("maps the endpoint image to `nsm nse icmp-responder` with the env of the manifest, on the node's socket", () => {
    const pod = buildPod({ ...common, manifest: nse!, name: "nse-kernel-0123456789-abcde", node });
    assert.equal(pod.netns, `${paths.prefix}-ns-kernel2kernel-nse-kernel-0123456789-abcde`);
    const [c] = pod.containers;
    assert.deepEqual(c!.argv, [process.execPath, ...NSM_NODE_FLAGS, NSM_BIN, "nse", "icmp-responder"]);
    assert.equal(c!.env.NSM_NAME, "nse-kernel-0123456789-abcde");
    assert.equal(c!.env.NSM_CONNECT_TO, `unix://${node.nsmgrSocket}`);
    assert.equal(c!.env.NSM_CIDR_PREFIX, "172.16.1.100/31");
    assert.equal(c!.env.NODE_NAME, "node-1");
    assert.equal(c!.env[RUNTIME_MARKER_ENV], paths.prefix);
    assert.equal(c!.env.SPIFFE_ENDPOINT_SOCKET, undefined);
    assert.equal(pod.nsurls, undefined);
  });

  it("an NSM role's env naming a file of a ConfigMap volume names the volume's file on the host", () => {
    const firewall: WorkloadManifest = {
      ...nse!,
      spec: {
        ...nse!.spec,
        volumes: [...nse!.spec.volumes, { name: "acl", source: { type: "configMap", name: "acl", optional: false } }],
        containers: [
          {
            ...nse!.spec.containers[0]!,
            env: [...nse!.spec.containers[0]!.env, { name: "NSM_ACL_CONFIG_PATH", value: "/etc/firewall/config.yaml" }],
            volumeMounts: [{ name: "acl", mountPath: "/etc/firewall", readOnly: true }],
          },
        ],
      },
    };
    const config = (from: string, _ns: string, name: string) =>
      from === "configMap" && name === "acl" ? { "config.yaml": Buffer.from("allow: {}") } : undefined;
    const pod = buildPod({ ...common, manifest: firewall, name: "fw", node, config });
    const [c] = pod.containers;
    assert.equal(
      c!.env.NSM_ACL_CONFIG_PATH,
      join(paths.dir, "pods", "ns-kernel2kernel_fw", "volumes", "acl", "config.yaml"),
    );
    assert.equal(c!.volumeEnv, true);
    assert.equal(c!.mounts, undefined, "an NSM role gets no mount namespace");
    const acl = pod.volumes!.find((v) => v.name === "acl")!;
    assert.equal(Buffer.from(acl.files![0]!.data, "base64").toString(), "allow: {}");
  });

  it("injects nsc-init and the nsc sidecar into an annotated pod; alpine without a command sleeps", () => {
    const pod = buildPod({
      ...common,
      manifest: alpine!,
      name: "alpine",
      node,
      nsurls: "kernel://kernel2kernel/nsm-1",
    });
    assert.deepEqual(
      pod.containers.map((c) => [c.name, c.type, c.injected]),
      [
        ["cmd-nsc-init", "init", true],
        ["alpine", "app", false],
        ["cmd-nsc", "app", true],
      ],
    );
    // Its own mount namespace, with the pod's resolv.conf (the sidecar's DNS proxy) at /etc/resolv.conf.
    const app = pod.containers[1]!;
    assert.deepEqual(app.argv.slice(0, 2), ["unshare", "--mount"]);
    assert.deepEqual(app.argv.slice(-2), ["sleep", "infinity"]);
    assert.deepEqual(app.mounts, [
      {
        volume: "",
        hostFile: podResolvConf(paths, "ns-kernel2kernel", "alpine"),
        mountPath: "/etc/resolv.conf",
        readOnly: false,
      },
    ]);
    assert.equal(app.env.NSM_RESOLV_CONF, undefined);
    assert.equal(pod.containers[2]!.env.NSM_RESOLV_CONF, podResolvConf(paths, "ns-kernel2kernel", "alpine"));
    const init = pod.containers[0]!;
    assert.deepEqual(init.argv.slice(-3), [NSM_BIN, "nsc", "--init"]);
    assert.equal(init.env.NSM_NAME, "alpine");
    assert.equal(init.env.NSM_NETWORK_SERVICES, "kernel://kernel2kernel/nsm-1");
    assert.equal(init.env.NSM_CONNECT_TO, `unix://${node.nsmgrSocket}`);
    assert.deepEqual(pod.containers[2]!.argv.slice(-2), [NSM_BIN, "nsc"]);
  });

  it("gives every container the runtime's Workload API (or the insecure flag), replacing SPIRE's", () => {
    const security = { SPIFFE_ENDPOINT_SOCKET: "unix:///run/nsm-test-pods/agent.sock" };
    const nsePod = buildPod({ ...common, manifest: nse!, name: "nse-kernel-0123456789-abcde", node, security });
    assert.equal(nsePod.containers[0]!.env.SPIFFE_ENDPOINT_SOCKET, security.SPIFFE_ENDPOINT_SOCKET);
    const client = buildPod({
      ...common,
      manifest: alpine!,
      name: "alpine",
      node,
      nsurls: "kernel://k/nsm-1",
      security,
    });
    for (const c of client.containers)
      assert.equal(c.env.SPIFFE_ENDPOINT_SOCKET, security.SPIFFE_ENDPOINT_SOCKET, c.name);
    const insecure = buildPod({
      ...common,
      manifest: alpine!,
      name: "alpine",
      node,
      nsurls: "kernel://k/nsm-1",
      security: { NSM_INSECURE: "true" },
    });
    for (const c of insecure.containers) {
      assert.equal(c.env.NSM_INSECURE, "true", c.name);
      assert.equal(c.env.SPIFFE_ENDPOINT_SOCKET, undefined, c.name);
    }
  });

  it("namespace annotation applies to pods without their own", () => {
    assert.equal(podNsurls({}, { "networkservicemesh.io": "kernel://a/nsm-1" }), "kernel://a/nsm-1");
    assert.equal(
      podNsurls({ "networkservicemesh.io": "kernel://b/nsm-1" }, { "networkservicemesh.io": "x" }),
      "kernel://b/nsm-1",
    );
    assert.equal(podNsurls({}, undefined), undefined);
  });

  it("image roles; other NSM images are refused", () => {
    assert.deepEqual(roleOf("ghcr.io/networkservicemesh/cmd-nsc-init:v1"), ["nsc", "--init"]);
    assert.equal(roleOf("alpine:3.15.0"), undefined);
    assert.deepEqual(roleOf("ghcr.io/networkservicemesh/ci/cmd-nse-vl3-vpp:1d2062a"), ["nse", "vl3"]);
    assert.deepEqual(roleOf("ghcr.io/networkservicemesh/ci/cmd-ipam-vl3:d22ffe6"), ["ipam"]);
    assert.throws(() => roleOf("ghcr.io/networkservicemesh/cmd-nsc-vpp:v1"), /NSM component this runtime cannot run/);
  });

  it("$(VAR) expansion and pod names", () => {
    assert.equal(expandVars("$(A)-$(B)-$$(A)", { A: "1" }), "1-$(B)-$(A)");
    assert.match(
      deploymentPodName("nse-kernel", "0123456789", () => false, systemHost.randomBytes),
      /^nse-kernel-0123456789-[a-z0-9]{5}$/,
    );
  });

  it("tables, ages and log lines", () => {
    assert.equal(table(["A", "BB"], [["xxx", "y"]]), "A     BB\nxxx   y\n");
    assert.equal(age(Date.now() - 65_000), "65s");
    assert.equal(age(Date.now() - 200_000), "3m20s");
    assert.equal(
      renderLogLine(
        '{"level":"error","time":"2026-01-02T03:04:05.678Z","name":"x","msg":"request failed","err":"no route"}',
      ),
      '03:04:05.678 ERROR request failed err="no route"',
    );
    assert.equal(renderLogLine("plain text"), "plain text");
  });
});
