// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  NetworkServiceEndpointSchema,
  NetworkServiceLabelsSchema,
  NetworkServiceSchema,
} from "../../../../api/gen/registry_pb.js";
import { ConnectionSchema, create, NetworkServiceRequestSchema } from "../../../../api/index.js";
import { bind, chain, type NetworkServiceElement } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { Code, NsmError } from "../../../core/errors.js";
import { fakeNseRegistry, fakeNsRegistry } from "../../../testing/fake-registry.js";
import { clientUrlOf, withClientUrl } from "../clienturl/index.js";
import { discoverServer, withCandidates } from "../discover/index.js";
import { roundRobinServer } from "./index.js";

const nse = (name: string, ns = "svc") =>
  create(NetworkServiceEndpointSchema, {
    name,
    networkServiceNames: [ns],
    networkServiceLabels: { [ns]: create(NetworkServiceLabelsSchema, { labels: {} }) },
    url: `tcp://${name}:5001`,
  });

const request = (id: string, networkService = "svc") =>
  create(NetworkServiceRequestSchema, { connection: create(ConnectionSchema, { id, networkService }) });

/** The element after roundrobin: records where each request went, failing for the given endpoints. */
function endpointSpy(failing: Set<string> = new Set()) {
  const tries: { nse: string; url: string | undefined }[] = [];
  const element: NetworkServiceElement = {
    name: "spy",
    request(req, ctx, next) {
      const name = req.connection!.networkServiceEndpointName;
      tries.push({ nse: name, url: clientUrlOf(ctx) });
      if (failing.has(name)) return Promise.reject(new NsmError(`${name} is down`, Code.Unavailable));
      return next.request(req, ctx);
    },
    close: (conn, ctx, next) => next.close(conn, ctx),
  };
  return { tries, element };
}

describe("roundRobinServer", () => {
  it("spreads 4 requests evenly over 2 endpoints (through discover)", async () => {
    const nsRegistry = fakeNsRegistry([create(NetworkServiceSchema, { name: "svc", payload: "IP" })]);
    const nseRegistry = fakeNseRegistry([nse("nse-1"), nse("nse-2")]);
    const spy = endpointSpy();
    const h = bind(chain(discoverServer({ nsRegistry, nseRegistry }), roundRobinServer(), spy.element));
    const chosen: string[] = [];
    for (let i = 0; i < 4; i++)
      chosen.push((await h.request(request(`c${i}`), CallContext.create())).networkServiceEndpointName);
    assert.deepEqual(chosen, ["nse-1", "nse-2", "nse-1", "nse-2"]);
    assert.deepEqual(
      spy.tries.map((t) => t.url),
      ["tcp://nse-1:5001", "tcp://nse-2:5001", "tcp://nse-1:5001", "tcp://nse-2:5001"],
    );
  });

  it("keeps one counter per network service", async () => {
    const spy = endpointSpy();
    const h = bind(chain(roundRobinServer(), spy.element));
    const ctxFor = (ns: string) =>
      withCandidates(CallContext.create(), {
        networkService: create(NetworkServiceSchema, { name: ns }),
        endpoints: [nse(`${ns}-1`, ns), nse(`${ns}-2`, ns)],
      });
    await h.request(request("a1", "a"), ctxFor("a"));
    await h.request(request("b1", "b"), ctxFor("b"));
    await h.request(request("a2", "a"), ctxFor("a"));
    assert.deepEqual(
      spy.tries.map((t) => t.nse),
      ["a-1", "b-1", "a-2"],
    );
  });

  it("moves on to the next candidate when one fails, trying each once", async () => {
    const spy = endpointSpy(new Set(["nse-1"]));
    const h = bind(chain(roundRobinServer(), spy.element));
    const ctx = withCandidates(CallContext.create(), {
      networkService: create(NetworkServiceSchema, { name: "svc" }),
      endpoints: [nse("nse-1"), nse("nse-2"), nse("nse-3")],
    });
    const conn = await h.request(request("c1"), ctx);
    assert.equal(conn.networkServiceEndpointName, "nse-2");
    assert.deepEqual(
      spy.tries.map((t) => t.nse),
      ["nse-1", "nse-2"],
    );
  });

  it("fails with the last error's code when every candidate fails", async () => {
    const spy = endpointSpy(new Set(["nse-1", "nse-2"]));
    const h = bind(chain(roundRobinServer(), spy.element));
    const ctx = withCandidates(CallContext.create(), {
      networkService: create(NetworkServiceSchema, { name: "svc" }),
      endpoints: [nse("nse-1"), nse("nse-2")],
    });
    await assert.rejects(
      h.request(request("c1"), ctx),
      (e: NsmError) =>
        e.code === Code.Unavailable && e.message.includes("nse-1 is down") && e.message.includes("nse-2 is down"),
    );
    assert.equal(spy.tries.length, 2);
  });

  it("is NotFound without candidates", async () => {
    const h = bind(roundRobinServer());
    await assert.rejects(
      h.request(request("c1"), CallContext.create()),
      (e: NsmError) => e.code === Code.NotFound && e.message.includes('"svc"'),
    );
  });

  it("does nothing when the endpoint is already chosen", async () => {
    const spy = endpointSpy();
    const h = bind(chain(roundRobinServer(), spy.element));
    await h.request(request("c1"), withClientUrl(CallContext.create(), "tcp://chosen:1"));
    assert.deepEqual(spy.tries, [{ nse: "", url: "tcp://chosen:1" }]);
  });

  it("does not mutate the caller's request", async () => {
    const h = bind(roundRobinServer());
    const req = request("c1");
    const ctx = withCandidates(CallContext.create(), {
      networkService: create(NetworkServiceSchema, { name: "svc" }),
      endpoints: [nse("nse-1")],
    });
    const conn = await h.request(req, ctx);
    assert.equal(conn.networkServiceEndpointName, "nse-1");
    assert.equal(req.connection!.networkServiceEndpointName, "");
  });
});
