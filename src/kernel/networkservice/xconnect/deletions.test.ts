// SPDX-License-Identifier: Apache-2.0
/**
 * PendingDeletions against the fake kernel, with a deleteLink that behaves like Linux's in two
 * steps the tests hold open (`slowLinkDeletes`): the link leaves its netns, then the kernel
 * acknowledges.
 */
import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import { Code, NsmError } from "../../../sdk/core/errors.js";
import { type Logger, silentLogger } from "../../../sdk/core/logger.js";
import { createFakeKernel, type FakeKernel } from "../../fake.js";
import { slowLinkDeletes } from "../testing.js";
import { type LinkDeletion, PendingDeletions } from "./deletions.js";

const NSC = "/var/run/netns/nsc";
const NSE = "/var/run/netns/nse";

/** A logger that records its warnings. */
function recordingLog(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  const log: Logger & { warnings: string[] } = {
    ...silentLogger,
    warnings,
    warn: (fields: unknown, msg?: string) => void warnings.push(typeof fields === "string" ? fields : (msg ?? "")),
  };
  return log;
}

const tick = () => new Promise((r) => setTimeout(r, 5));

/** Resolves to "pending" when `p` has not settled within a few ms. */
const state = (p: Promise<unknown>) =>
  Promise.race([
    p.then(
      () => "resolved",
      () => "rejected",
    ),
    tick().then(() => "pending"),
  ]);

describe("PendingDeletions", () => {
  let fake: FakeKernel;
  let slow: ReturnType<typeof slowLinkDeletes>;
  let pending: PendingDeletions;
  let log: ReturnType<typeof recordingLog>;
  let pair: LinkDeletion;

  beforeEach(async () => {
    fake = createFakeKernel();
    for (const ns of [NSC, NSE]) fake.addNetns(ns);
    await fake.createVeth(NSC, { name: "nsm-1", peer: { name: "nse-1", netns: NSE } });
    slow = slowLinkDeletes(fake);
    pending = new PendingDeletions();
    log = recordingLog();
    const index = (await fake.getLink(NSC, "nsm-1")).index;
    pair = {
      netns: NSC,
      index,
      frees: [
        { netns: NSC, netnsId: "4:1", name: "nsm-1" },
        { netns: NSE, name: "nse-1" },
      ],
    };
  });

  it("resolves once the link has left its netns, before the kernel acknowledges; drain waits for that", async () => {
    const deleted = pending.delete(slow.kernel, pair, log);
    assert.equal(await state(deleted), "pending", "the link is still there");
    slow.gates.unlist.open();
    await deleted;
    assert.equal(await fake.findLink(NSC, "nsm-1"), undefined);
    assert.equal(await fake.findLink(NSE, "nse-1"), undefined);
    assert.equal(pending.size, 1, "the acknowledgement is still awaited");
    const drained = pending.drain();
    assert.equal(await state(drained), "pending");
    slow.gates.ack.open();
    await drained;
    assert.equal(pending.size, 0);
    assert.deepEqual(log.warnings, []);
  });

  it("a Request for a name being freed waits until its link is gone; other names do not wait", async () => {
    const deleted = pending.delete(slow.kernel, pair, log);
    const sameClient = pending.vacated([{ netns: "/proc/77/ns/net", netnsId: "4:1", name: "nsm-1" }]);
    const sameEndpoint = pending.vacated([{ netns: NSE, name: "nse-1" }]);
    assert.equal(await state(sameClient), "pending", "same netns (by identity) and name");
    assert.equal(await state(sameEndpoint), "pending", "the peer's name is freed by the same deletion");
    await pending.vacated([{ netns: NSC, netnsId: "4:1", name: "nsm-2" }]);
    await pending.vacated([{ netns: NSE, name: "nsm-1" }]);
    slow.gates.unlist.open();
    await Promise.all([deleted, sameClient, sameEndpoint]);
    assert.equal(await fake.findLink(NSC, "nsm-1"), undefined, "the name is free when vacated resolves");
    slow.gates.ack.open();
    await pending.drain();
  });

  it("a failure after the link is gone is logged and counted, not thrown", async () => {
    slow.gates.unlist.open();
    await pending.delete(slow.kernel, pair, log);
    slow.gates.ack.fail(new NsmError("EBUSY somewhere", Code.Internal));
    await pending.drain();
    assert.equal(pending.failures, 1);
    assert.deepEqual(log.warnings, ["background link deletion failed"]);
  });

  it("a failure before the link is gone is the caller's error, and nothing waits for that name any more", async () => {
    const deleted = pending.delete(slow.kernel, pair, log);
    slow.gates.unlist.fail(new NsmError("Operation not permitted", Code.PermissionDenied));
    await assert.rejects(deleted, (err: NsmError) => err.code === Code.PermissionDenied);
    assert.ok(await fake.findLink(NSC, "nsm-1"), "the link stays");
    await pending.vacated(pair.frees);
    await pending.drain();
    assert.equal(pending.failures, 0);
    assert.deepEqual(log.warnings, [], "reported once, to the caller");
  });

  it("a link or netns already gone counts as deleted", async () => {
    await fake.deleteLink(NSC, "nsm-1");
    await pending.delete(fake, pair, log);
    fake.deleteNetns(NSC);
    await pending.delete(fake, pair, log);
    await pending.drain();
    assert.equal(pending.failures, 0);
  });
});
