// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import {
  MatchSchema,
  NetworkServiceEndpointSchema,
  NetworkServiceLabelsSchema,
  NetworkServiceSchema,
} from "../../../../api/gen/registry_pb.js";
import { bind, chain, type NetworkServiceElement } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import type { NseRegistry, NsRegistry } from "../../../registry/api.js";
import { memoryRegistry } from "../../../registry/chains/memory/index.js";
import { nseRegistryFromChain, nsRegistryFromChain } from "../../../registry/core/adapters.js";
import { delay, eventually } from "../../../testing/async.js";
import { count } from "../../../testing/elements.js";
import { nscRequest } from "../../../testing/requests.js";
import { beginServer } from "../begin/index.js";
import { metadataServer } from "../metadata/index.js";
import { netSvcMonitorServer } from "./index.js";

const ctx = () => CallContext.create();
const request = (id = "c1") => nscRequest("svc", id);

const endpoint = (name: string, labels: Record<string, string>) =>
  create(NetworkServiceEndpointSchema, {
    name,
    url: `unix:///${name}.sock`,
    networkServiceNames: ["svc"],
    networkServiceLabels: { svc: create(NetworkServiceLabelsSchema, { labels }) },
  });

/** A service whose only match selects endpoints labelled `color`. */
const service = (color: string) =>
  create(NetworkServiceSchema, {
    name: "svc",
    matches: [create(MatchSchema, { routes: [{ destinationSelector: { color } }] })],
  });

/** Stands in for discover/connect: the connection comes back with endpoint `nse-blue`. */
const pickBlue: NetworkServiceElement = {
  name: "pickBlue",
  request: async (req, c, next) => {
    const conn = await next.request(req, c);
    conn.networkServiceEndpointName = "nse-blue";
    return conn;
  },
  close: (conn, c, next) => next.close(conn, c),
};

describe("netsvcmonitor", () => {
  let life: AbortController;
  let ns: NsRegistry;
  let nse: NseRegistry;
  beforeEach(async () => {
    life = new AbortController();
    const reg = memoryRegistry({ signal: life.signal });
    ns = nsRegistryFromChain(reg.ns);
    nse = nseRegistryFromChain(reg.nse);
    await ns.register(service("blue"), ctx());
    await nse.register(endpoint("nse-blue", { color: "blue" }), ctx());
  });
  afterEach(() => life.abort());

  const setup = () => {
    const downstream = count();
    const h = bind(
      chain(
        beginServer(),
        metadataServer(),
        netSvcMonitorServer({ nsRegistry: ns, nseRegistry: nse, signal: life.signal, rewatchIntervalMs: 20 }),
        pickBlue,
        downstream,
      ),
    );
    return { h, downstream };
  };

  it("closes the connection when its service stops selecting its endpoint", async () => {
    const { h, downstream } = setup();
    await h.request(request(), ctx());
    await delay(50);
    assert.equal(downstream.closes, 0, "the first answer of the watch (the service as it is) changes nothing");
    await ns.register(service("green"), ctx());
    await eventually(() => downstream.closes === 1);
  });

  it("closes the connection when its service is deleted", async () => {
    const { h, downstream } = setup();
    await h.request(request(), ctx());
    await delay(50);
    await ns.unregister(service("blue"), ctx());
    await eventually(() => downstream.closes === 1);
  });

  it("keeps a connection whose endpoint is missing from the registry (it may be re-registering)", async () => {
    const { h, downstream } = setup();
    await h.request(request(), ctx());
    await nse.unregister(endpoint("nse-blue", { color: "blue" }), ctx());
    await ns.register(service("blue"), ctx());
    await delay(100);
    assert.equal(downstream.closes, 0);
  });

  it("stops watching after Close", async () => {
    const { h, downstream } = setup();
    await h.request(request(), ctx());
    await h.close(request().connection!, ctx());
    assert.equal(downstream.closes, 1);
    await ns.register(service("green"), ctx());
    await delay(100);
    assert.equal(downstream.closes, 1);
  });

  it("keeps a service's watch a while after its last connection, for the next connection", async () => {
    let open = 0;
    let started = 0;
    const counted: NsRegistry = {
      register: (n, c) => ns.register(n, c),
      unregister: (n, c) => ns.unregister(n, c),
      async *find(q, c) {
        open++;
        started++;
        try {
          yield* ns.find(q, c);
        } finally {
          open--;
        }
      },
    };
    const downstream = count();
    const monitor = netSvcMonitorServer({ nsRegistry: counted, nseRegistry: nse, signal: life.signal, lingerMs: 200 });
    const h = bind(chain(beginServer(), metadataServer(), monitor, pickBlue, downstream));
    await h.request(request("a"), ctx());
    await eventually(() => open === 1);
    await h.close(request("a").connection!, ctx());
    await h.request(request("b"), ctx());
    await delay(50);
    assert.equal(started, 1, "the next connection to the service uses the same watch");
    await ns.register(service("green"), ctx());
    await eventually(() => downstream.closes === 2); // b is checked against the watch's answers
    await eventually(() => open === 0); // the watch stops once unused for the linger time
  });
});
