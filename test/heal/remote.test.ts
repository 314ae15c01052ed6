// SPDX-License-Identifier: Apache-2.0
/**
 * Heal across two nodes (upstream heal: local/remote nsmgr restart, local/remote forwarder
 * death, remote NSE death, client death), through the local runtime with real processes: a
 * VXLAN client (ETHERNET service, two endpoints on node-2) and a WireGuard client (IP service)
 * on node-1. Faults are SIGKILL and restart; each step pings before and after, and logs its time
 * to recovery. A killed client's interfaces, VXLAN devices and wireguard-go processes are gone
 * once its tokens expire (NSM_MAX_TOKEN_LIFETIME is short).
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { linksOf, skipReason, type TestRuntime, testRuntime, wireguardGoIn } from "../local/helpers.js";
import {
  clientInterface,
  clientYaml,
  currentEndpoint,
  endpointAddressOf,
  figure,
  healsOnSamePath,
  namespaceYaml,
  networkServiceYaml,
  nseYaml,
  podNetns,
  waitFor,
  waitHealed,
  waitPing,
  waitPingThrough,
  writeManifest,
} from "./helpers.js";

const NS = "heal-remote";
const TOKEN_LIFETIME_MS = 20_000;
const PREFIX: Record<string, string> = { "nse-r1": "172.16.20.", "nse-r2": "172.16.21.", "nse-w": "172.16.22." };

const skip = skipReason() ?? (existsSync("/usr/bin/wireguard-go") ? undefined : "needs /usr/bin/wireguard-go");

describe("heal across two nodes (local runtime, VXLAN and WireGuard)", { skip, timeout: 400_000 }, () => {
  let rt: TestRuntime;
  let dir: string;
  let nodes: { name: string; netns: string }[];

  before(async () => {
    rt = testRuntime("heal-remote", {
      NSM_MAX_TOKEN_LIFETIME: `${TOKEN_LIFETIME_MS / 1000}s`,
      NSM_REQUEST_TIMEOUT: "5s",
      // Namespaces as descriptors: a remote endpoint's death must heal with them too.
      NSM_PASS_FDS: "true",
    });
    dir = join(rt.dir, "..", "manifests");
    await rt.ok("up", "--nodes", "2");
    nodes = JSON.parse(readFileSync(join(rt.dir, "state.json"), "utf8")).nodes;
    const nse = (name: string, service: string, cidr: string) =>
      writeManifest(dir, name, nseYaml({ name, service, cidr, node: "node-2" }));
    await rt.ok(
      "apply",
      "-n",
      NS,
      "-f",
      writeManifest(
        dir,
        "base",
        namespaceYaml(NS),
        networkServiceYaml("heal-eth", "ETHERNET"),
        networkServiceYaml("heal-ip", "IP"),
      ),
    );
    await rt.ok(
      "apply",
      "-n",
      NS,
      "-f",
      nse("nse-r1", "heal-eth", "172.16.20.96/28"),
      "-f",
      nse("nse-r2", "heal-eth", "172.16.21.96/28"),
      "-f",
      nse("nse-w", "heal-ip", "172.16.22.96/28"),
    );
    await rt.ok(
      "apply",
      "-n",
      NS,
      "-f",
      writeManifest(dir, "cv", clientYaml({ name: "cv", nsurl: "kernel://heal-eth/nsm-1", node: "node-1" })),
      "-f",
      writeManifest(dir, "cw", clientYaml({ name: "cw", nsurl: "kernel://heal-ip/nsm-1", node: "node-1" })),
    );
    for (const c of ["cv", "cw"]) await waitPing(podNetns(rt, NS, c), endpointAddressOf(podNetns(rt, NS, c)), 5000);
  });

  after(async () => {
    await rt.cleanup();
    assert.deepEqual(rt.netns(), [], "namespaces left");
    assert.deepEqual(rt.processes(), [], "processes left");
  });

  /** The fault, with both clients checked: VXLAN under the pinger, WireGuard pinging after its heal. */
  async function bothHeal(fault: string[], what: string): Promise<void> {
    const t0 = Date.now();
    await healsOnSamePath(rt, NS, "cv", fault, `${what}_vxlan`);
    await waitHealed(rt, NS, "cw", t0);
    const cw = podNetns(rt, NS, "cw");
    await waitPing(cw, endpointAddressOf(cw), 5000);
  }

  it("local nsmgr (client's node) killed and restarted", async () => {
    await bothHeal(["restart", "nsmgr/node-1", "--kill"], "local_nsmgr_restart");
  });

  it("remote nsmgr (endpoint's node) killed and restarted", async () => {
    await bothHeal(["restart", "nsmgr/node-2", "--kill"], "remote_nsmgr_restart");
  });

  it("local forwarder killed (-9) and restarted: tunnels re-adopted", async () => {
    await bothHeal(["restart", "forwarder/node-1", "--kill"], "local_forwarder_restart");
  });

  it("remote forwarder killed (-9) and restarted: tunnels re-adopted", async () => {
    await bothHeal(["restart", "forwarder/node-2", "--kill"], "remote_forwarder_restart");
  });

  it("remote endpoint deleted while another serves the service: the client reselects", async () => {
    const cv = podNetns(rt, NS, "cv");
    const current = currentEndpoint(rt, NS, "cv");
    const other = current === "nse-r1" ? "nse-r2" : "nse-r1";
    const t0 = Date.now();
    await rt.ok("delete", "-n", NS, "-f", join(dir, `${current}.yaml`));
    await waitPingThrough(cv, "nsm-1", PREFIX[other]!, 15_000);
    figure("remote_nse_death", Date.now() - t0);
    assert.equal((await waitHealed(rt, NS, "cv", t0)).endpoint, other);
  });

  it("clients killed: interfaces, VXLAN devices and wireguard-go processes go once their tokens expire", async () => {
    const endpoints = ["nse-w", currentEndpoint(rt, NS, "cv")].map((n) => podNetns(rt, NS, n));
    const tagged = () => endpoints.flatMap((n) => linksOf(n).filter((l) => l.ifalias?.startsWith("nsm:")));
    const wg = () => nodes.flatMap((n) => wireguardGoIn(n.netns).map((w) => w.pid));
    assert.equal(tagged().length, 2, JSON.stringify(tagged()));
    assert.equal(wg().length, 2, "one wireguard-go per node for the WireGuard connection");
    const t0 = Date.now();
    for (const c of ["cv", "cw"]) await rt.ok("stop", `pod/${c}`, "-c", "cmd-nsc", "-n", NS, "--kill");
    await waitFor(
      () =>
        tagged().length === 0 &&
        wg().length === 0 &&
        clientInterface(podNetns(rt, NS, "cv")) === undefined &&
        clientInterface(podNetns(rt, NS, "cw")) === undefined,
      TOKEN_LIFETIME_MS + 15_000,
      "the killed clients' data plane is removed",
    );
    figure("remote_client_death_cleanup", Date.now() - t0);
  });
});
