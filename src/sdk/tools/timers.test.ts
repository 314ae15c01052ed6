// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { sleep } from "../core/context.js";
import { KeyedTimers, type ScheduledTask } from "./timers.js";

describe("KeyedTimers", () => {
  it("runs a task after its delay, and keeps it current until done()", async () => {
    const timers = new KeyedTimers<string, number>();
    const ran: number[] = [];
    let seen: ScheduledTask<number> | undefined;
    timers.schedule(
      "a",
      10,
      (task) => {
        ran.push(task.data);
        seen = task;
      },
      7,
    );
    assert.equal(timers.size, 1);
    await sleep(40);
    assert.deepEqual(ran, [7]);
    assert.equal(timers.get("a"), seen, "still current while its work is in flight");
    seen!.done();
    assert.equal(timers.size, 0);
  });

  it("replacing a task cancels the old one and aborts its signal", async () => {
    const timers = new KeyedTimers<string>();
    const ran: string[] = [];
    const first = timers.schedule("a", 10, () => ran.push("first"), undefined);
    timers.schedule("a", 10, () => ran.push("second"), undefined);
    assert.equal(first?.signal.aborted, true);
    first!.done();
    assert.equal(timers.size, 1, "done() of a replaced task does not forget the new one");
    await sleep(40);
    assert.deepEqual(ran, ["second"]);
  });

  it("cancel() clears the timer; other keys are untouched", async () => {
    const timers = new KeyedTimers<string>();
    const ran: string[] = [];
    timers.schedule("a", 10, () => ran.push("a"), undefined);
    timers.schedule("b", 10, () => ran.push("b"), undefined);
    timers.cancel("a");
    timers.cancel("nothing");
    await sleep(40);
    assert.deepEqual(ran, ["b"]);
  });

  it("retry() runs the task again unless it was cancelled meanwhile", async () => {
    const timers = new KeyedTimers<string>();
    let runs = 0;
    timers.schedule(
      "a",
      0,
      (task) => {
        runs++;
        if (runs < 3) task.retry(5);
      },
      undefined,
    );
    await sleep(60);
    assert.equal(runs, 3);
    const t = timers.schedule("b", 0, () => runs++, undefined)!;
    timers.cancel("b");
    t.retry(0);
    await sleep(20);
    assert.equal(runs, 3, "a cancelled task does not run on retry");
  });

  it("the owner's signal cancels every task and refuses new ones", async () => {
    const life = new AbortController();
    const timers = new KeyedTimers<string>({ signal: life.signal });
    let runs = 0;
    const t = timers.schedule("a", 10, () => runs++, undefined);
    life.abort();
    assert.equal(t?.signal.aborted, true);
    assert.equal(timers.size, 0);
    assert.equal(
      timers.schedule("b", 0, () => runs++, undefined),
      undefined,
    );
    await sleep(30);
    assert.equal(runs, 0);
  });

  it("clamps delays: negative runs at once, beyond setTimeout's range does not overflow to 1 ms", async () => {
    const timers = new KeyedTimers<string>();
    let runs = 0;
    timers.schedule("past", -1000, () => runs++, undefined);
    timers.schedule("far", 2 ** 40, () => runs++, undefined);
    await sleep(20);
    assert.equal(runs, 1);
    timers.cancelAll();
    assert.equal(timers.size, 0);
  });
});
