// SPDX-License-Identifier: Apache-2.0
/**
 * Heal on one node (the upstream heal scenarios with kernel connections, reference §5 and
 * upstream-examples §3), through the local runtime and real processes: nsmgr and forwarder
 * killed with SIGKILL and restarted, registry restart, a NetworkService whose `matches` change,
 * an endpoint restarted with its name, an endpoint deleted while another serves the service, and
 * a client killed (its interfaces go when its tokens expire; NSM_MAX_TOKEN_LIFETIME is short).
 * Each step pings before and after, and logs its time to recovery.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { linksOf, rows, skipReason, type TestRuntime, testRuntime } from "../local/helpers.js";
import {
  clientInterface,
  clientYaml,
  endpointAddressOf,
  figure,
  healsOnSamePath,
  namespaceYaml,
  networkServiceYaml,
  nseYaml,
  Pinger,
  podNetns,
  sidecarEvents,
  waitFor,
  waitHealed,
  waitPing,
  waitPingThrough,
  writeManifest,
} from "./helpers.js";

const NS = "heal-local";
const TOKEN_LIFETIME_MS = 20_000;
const NSE = {
  a: { name: "nse-a", cidr: "172.16.10.96/28" },
  b: { name: "nse-b", cidr: "172.16.11.96/28" },
} as const;
/** Every address an endpoint hands out starts with its prefix. */
const PREFIX: Record<string, string> = { "nse-a": "172.16.10.", "nse-b": "172.16.11." };

describe("heal on one node (local runtime)", { skip: skipReason(), timeout: 300_000 }, () => {
  let rt: TestRuntime;
  let dir: string;
  let c1: string;
  /** The endpoint c1 is connected to, and the other one. */
  let current: string;

  const nseFile = (n: { name: string; cidr: string }) =>
    writeManifest(
      dir,
      n.name,
      nseYaml({ name: n.name, service: "heal,heal-select", cidr: n.cidr, node: "node-1", labels: `app:${n.name}` }),
    );

  before(async () => {
    rt = testRuntime("heal-local", {
      NSM_MAX_TOKEN_LIFETIME: `${TOKEN_LIFETIME_MS / 1000}s`,
      NSM_REQUEST_TIMEOUT: "5s",
    });
    dir = join(rt.dir, "..", "manifests");
    await rt.ok("up");
    const base = writeManifest(
      dir,
      "base",
      namespaceYaml(NS),
      networkServiceYaml("heal", "ETHERNET"),
      networkServiceYaml("heal-select", "ETHERNET", [{ destinationSelector: { app: NSE.a.name } }]),
    );
    await rt.ok("apply", "-f", base, "-n", NS);
    await rt.ok("apply", "-f", nseFile(NSE.a), "-f", nseFile(NSE.b), "-n", NS);
    await rt.ok(
      "apply",
      "-f",
      writeManifest(dir, "c1", clientYaml({ name: "c1", nsurl: "kernel://heal/nsm-1", node: "node-1" })),
      "-n",
      NS,
    );
    c1 = podNetns(rt, NS, "c1");
    current = sidecarEvents(rt, NS, "c1").find((e) => e.msg === "connection established")!.endpoint!;
    assert.ok(current in PREFIX, `c1 is connected to ${current}`);
    await waitPing(c1, endpointAddressOf(c1), 5000);
  });

  after(async () => {
    await rt.cleanup();
    assert.deepEqual(rt.netns(), [], "namespaces left");
    assert.deepEqual(rt.processes(), [], "processes left");
  });

  const samePath = (fault: string[], what: string) => healsOnSamePath(rt, NS, "c1", fault, what);

  it("nsmgr killed and restarted: no ping lost, the client re-requests on the same path", async () => {
    await samePath(["restart", "nsmgr/node-1", "--kill"], "nsmgr_restart");
  });

  it("forwarder killed (-9) and restarted: it re-adopts the veth pair, no ping lost", async () => {
    await samePath(["restart", "forwarder/node-1", "--kill"], "forwarder_restart");
  });

  it("registry restarted: existing connections untouched, a new client connects", async () => {
    const pinger = new Pinger(c1, endpointAddressOf(c1));
    await waitFor(() => pinger.answered > 3, 3000);
    await rt.ok("restart", "registry", "--kill");
    const file = writeManifest(dir, "c2", clientYaml({ name: "c2", nsurl: "kernel://heal/nsm-1", node: "node-1" }));
    const t0 = Date.now();
    await rt.ok("apply", "-f", file, "-n", NS);
    const c2 = podNetns(rt, NS, "c2");
    await waitPing(c2, endpointAddressOf(c2), 5000);
    figure("new_client_after_registry_restart", Date.now() - t0);
    const rec = await pinger.stop();
    assert.equal(rec.lost, 0, JSON.stringify(rec));
    await rt.ok("delete", "-f", file, "-n", NS);
  });

  it("a NetworkService whose matches change moves its clients (change-nse-dynamically)", async () => {
    const file = writeManifest(
      dir,
      "c3",
      clientYaml({ name: "c3", nsurl: "kernel://heal-select/nsm-2", node: "node-1" }),
    );
    await rt.ok("apply", "-f", file, "-n", NS);
    const c3 = podNetns(rt, NS, "c3");
    assert.ok(endpointAddressOf(c3, "nsm-2").startsWith(PREFIX[NSE.a.name]!));
    await waitPing(c3, endpointAddressOf(c3, "nsm-2"), 5000);
    const t0 = Date.now();
    const changed = writeManifest(
      dir,
      "select-b",
      networkServiceYaml("heal-select", "ETHERNET", [{ destinationSelector: { app: NSE.b.name } }]),
    );
    await rt.ok("apply", "-f", changed, "-n", NS);
    await waitPingThrough(c3, "nsm-2", PREFIX[NSE.b.name]!, 15_000);
    figure("matches_change", Date.now() - t0);
    assert.equal((await waitHealed(rt, NS, "c3", t0)).endpoint, NSE.b.name);
    await rt.ok("delete", "-f", file, "-n", NS);
  });

  it("endpoint restarted with the same name: the client keeps its path and addresses", async () => {
    await samePath(["restart", `pod/${current}`, "-n", NS, "--kill"], "nse_restart");
  });

  it("endpoint deleted while another serves the service: the client reselects", async () => {
    const other = current === NSE.a.name ? NSE.b.name : NSE.a.name;
    const t0 = Date.now();
    await rt.ok("delete", "-f", join(dir, `${current}.yaml`), "-n", NS);
    await waitPingThrough(c1, "nsm-1", PREFIX[other]!, 15_000);
    figure("nse_death", Date.now() - t0);
    const healed = await waitHealed(rt, NS, "c1", t0);
    assert.equal(healed.endpoint, other);
    current = other;
    // The healed connection is UP on nsmgr (not the RESELECT_REQUESTED its Request carried).
    const states = rows(await rt.ok("get", "connections"))
      .filter((r) => r.includes(other))
      .map((r) => r.find((cell) => /^[A-Z_]+$/.test(cell)));
    assert.deepEqual(states, ["UP"], "nsm get connections after the reselect");
  });

  it("an endpoint with NSM_UNREGISTER_ITSELF=true unregisters on a clean shutdown", async () => {
    const listed = async () => rows(await rt.ok("get", "networkserviceendpoints")).map((r) => r[0]);
    const file = writeManifest(
      dir,
      "nse-u",
      nseYaml({
        name: "nse-u",
        service: "heal-unused",
        cidr: "172.16.12.96/28",
        node: "node-1",
        env: { NSM_UNREGISTER_ITSELF: "true" },
      }),
    );
    await rt.ok("apply", "-f", file, "-n", NS);
    assert.ok((await listed()).includes("nse-u"));
    await rt.ok("delete", "-f", file, "-n", NS);
    const left = await listed();
    assert.ok(!left.includes("nse-u"), `nse-u unregistered itself: ${left}`);
  });

  it("client killed: its interfaces are removed once its tokens expire", async () => {
    const nse = podNetns(rt, NS, current);
    const tagged = () => linksOf(nse).filter((l) => l.ifalias?.startsWith("nsm:"));
    assert.equal(tagged().length, 1, JSON.stringify(linksOf(nse)));
    const t0 = Date.now();
    await rt.ok("stop", "pod/c1", "-c", "cmd-nsc", "-n", NS, "--kill");
    await waitFor(() => tagged().length === 0 && clientInterface(c1) === undefined, TOKEN_LIFETIME_MS + 10_000);
    figure("client_death_cleanup", Date.now() - t0);
  });
});
