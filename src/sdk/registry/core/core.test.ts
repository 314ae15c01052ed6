// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  DestinationSchema,
  MatchSchema,
  NetworkServiceEndpointSchema,
  NetworkServiceLabelsSchema,
  NetworkServiceSchema,
} from "../../../api/gen/registry_pb.js";
import { CallContext } from "../../core/context.js";
import { Code, NsmError } from "../../core/errors.js";
import {
  bindRegistry,
  collectRecords,
  matchNetworkService,
  matchNetworkServiceEndpoint,
  type NseTypes,
  nseKind,
  nseRegistryFromChain,
  type RegistryElement,
  registryChain,
  registryPassThrough,
} from "./index.js";

const nse = (init: Parameters<typeof create<typeof NetworkServiceEndpointSchema>>[1]) =>
  create(NetworkServiceEndpointSchema, init);
const labels = (l: Record<string, string>) => create(NetworkServiceLabelsSchema, { labels: l });

describe("matchNetworkServiceEndpoint", () => {
  const rec = nse({
    name: "nse-1",
    networkServiceNames: ["a", "b"],
    networkServiceLabels: { a: labels({ app: "x", tier: "1" }) },
    url: "tcp://10.0.0.1:5001",
    expirationTime: timestampFromMs(10_500),
  });
  it("matches everything with no template or an empty one", () => {
    assert.ok(matchNetworkServiceEndpoint(undefined, rec));
    assert.ok(matchNetworkServiceEndpoint(nse({}), rec));
  });
  it("matches the name exactly", () => {
    assert.ok(matchNetworkServiceEndpoint(nse({ name: "nse-1" }), rec));
    assert.ok(!matchNetworkServiceEndpoint(nse({ name: "nse" }), rec));
  });
  it("needs the template labels to be contained in the record's", () => {
    assert.ok(matchNetworkServiceEndpoint(nse({ networkServiceLabels: { a: labels({ app: "x" }) } }), rec));
    assert.ok(matchNetworkServiceEndpoint(nse({ networkServiceLabels: { a: labels({}) } }), rec));
    assert.ok(!matchNetworkServiceEndpoint(nse({ networkServiceLabels: { a: labels({ app: "y" }) } }), rec));
    assert.ok(!matchNetworkServiceEndpoint(nse({ networkServiceLabels: { b: labels({}) } }), rec));
  });
  it("needs the template service names to be a subset", () => {
    assert.ok(matchNetworkServiceEndpoint(nse({ networkServiceNames: ["b"] }), rec));
    assert.ok(matchNetworkServiceEndpoint(nse({ networkServiceNames: ["b", "a"] }), rec));
    assert.ok(!matchNetworkServiceEndpoint(nse({ networkServiceNames: ["a", "c"] }), rec));
  });
  it("matches the url as a substring", () => {
    assert.ok(matchNetworkServiceEndpoint(nse({ url: "10.0.0.1" }), rec));
    assert.ok(!matchNetworkServiceEndpoint(nse({ url: "10.0.0.2" }), rec));
  });
  it("compares expiration_time seconds when set", () => {
    assert.ok(matchNetworkServiceEndpoint(nse({ expirationTime: timestampFromMs(10_000) }), rec));
    assert.ok(!matchNetworkServiceEndpoint(nse({ expirationTime: timestampFromMs(11_000) }), rec));
  });
});

describe("matchNetworkService", () => {
  const match = create(MatchSchema, {
    sourceSelector: { app: "a" },
    routes: [create(DestinationSchema, { destinationSelector: { app: "b" } })],
  });
  const rec = create(NetworkServiceSchema, { name: "svc", payload: "ETHERNET", matches: [match] });
  it("matches name and payload exactly", () => {
    assert.ok(matchNetworkService(create(NetworkServiceSchema, { name: "svc" }), rec));
    assert.ok(!matchNetworkService(create(NetworkServiceSchema, { name: "sv" }), rec));
    assert.ok(matchNetworkService(create(NetworkServiceSchema, { payload: "ETHERNET" }), rec));
    assert.ok(!matchNetworkService(create(NetworkServiceSchema, { payload: "IP" }), rec));
  });
  it("compares matches deeply when the template has any", () => {
    const same = create(MatchSchema, {
      sourceSelector: { app: "a" },
      routes: [create(DestinationSchema, { destinationSelector: { app: "b" } })],
    });
    const other = create(MatchSchema, { sourceSelector: { app: "z" } });
    assert.ok(matchNetworkService(create(NetworkServiceSchema, { matches: [same] }), rec));
    assert.ok(!matchNetworkService(create(NetworkServiceSchema, { matches: [other] }), rec));
    assert.ok(!matchNetworkService(create(NetworkServiceSchema, { matches: [same, same] }), rec));
  });
});

describe("registryChain / bindRegistry", () => {
  const tag = (t: string): RegistryElement<NseTypes> => ({
    name: t,
    register: (rec, ctx, next) => {
      const out = nseKind.cloneRecord(rec);
      out.pathIds.push(t);
      return next.register(out, ctx);
    },
    async *find(query, ctx, next) {
      yield nseKind.response(nse({ name: t }), false);
      yield* next.find(query, ctx);
    },
    unregister: (rec, ctx, next) => next.unregister(rec, ctx),
  });

  it("calls elements in order; the tail returns the record and yields nothing", async () => {
    const h = bindRegistry(registryChain(tag("a"), registryChain(tag("b"), registryPassThrough()), tag("c")));
    const out = await h.register(nse({ name: "x" }), CallContext.create());
    assert.deepEqual(out.pathIds, ["a", "b", "c"]);
    const found = await collectRecords(nseKind, h, nseKind.query(undefined, false), CallContext.create());
    assert.deepEqual(
      found.map((r) => r.name),
      ["a", "b", "c"],
    );
    await h.unregister(nse({ name: "x" }), CallContext.create());
  });

  it("checks `requires` when binding", () => {
    const needy: RegistryElement<NseTypes> = { ...registryPassThrough<NseTypes>("needy"), requires: ["begin"] };
    assert.throws(
      () => bindRegistry(registryChain(needy)),
      (e: NsmError) => e instanceof NsmError && e.code === Code.FailedPrecondition && e.reason === "chain-order",
    );
  });

  it("the in-process adapter copies records in both directions", async () => {
    let seen: NseTypes["record"] | undefined;
    const h = bindRegistry<NseTypes>({
      name: "keep",
      register: async (rec) => {
        seen = rec;
        return rec;
      },
      find: (q, ctx, next) => next.find(q, ctx),
      unregister: async () => {},
    });
    const client = nseRegistryFromChain(h);
    const input = nse({ name: "x" });
    const out = await client.register(input, CallContext.create());
    assert.notEqual(seen, input);
    assert.notEqual(out, seen);
    assert.equal(out.name, "x");
  });
});
