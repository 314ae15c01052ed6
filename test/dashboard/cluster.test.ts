// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm dashboard --nsmgr URL --registry URL`: the dashboard of a cluster given by its nsmgrs and
 * registry rather than a local state directory. Here the "cluster" is an insecure local runtime
 * reached through its unix sockets (NSM_INSECURE=true, as a debugging cluster would be); without
 * that, the dashboard needs a SPIFFE identity and says so in one line.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Snapshot } from "../../src/local/dashboard/model.js";
import { collectOutput } from "../helpers/process.js";
import { EXAMPLE, REPO, skipReason, type TestRuntime, testRuntime } from "../local/helpers.js";
import { type DashboardProcess, startDashboard } from "./process.js";

const skip = skipReason();

describe("nsm dashboard of a cluster (--nsmgr, --registry)", { skip }, () => {
  let rt: TestRuntime;
  let dashboard: DashboardProcess | undefined;
  let urls: string[];

  before(async () => {
    rt = testRuntime("dash-cluster");
    await rt.ok("up", "--insecure");
    await rt.ok("apply", "-f", EXAMPLE);
    const state = JSON.parse(readFileSync(join(rt.dir, "state.json"), "utf8"));
    urls = ["--nsmgr", `unix://${state.nodes[0].nsmgrSocket}`, "--registry", `unix://${rt.dir}/registry.sock`];
  });
  after(async () => {
    await dashboard?.stop();
    await rt?.cleanup();
  });

  it("shows the connection with its path, the service and the endpoint, and describes it", async () => {
    dashboard = await startDashboard(join(rt.dir, "elsewhere"), urls, { NSM_INSECURE: "true" });
    const snapshot = (await (await fetch(new URL("/api/snapshot", dashboard.url))).json()) as Snapshot;
    assert.deepEqual(snapshot.problems, []);
    assert.equal(snapshot.connections.length, 1, JSON.stringify(snapshot.connections));
    const c = snapshot.connections[0]!;
    assert.deepEqual([c.id, c.service, c.state, c.status], ["alpine-0", "kernel2kernel", "UP", "ok"]);
    assert.deepEqual(c.path.slice(0, 3), ["alpine", "nsmgr-node-1", "forwarder-node-1"]);
    const kinds = new Map(snapshot.elements.map((e) => [e.label, e.kind]));
    assert.equal(kinds.get("nsmgr-node-1"), "nsmgr");
    assert.equal(kinds.get("forwarder-node-1"), "forwarder");
    assert.equal(kinds.get("alpine"), "client");
    assert.equal(kinds.get(c.endpoint), "endpoint");
    assert.equal(kinds.get("kernel2kernel"), "service");
    const described = await (await fetch(new URL("/api/connections/alpine-0", dashboard.url))).text();
    assert.match(described, /^ID: +alpine-0$/m);
    assert.match(described, /^ {2}alpine > nsmgr-node-1: KERNEL \(LOCAL\)$/m);
    assert.equal(await dashboard.stop(), 0);
    dashboard = undefined;
  });

  it("without an identity or NSM_INSECURE, and with a bad URL: one line each", async () => {
    const run = (args: string[], env: Record<string, string>) =>
      collectOutput(
        spawn(process.execPath, [join(REPO, "bin", "nsm.js"), "dashboard", "--port", "0", ...args], {
          env: { ...process.env, SPIFFE_ENDPOINT_SOCKET: "", NSM_INSECURE: "", ...env },
          stdio: ["ignore", "pipe", "pipe"],
        }),
      );
    const noId = await run(urls, {});
    assert.equal(noId.code, 1);
    assert.match(noId.stderr, /^nsm dashboard: error: SPIFFE_ENDPOINT_SOCKET="": is required: .*\n$/);
    const bad = await run(["--nsmgr", "ftp://x"], { NSM_INSECURE: "true" });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^nsm dashboard: --nsmgr ftp:\/\/x: .+\n$/);
  });
});
