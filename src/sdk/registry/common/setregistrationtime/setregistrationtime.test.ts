// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { NetworkServiceEndpointSchema } from "../../../../api/gen/registry_pb.js";
import { delay, testContext } from "../../../testing/async.js";
import { bindRegistry } from "../../core/index.js";
import { registrySetRegistrationTime } from "./index.js";

const nse = (name: string) => create(NetworkServiceEndpointSchema, { name });

describe("registrySetRegistrationTime", () => {
  it("stamps the first registration and keeps that time across refreshes", async () => {
    const { ctx, cancel } = testContext();
    const h = bindRegistry(registrySetRegistrationTime());
    const before = Date.now();
    const first = await h.register(nse("a"), ctx);
    const t0 = timestampMs(first.initialRegistrationTime!);
    assert.ok(t0 >= before - 1 && t0 <= Date.now());
    await delay(20);
    const again = await h.register(nse("a"), ctx);
    assert.equal(timestampMs(again.initialRegistrationTime!), t0);
    cancel();
  });

  it("starts over after Unregister and keeps a time the caller sent for a new name", async () => {
    const { ctx, cancel } = testContext();
    const h = bindRegistry(registrySetRegistrationTime());
    const first = await h.register(nse("a"), ctx);
    await h.unregister(nse("a"), ctx);
    await delay(20);
    const second = await h.register(nse("a"), ctx);
    assert.ok(timestampMs(second.initialRegistrationTime!) > timestampMs(first.initialRegistrationTime!));
    const given = nse("b");
    given.initialRegistrationTime = timestampFromMs(1_000_000);
    assert.equal(timestampMs((await h.register(given, ctx)).initialRegistrationTime!), 1_000_000);
    cancel();
  });
});
