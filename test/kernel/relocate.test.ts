// SPDX-License-Identifier: Apache-2.0
/**
 * A connection's pod netns is named by a process path (`/proc/<pid>/ns/net`); when that process
 * dies before the connection is closed (a killed client whose tokens expire), the forwarder must
 * still find the namespace (held by the pod) and delete its interface.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, describe, it } from "node:test";
import { createNetlinkKernel } from "../../src/kernel/index.js";
import { netnsIdentity, relocateNetns } from "../../src/kernel/networkservice/xconnect/netns.js";
import { kernelSkipReason, NetnsSet, nsPath } from "../helpers/netns.js";

describe("relocateNetns", { skip: kernelSkipReason() }, () => {
  const set = new NetnsSet("nsm-reloc");
  const kernel = createNetlinkKernel();
  after(async () => {
    set.deleteAll();
    await kernel.close();
  });

  it("finds the namespace of a dead process by its identity; undefined once the namespace is gone", async () => {
    const ns = set.add("pod");
    const child = spawn("ip", ["netns", "exec", ns, "sleep", "30"], { stdio: "ignore" });
    const path = `/proc/${child.pid}/ns/net`;
    for (let i = 0; netnsIdentity(path) !== netnsIdentity(nsPath(ns)) && i < 100; i++)
      await new Promise((r) => setTimeout(r, 10));
    const id = netnsIdentity(path);
    assert.equal(id, netnsIdentity(nsPath(ns)), "the process runs in the pod netns");
    assert.equal(await relocateNetns(kernel, { netns: path, netnsId: id }), path, "a live path is kept");
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    assert.equal(await relocateNetns(kernel, { netns: path, netnsId: id }), nsPath(ns));
    assert.equal(await relocateNetns(kernel, { netns: path }), path, "no identity recorded: the recorded path");
    set.delete(ns);
    assert.equal(await relocateNetns(kernel, { netns: path, netnsId: id }), undefined);
  });
});
