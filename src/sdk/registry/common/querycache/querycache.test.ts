// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";
import { NetworkServiceEndpointSchema } from "../../../../api/gen/registry_pb.js";
import type { CallContext } from "../../../core/context.js";
import { Code, NsmError } from "../../../core/errors.js";
import { eventually, testContext } from "../../../testing/async.js";
import { registryCount } from "../../../testing/registry.js";
import {
  bindRegistry,
  collectRecords,
  type NseTypes,
  nseKind,
  type RegistryElement,
  type RegistryHandler,
  registryChain,
} from "../../core/index.js";
import { registryMemory } from "../memory/index.js";
import { registryQueryCache } from "./index.js";

const nse = (name: string, services: string[], expiresInMs?: number) =>
  create(NetworkServiceEndpointSchema, {
    name,
    networkServiceNames: services,
    expirationTime:
      expiresInMs === undefined
        ? undefined
        : create(TimestampSchema, { seconds: BigInt(Math.floor((Date.now() + expiresInMs) / 1000)) }),
  });

/** The names of the endpoints of service "svc" that a Find through `h` returns, sorted and joined. */
async function serviceNames(h: RegistryHandler<NseTypes>, ctx: CallContext): Promise<string> {
  const found = await collectRecords(nseKind, h, nseKind.query(nse("", ["svc"]), false), ctx);
  return found
    .map((r) => r.name)
    .sort()
    .join();
}

/** A registry hop that can be down (every Find fails with `code`) and can end the watches going through it. */
function outage() {
  const watches = new Set<AbortController>();
  const el = {
    code: undefined as Code | undefined,
    endWatches: () => {
      for (const w of watches) w.abort();
      watches.clear();
    },
    element: {
      name: "outage",
      register: (r, ctx, next) => next.register(r, ctx),
      unregister: (r, ctx, next) => next.unregister(r, ctx),
      async *find(query, ctx: CallContext, next: RegistryHandler<NseTypes>) {
        if (el.code !== undefined) throw new NsmError("the registry is down", el.code);
        if (!query.watch) return yield* next.find(query, ctx);
        const w = new AbortController();
        watches.add(w);
        yield* next.find(query, ctx.withCancel({ signal: w.signal }));
      },
    } as RegistryElement<NseTypes>,
  };
  return el;
}

describe("registryQueryCache", () => {
  it("answers a repeated Find from the cache and follows changes through its watch", async () => {
    const { ctx, cancel } = testContext();
    const lifetime = new AbortController();
    const counter = registryCount<NseTypes>();
    const h = bindRegistry(
      registryChain<NseTypes>(
        registryQueryCache(nseKind, { signal: lifetime.signal }),
        counter,
        registryMemory(nseKind),
      ),
    );
    await h.register(nse("a", ["svc"]), ctx);
    const names = () => serviceNames(h, ctx);
    assert.equal(await names(), "a");
    assert.equal(counter.finds, 2, "the first Find goes downstream and opens a watch");
    assert.equal(await names(), "a");
    assert.equal(counter.finds, 2, "the second Find is answered from the cache");
    await h.register(nse("b", ["svc"]), ctx);
    await eventually(async () => (await names()) === "a,b");
    await h.unregister(nse("a", []), ctx);
    await eventually(async () => (await names()) === "b");
    assert.equal(counter.finds, 2);
    lifetime.abort();
    assert.equal(await names(), "b");
    assert.equal(counter.finds, 3, "after the owner stops, Finds go downstream again");
    cancel();
  });

  it("while the registry is unreachable after its watch broke, answers from the last records that have not run out", async () => {
    const { ctx, cancel } = testContext();
    const lifetime = new AbortController();
    const down = outage();
    const h = bindRegistry(
      registryChain<NseTypes>(
        registryQueryCache(nseKind, { signal: lifetime.signal, idleMs: 400 }),
        down.element,
        registryMemory(nseKind),
      ),
    );
    await h.register(nse("live", ["svc"], 60_000), ctx);
    await h.register(nse("ran-out", ["svc"], -5_000), ctx);
    const names = () => serviceNames(h, ctx);
    assert.equal(await names(), "live,ran-out");
    down.code = Code.Unavailable;
    down.endWatches();
    await eventually(async () => (await names()) === "live");
    down.code = Code.Internal;
    await assert.rejects(names(), /the registry is down/, "only Unavailable is answered from the stale records");
    down.code = Code.Unavailable;
    await new Promise((r) => setTimeout(r, 700));
    await assert.rejects(names(), (e: NsmError) => e.code === Code.Unavailable, "not after idleMs");
    down.code = undefined;
    assert.equal(await names(), "live,ran-out", "the registry answers again");
    lifetime.abort();
    cancel();
  });
});
