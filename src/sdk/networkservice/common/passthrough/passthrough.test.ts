// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type NetworkServiceRequest, newMechanism, Param } from "../../../../api/index.js";
import { bind, chain, type NetworkServiceElement } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { type Counter, checkRequest, count } from "../../../testing/elements.js";
import { nscRequest } from "../../../testing/requests.js";
import { type ServedChain, serveChain } from "../../../testing/serve.js";
import { beginServer } from "../begin/index.js";
import { metadataServer } from "../metadata/index.js";
import { updatePathServer } from "../updatepath/index.js";
import { type PassthroughLinks, passthroughLinksOf, passthroughServer } from "./index.js";

function incomingRequest(): NetworkServiceRequest {
  const req = nscRequest("composition", "nsc-1");
  req.connection!.labels = { app: "alpine" };
  req.connection!.networkServiceEndpointName = "firewall";
  req.connection!.mechanism = newMechanism("LOCAL", "KERNEL", { [Param.NAME]: "in-1", [Param.INODE_URL]: "file:///a" });
  return req;
}

/** Records what passthrough gave the elements before it, after the next hop answered. */
function linksProbe(out: (PassthroughLinks | undefined)[]): NetworkServiceElement {
  return {
    name: "linksProbe",
    async request(req, ctx, next) {
      const conn = await next.request(req, ctx);
      out.push(passthroughLinksOf(ctx));
      return conn;
    },
    close: (conn, ctx, next) => next.close(conn, ctx),
  };
}

describe("passthrough (endpoint that is a client of the next hop)", () => {
  let nextHop: ServedChain;
  let counter: Counter;
  const seen: NetworkServiceRequest[] = [];
  before(async () => {
    counter = count();
    nextHop = await serveChain(
      "passthrough-next",
      updatePathServer("nsmgr"),
      beginServer(),
      checkRequest((r) => {
        seen.push(r);
      }),
      {
        name: "chooseEndpoint",
        request: (req, ctx, next) =>
          next.request({ ...req, connection: { ...req.connection!, networkServiceEndpointName: "next-nse" } }, ctx),
        close: (conn, ctx, next) => next.close(conn, ctx),
      },
      counter,
    );
  });
  after(() => nextHop.stop());

  it("requests the same service with its own labels and path segment, on its own KERNEL interface", async () => {
    const links: (PassthroughLinks | undefined)[] = [];
    const hop = bind(
      chain(
        updatePathServer("firewall"),
        metadataServer(),
        linksProbe(links),
        passthroughServer({
          name: "firewall",
          connectTo: nextHop.url,
          labels: { app: "firewall" },
          inodeUrl: "file:///proc/1/ns/net",
          outgoingPrefix: "fwo-",
        }),
      ),
    );
    const conn = await hop.request(incomingRequest(), CallContext.create());
    const down = seen.at(-1)!;
    assert.equal(down.connection!.networkService, "composition");
    assert.deepEqual(down.connection!.labels, { app: "firewall" });
    assert.equal(down.connection!.networkServiceEndpointName, "", "nsmgr chooses the next endpoint, not this one");
    assert.equal(down.connection!.mechanism, undefined, "the incoming mechanism stays on this side");
    const pref = down.mechanismPreferences.find((m) => m.type === "KERNEL")!;
    assert.match(pref.parameters[Param.NAME]!, /^fwo-[A-Za-z0-9]{11}$/);
    assert.equal(pref.parameters[Param.INODE_URL], "file:///proc/1/ns/net");
    assert.deepEqual(
      down.connection!.path!.pathSegments.map((s) => s.name),
      ["firewall", "nsmgr"],
    );
    assert.equal(conn.mechanism?.parameters[Param.NAME], "in-1");
    assert.deepEqual(conn.labels, { app: "alpine" });
    assert.equal(conn.networkServiceEndpointName, "firewall");
    assert.deepEqual(links, [{ incoming: "in-1", outgoing: pref.parameters[Param.NAME] }]);

    // A refresh keeps the outgoing interface name.
    await hop.request({ ...incomingRequest(), connection: conn }, CallContext.create());
    assert.equal(links[1]?.outgoing, links[0]?.outgoing);
    assert.equal(
      seen.at(-1)!.connection!.networkServiceEndpointName,
      "next-nse",
      "a refresh stays on the chosen next endpoint",
    );

    const closes = counter.closes;
    await hop.close(conn, CallContext.create());
    assert.equal(counter.closes, closes + 1, "Close reaches the next hop");
  });

  it("a next hop that is down fails the Request with Unavailable", async () => {
    const hop = bind(
      chain(
        updatePathServer("firewall"),
        metadataServer(),
        passthroughServer({
          name: "firewall",
          connectTo: "unix:///nonexistent/nsm.sock",
          dialTimeoutMs: 200,
          labels: {},
          inodeUrl: "file:///proc/1/ns/net",
        }),
      ),
    );
    await assert.rejects(hop.request(incomingRequest(), CallContext.create()), { code: 14 });
  });
});
