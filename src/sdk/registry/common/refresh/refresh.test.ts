// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { NetworkServiceEndpointSchema } from "../../../../api/gen/registry_pb.js";
import { Code, NsmError } from "../../../core/errors.js";
import { activeTimers, delay, testContext } from "../../../testing/async.js";
import { registryCount, registryInjectError } from "../../../testing/registry.js";
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
import { DEFAULT_REFRESH_RETRY_INTERVAL_MS, registryRefresh } from "./index.js";

const nse = (name: string) => create(NetworkServiceEndpointSchema, { name, networkServiceNames: ["s"] });

/** A registry server with a short lifetime, and a client chain begin → refresh → count → [extra] → connect. */
function setup(options: { expirationMs: number; retryIntervalMs?: number; extra?: RegistryElement<NseTypes>[] }) {
  const serverLife = new AbortController();
  const clientLife = new AbortController();
  const server = bindRegistry(
    registryChain<NseTypes>(
      registryBegin(nseKind),
      registryExpire({ expirationMs: options.expirationMs, signal: serverLife.signal }),
      registryMemory(nseKind),
    ),
  );
  const count = registryCount<NseTypes>();
  const client = bindRegistry(
    registryChain<NseTypes>(
      registryBegin(nseKind),
      registryRefresh({ signal: clientLife.signal, retryIntervalMs: options.retryIntervalMs }),
      count,
      ...(options.extra ?? []),
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
  return { server, client, count, stored, stop, clientLife };
}

describe("registryRefresh", () => {
  it("retries every 200 ms by default", () => {
    assert.equal(DEFAULT_REFRESH_RETRY_INTERVAL_MS, 200);
  });

  it("re-registers at 2/3 of the lifetime, so the NSE outlives its expiration; stops on Unregister", async () => {
    const timersBefore = activeTimers();
    const { ctx, cancel } = testContext();
    const t = setup({ expirationMs: 400 });
    await t.client.register(nse("a"), ctx);
    await delay(900); // more than twice the lifetime
    assert.deepEqual(await t.stored(), ["a"]);
    assert.ok(t.count.registers >= 3, `registers: ${t.count.registers}`);
    await t.client.unregister(nse("a"), ctx);
    const after = t.count.registers;
    await delay(300);
    assert.equal(t.count.registers, after);
    assert.deepEqual(await t.stored(), []);
    cancel();
    t.stop();
    assert.equal(activeTimers(), timersBefore);
  });

  it("retries a failed refresh until it succeeds", async () => {
    const { ctx, cancel } = testContext();
    let failing = false;
    let failures = 0;
    const flaky = registryInjectError<NseTypes>(
      () => {
        failures++;
        return new NsmError("registry down", Code.Unavailable);
      },
      { register: () => failing },
    );
    const t = setup({ expirationMs: 300, retryIntervalMs: 50, extra: [flaky] });
    await t.client.register(nse("a"), ctx);
    failing = true;
    await delay(450); // first refresh at ~200 ms fails, then every 50 ms; the record expires at 300 ms
    assert.ok(failures >= 3, `failures: ${failures}`);
    assert.deepEqual(await t.stored(), []);
    failing = false;
    await delay(120);
    assert.deepEqual(await t.stored(), ["a"]);
    await t.client.unregister(nse("a"), ctx);
    cancel();
    t.stop();
  });

  it("asks for the caller's requested lifetime again on every refresh", async () => {
    const { ctx, cancel } = testContext();
    const t = setup({ expirationMs: 60_000 });
    const rec = nse("a");
    rec.expirationTime = timestampFromMs(Date.now() + 400);
    await t.client.register(rec, ctx);
    await delay(900);
    assert.deepEqual(await t.stored(), ["a"]);
    assert.ok(t.count.registers >= 3, `registers: ${t.count.registers}`);
    // Each refresh asked for "now + 400 ms" again, not for the original (long past) time.
    const last = t.count.lastRegistered!;
    assert.ok(last.expirationTime && timestampMs(last.expirationTime) >= timestampMs(rec.expirationTime) + 400);
    await t.client.unregister(nse("a"), ctx);
    cancel();
    t.stop();
  });

  it("stops refreshing when its signal aborts", async () => {
    const timersBefore = activeTimers();
    const { ctx, cancel } = testContext();
    const t = setup({ expirationMs: 200 });
    await t.client.register(nse("a"), ctx);
    t.clientLife.abort();
    await delay(300);
    assert.equal(t.count.registers, 1);
    assert.deepEqual(await t.stored(), []);
    cancel();
    t.stop();
    assert.equal(activeTimers(), timersBefore);
  });

  it("does not refresh a registration without expiration_time", async () => {
    const timersBefore = activeTimers();
    const { ctx, cancel } = testContext();
    const count = registryCount<NseTypes>();
    const client = bindRegistry(registryChain<NseTypes>(registryBegin(nseKind), registryRefresh(), count));
    await client.register(nse("a"), ctx);
    cancel();
    assert.equal(activeTimers(), timersBefore);
    assert.equal(count.registers, 1);
  });
});
