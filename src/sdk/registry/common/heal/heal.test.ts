// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { NetworkServiceEndpointSchema } from "../../../../api/gen/registry_pb.js";
import { Code, NsmError } from "../../../core/errors.js";
import { activeTimers, delay, eventually, testContext } from "../../../testing/async.js";
import { registryCount, registryInjectError, registryWatchBreaker } from "../../../testing/registry.js";
import {
  bindRegistry,
  collectRecords,
  type NseTypes,
  nseKind,
  nseRegistryFromChain,
  type RegistryElement,
  registryChain,
} from "../../core/index.js";
import { registryBegin } from "../begin/index.js";
import { registryConnect } from "../connect/index.js";
import { registryExpire } from "../expire/index.js";
import { registryMemory } from "../memory/index.js";
import { registryRefresh } from "../refresh/index.js";
import { DEFAULT_HEAL_RETRY_INTERVAL_MS, registryHeal } from "./index.js";

const nse = (name: string) => create(NetworkServiceEndpointSchema, { name, networkServiceNames: ["s"] });

/**
 * A registry server (begin → expire → memory) and a client chain
 * begin → heal → [refresh] → count → [extra] → watchBreaker → connect.
 */
function setup(
  tc: TestContext,
  options: {
    expirationMs?: number;
    retryIntervalMs?: number;
    refresh?: boolean;
    extra?: RegistryElement<NseTypes>[];
  } = {},
) {
  const serverLife = new AbortController();
  const clientLife = new AbortController();
  const server = bindRegistry(
    registryChain<NseTypes>(
      registryBegin(nseKind),
      registryExpire({ expirationMs: options.expirationMs ?? 60_000, signal: serverLife.signal }),
      registryMemory(nseKind),
    ),
  );
  const count = registryCount<NseTypes>();
  const breaker = registryWatchBreaker(nseKind);
  const client = bindRegistry(
    registryChain<NseTypes>(
      registryBegin(nseKind),
      registryHeal({ signal: clientLife.signal, retryIntervalMs: options.retryIntervalMs }),
      ...(options.refresh ? [registryRefresh({ signal: clientLife.signal })] : []),
      count,
      ...(options.extra ?? []),
      breaker,
      registryConnect(nseRegistryFromChain(server)),
    ),
  );
  const stored = async () => {
    const { ctx, cancel } = testContext();
    const names = (await collectRecords(nseKind, server, nseKind.query(undefined, false), ctx)).map((r) => r.name);
    cancel();
    return names;
  };
  const stop = () => {
    clientLife.abort();
    serverLife.abort();
  };
  tc.after(stop);
  return { server, client, count, breaker, stored, stop, clientLife };
}

describe("registryHeal", () => {
  it("retries every 200 ms by default, and must come after begin", () => {
    assert.equal(DEFAULT_HEAL_RETRY_INTERVAL_MS, 200);
    assert.throws(
      () => bindRegistry(registryChain(registryHeal(), registryMemory(nseKind))),
      (e: NsmError) => e.code === Code.FailedPrecondition,
    );
    assert.throws(
      () => registryHeal({ retryIntervalMs: 0 }),
      (e: NsmError) => e.code === Code.InvalidArgument,
    );
  });

  for (const [how, error] of [
    ["fails (Unavailable)", new NsmError("registry restarted", Code.Unavailable)],
    ["fails with Canceled (grpc-js: the server died)", new NsmError("Call cancelled", Code.Canceled)],
    ["ends", undefined],
  ] as const) {
    it(`registers again at once when its watch ${how}, then watches again`, async (tc) => {
      const { ctx, cancel } = testContext();
      tc.after(cancel);
      const t = setup(tc);
      await t.client.register(nse("a"), ctx);
      await eventually(() => t.breaker.openWatches === 1);
      const t0 = Date.now();
      t.breaker.breakWatches(error);
      await eventually(() => t.count.registers === 2, 1000, 2);
      const took = Date.now() - t0;
      assert.ok(took < 100, `re-registered in ${took} ms`);
      await eventually(() => t.breaker.openWatches === 1 && t.breaker.watchesOpened === 2);
      assert.deepEqual(await t.stored(), ["a"]);
      cancel();
      t.stop();
    });
  }

  it("registers again when the watch shows the record deleted (the registry lost it or it expired)", async (tc) => {
    const { ctx, cancel } = testContext();
    tc.after(cancel);
    // No refresh: only heal brings the record back after each expiry.
    const t = setup(tc, { expirationMs: 200 });
    await t.client.register(nse("a"), ctx);
    await delay(550);
    assert.ok(t.count.registers >= 3, `registers: ${t.count.registers}`);
    assert.deepEqual(await t.stored(), ["a"]);
    // The registry forgets it outright (Unregister on the server side): back at once.
    const before = t.count.registers;
    await t.server.unregister(nse("a"), ctx);
    await eventually(() => t.count.registers > before, 500, 2);
    assert.deepEqual(await t.stored(), ["a"]);
    cancel();
    t.stop();
  });

  it("retries every retryIntervalMs until the registry takes the registration again", async (tc) => {
    const { ctx, cancel } = testContext();
    tc.after(cancel);
    let failing = false;
    let failures = 0;
    const down = registryInjectError<NseTypes>(
      () => {
        failures++;
        return new NsmError("registry down", Code.Unavailable);
      },
      { register: () => failing },
    );
    const t = setup(tc, { retryIntervalMs: 50, extra: [down] });
    await t.client.register(nse("a"), ctx);
    await eventually(() => t.breaker.openWatches === 1);
    failing = true;
    t.breaker.breakWatches(new NsmError("registry restarted", Code.Unavailable));
    await delay(230);
    assert.ok(failures >= 4 && failures <= 6, `failures: ${failures}`);
    failing = false;
    await eventually(() => t.count.registers === failures + 2, 500, 2);
    await eventually(() => t.breaker.openWatches === 1);
    const after = t.count.registers;
    await delay(120);
    assert.equal(t.count.registers, after, "no more attempts after success");
    cancel();
    t.stop();
  });

  it("keeps the lifetime the caller asked for when it registers again (refresh after it)", async (tc) => {
    const { ctx, cancel } = testContext();
    tc.after(cancel);
    const t = setup(tc, { refresh: true });
    const rec = nse("a");
    rec.expirationTime = timestampFromMs(Date.now() + 600);
    await t.client.register(rec, ctx);
    await eventually(() => t.breaker.openWatches === 1);
    await delay(300); // before the first refresh (at 400 ms): 300 ms are left on the stored registration
    t.breaker.breakWatches(new NsmError("registry restarted", Code.Unavailable));
    await eventually(() => t.count.registers === 2, 500, 2);
    const left = timestampMs(t.count.lastRegistered!.expirationTime!) - Date.now();
    assert.ok(left > 450, `the heal asked for ${left} ms, not the 600 ms lifetime`);
    await t.client.unregister(nse("a"), ctx);
    cancel();
    t.stop();
  });

  it("stops on Unregister: the watch closes and nothing registers again", async (tc) => {
    const timersBefore = activeTimers();
    const { ctx, cancel } = testContext();
    tc.after(cancel);
    const t = setup(tc);
    await t.client.register(nse("a"), ctx);
    await eventually(() => t.breaker.openWatches === 1);
    await t.client.unregister(nse("a"), ctx);
    await eventually(() => t.breaker.openWatches === 0);
    t.breaker.breakWatches(new NsmError("registry restarted", Code.Unavailable));
    await delay(50);
    assert.equal(t.count.registers, 1);
    assert.deepEqual(await t.stored(), []);
    cancel();
    t.stop();
    assert.equal(activeTimers(), timersBefore);
  });

  it("stops when its signal aborts: the watch closes", async (tc) => {
    const timersBefore = activeTimers();
    const { ctx, cancel } = testContext();
    tc.after(cancel);
    const t = setup(tc);
    await t.client.register(nse("a"), ctx);
    await eventually(() => t.breaker.openWatches === 1);
    t.clientLife.abort();
    await eventually(() => t.breaker.openWatches === 0);
    t.breaker.breakWatches();
    await delay(50);
    assert.equal(t.count.registers, 1);
    cancel();
    t.stop();
    assert.equal(activeTimers(), timersBefore);
  });

  it("stops retrying when its signal aborts", async (tc) => {
    const timersBefore = activeTimers();
    const { ctx, cancel } = testContext();
    tc.after(cancel);
    let failing = false;
    const down = registryInjectError<NseTypes>(() => new NsmError("down", Code.Unavailable), {
      register: () => failing,
    });
    const t = setup(tc, { retryIntervalMs: 20, extra: [down] });
    await t.client.register(nse("a"), ctx);
    await eventually(() => t.breaker.openWatches === 1);
    failing = true;
    t.breaker.breakWatches(new NsmError("registry restarted", Code.Unavailable));
    await eventually(() => t.count.registers >= 4); // retrying
    t.clientLife.abort();
    const atAbort = t.count.registers;
    failing = false;
    await delay(80);
    assert.equal(t.count.registers, atAbort);
    assert.equal(t.breaker.openWatches, 0);
    cancel();
    t.stop();
    assert.equal(activeTimers(), timersBefore);
  });

  it("never spins on a registry whose watch ends at once: it backs off", async (tc) => {
    const { ctx, cancel } = testContext();
    tc.after(cancel);
    const count = registryCount<NseTypes>();
    const life = new AbortController();
    tc.after(() => life.abort());
    // No connect: the tail's Find yields nothing and ends at once, as a registry that cannot watch.
    const client = bindRegistry(
      registryChain<NseTypes>(
        registryBegin(nseKind),
        registryHeal({ signal: life.signal, retryIntervalMs: 50 }),
        count,
      ),
    );
    await client.register(nse("a"), ctx);
    await delay(500); // the first break is healed at once, then waits of 50, 100, 200, 400 ms…
    assert.ok(count.registers >= 4 && count.registers <= 6, `registers: ${count.registers}`);
    life.abort();
    cancel();
  });

  it("returns the Register's error and opens no watch when the Register fails", async (tc) => {
    const { ctx, cancel } = testContext();
    tc.after(cancel);
    const t = setup(tc, {
      extra: [registryInjectError<NseTypes>(() => new NsmError("denied", Code.PermissionDenied))],
    });
    await assert.rejects(t.client.register(nse("a"), ctx), (e: NsmError) => e.code === Code.PermissionDenied);
    await delay(20);
    assert.equal(t.breaker.watchesOpened, 0);
    cancel();
    t.stop();
  });
});
