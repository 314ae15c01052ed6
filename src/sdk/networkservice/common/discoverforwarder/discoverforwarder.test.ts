// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  MatchSchema,
  MetadataSchema,
  type NetworkServiceEndpoint,
  NetworkServiceEndpointSchema,
  NetworkServiceLabelsSchema,
  NetworkServiceSchema,
} from "../../../../api/gen/registry_pb.js";
import {
  type Connection,
  ConnectionSchema,
  create,
  NetworkServiceRequestSchema,
  PathSchema,
  PathSegmentSchema,
  State,
} from "../../../../api/index.js";
import { bind, chain, type NetworkServiceElement } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { Code, NsmError } from "../../../core/errors.js";
import { fakeNseRegistry, fakeNsRegistry } from "../../../testing/fake-registry.js";
import { clientUrlOf } from "../clienturl/index.js";
import { metadataServer } from "../metadata/index.js";
import { updatePathServer } from "../updatepath/index.js";
import { discoverForwarderServer, matchForwarders } from "./index.js";

const NSMGR = "tcp://10.0.0.1:5001";

const forwarder = (name: string, labels: Record<string, string> = { p2p: "true" }, url = `${NSMGR}/${name}`) =>
  create(NetworkServiceEndpointSchema, {
    name,
    networkServiceNames: ["forwarder"],
    networkServiceLabels: { forwarder: create(NetworkServiceLabelsSchema, { labels }) },
    url,
  });

const plainService = create(NetworkServiceSchema, { name: "svc", payload: "IP" });
const capabilityService = create(NetworkServiceSchema, {
  name: "svc",
  payload: "IP",
  matches: [create(MatchSchema, { metadata: create(MetadataSchema, { labels: { my_forwarder_capability: "true" } }) })],
});
const defaultLabelsService = create(NetworkServiceSchema, {
  name: "svc",
  matches: [create(MatchSchema, { sourceSelector: {} })],
});

function request(opts: { id?: string; path?: string[]; state?: State } = {}) {
  const id = opts.id ?? "nsc-1";
  const segments = opts.path ?? ["nsc"];
  return create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, {
      id,
      networkService: "svc",
      state: opts.state ?? State.UP,
      path: create(PathSchema, {
        index: 0,
        pathSegments: segments.map((name, i) => create(PathSegmentSchema, { name, id: i === 0 ? id : `${name}-id` })),
      }),
    }),
  });
}

function harness(forwarders: NetworkServiceEndpoint[], ns = plainService, failing = new Set<string>()) {
  const nseRegistry = fakeNseRegistry(forwarders);
  const urls: (string | undefined)[] = [];
  const closes: (string | undefined)[] = [];
  const spy: NetworkServiceElement = {
    name: "spy",
    request(req, ctx, next) {
      const url = clientUrlOf(ctx);
      urls.push(url);
      if (url && failing.has(url)) return Promise.reject(new NsmError(`${url} refused`, Code.Unavailable));
      return next.request(req, ctx);
    },
    close(conn, ctx, next) {
      closes.push(clientUrlOf(ctx));
      return next.close(conn, ctx);
    },
  };
  const handler = bind(
    chain(
      updatePathServer("nsmgr"),
      metadataServer(),
      discoverForwarderServer({ nsRegistry: fakeNsRegistry([ns]), nseRegistry, nsmgrUrl: NSMGR }),
      spy,
    ),
  );
  return { handler, urls, closes, nseRegistry };
}

const ctx = () => CallContext.create();
const refresh = (conn: Connection, state = State.UP) => {
  const c = create(ConnectionSchema, { ...conn, state });
  return create(NetworkServiceRequestSchema, { connection: c });
};

describe("matchForwarders", () => {
  const fwds = [
    forwarder("fwd-1"),
    forwarder("fwd-2", { p2p: "true", my_forwarder_capability: "true" }),
    forwarder("fwd-3", {}),
  ];
  const names = (l: NetworkServiceEndpoint[]) => l.map((f) => f.name);
  it("keeps every forwarder when the service has no matches", () => {
    assert.deepEqual(names(matchForwarders({}, plainService, fwds)), ["fwd-1", "fwd-2", "fwd-3"]);
  });
  it("uses {p2p: true} for a match without metadata labels", () => {
    assert.deepEqual(names(matchForwarders({}, defaultLabelsService, fwds)), ["fwd-1", "fwd-2"]);
  });
  it("selects by the match's metadata labels (select-forwarder example)", () => {
    assert.deepEqual(names(matchForwarders({}, capabilityService, fwds)), ["fwd-2"]);
  });
  it("applies source selectors and fallthrough", () => {
    const ns = create(NetworkServiceSchema, {
      name: "svc",
      matches: [
        create(MatchSchema, { sourceSelector: { app: "a" }, metadata: create(MetadataSchema, { labels: { x: "1" } }) }),
        create(MatchSchema, { fallthrough: true, metadata: create(MetadataSchema, { labels: { none: "1" } }) }),
        create(MatchSchema, { metadata: create(MetadataSchema, { labels: { my_forwarder_capability: "{{.cap}}" } }) }),
      ],
    });
    assert.deepEqual(names(matchForwarders({ app: "a" }, ns, fwds)), []);
    assert.deepEqual(names(matchForwarders({ cap: "true" }, ns, fwds)), ["fwd-2"]);
  });
});

describe("discoverForwarderServer", () => {
  it("sends the request to a local forwarder and ignores other nodes' forwarders", async () => {
    const { handler, urls, nseRegistry } = harness([
      forwarder("remote", {}, "tcp://10.0.0.2:5001/x"),
      forwarder("fwd-1"),
    ]);
    await handler.request(request(), ctx());
    assert.deepEqual(urls, [`${NSMGR}/fwd-1`]);
    const q = nseRegistry.queries[0]!.networkServiceEndpoint!;
    assert.deepEqual(q.networkServiceNames, ["forwarder"]);
    assert.equal(q.url, NSMGR);
  });

  it("is NotFound 'no forwarder available' when none fits", async () => {
    const { handler } = harness([forwarder("fwd-1")], capabilityService);
    await assert.rejects(
      handler.request(request(), ctx()),
      (e: NsmError) =>
        e.code === Code.NotFound && e.reason === "no-forwarder" && e.message.includes("no forwarder available"),
    );
  });

  it("is NotFound for an unknown network service", async () => {
    const { handler } = harness([forwarder("fwd-1")], create(NetworkServiceSchema, { name: "other" }));
    await assert.rejects(handler.request(request(), ctx()), (e: NsmError) => e.code === Code.NotFound);
  });

  it("prefers the forwarder named in the next path segment", async () => {
    const { handler, urls } = harness([forwarder("fwd-1"), forwarder("fwd-2")]);
    await handler.request(request({ path: ["nsc", "nsmgr", "fwd-2"] }), ctx());
    assert.deepEqual(urls, [`${NSMGR}/fwd-2`]);
  });

  it("tries the next forwarder when one fails", async () => {
    const { handler, urls } = harness(
      [forwarder("fwd-1"), forwarder("fwd-2")],
      plainService,
      new Set([`${NSMGR}/fwd-1`]),
    );
    await handler.request(request(), ctx());
    assert.deepEqual(urls, [`${NSMGR}/fwd-1`, `${NSMGR}/fwd-2`]);
  });

  it("fails with the last code when every forwarder fails", async () => {
    const failing = new Set([`${NSMGR}/fwd-1`, `${NSMGR}/fwd-2`]);
    const { handler } = harness([forwarder("fwd-1"), forwarder("fwd-2")], plainService, failing);
    await assert.rejects(
      handler.request(request(), ctx()),
      (e: NsmError) => e.code === Code.Unavailable && e.message.includes("fwd-1") && e.message.includes("fwd-2"),
    );
  });

  it("sticks to the chosen forwarder, is NotFound when it is gone, and forgets it on reselect", async () => {
    const { handler, urls, nseRegistry } = harness([forwarder("fwd-1"), forwarder("fwd-2")]);
    const conn = await handler.request(request(), ctx());
    nseRegistry.records = [forwarder("fwd-2"), forwarder("fwd-1")];
    await handler.request(refresh(conn), ctx());
    assert.deepEqual(urls, [`${NSMGR}/fwd-1`, `${NSMGR}/fwd-1`]);

    nseRegistry.records = [forwarder("fwd-2")];
    await assert.rejects(
      handler.request(refresh(conn), ctx()),
      (e: NsmError) => e.code === Code.NotFound && e.message.includes('"fwd-1" is not available'),
    );
    await handler.request(refresh(conn, State.RESELECT_REQUESTED), ctx());
    assert.equal(urls.at(-1), `${NSMGR}/fwd-2`);
  });

  it("closes through the chosen forwarder", async () => {
    const { handler, closes } = harness([forwarder("fwd-1"), forwarder("fwd-2")]);
    const conn = await handler.request(request({ path: ["nsc", "nsmgr", "fwd-2"] }), ctx());
    await handler.close(conn, ctx());
    assert.deepEqual(closes, [`${NSMGR}/fwd-2`]);
  });

  it("closes through the next path segment's forwarder after a restart, and without a URL if it is gone", async () => {
    const { handler, closes } = harness([forwarder("fwd-1"), forwarder("fwd-2")]);
    const withPath = (names: string[]) => request({ path: names }).connection!;
    await handler.close(withPath(["nsc", "nsmgr", "fwd-2"]), ctx());
    await handler.close(withPath(["nsc", "nsmgr", "fwd-9"]), ctx());
    assert.deepEqual(closes, [`${NSMGR}/fwd-2`, undefined]);
  });

  it("needs metadata earlier in the chain", () => {
    const el = discoverForwarderServer({ nsRegistry: fakeNsRegistry(), nseRegistry: fakeNseRegistry() });
    assert.throws(
      () => bind(el),
      (e: NsmError) => e.code === Code.FailedPrecondition,
    );
  });
});
