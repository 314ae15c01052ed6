// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  Cls,
  type Connection,
  ConnectionSchema,
  clone,
  create,
  type NetworkServiceRequest,
  NetworkServiceRequestSchema,
  newMechanism,
} from "../../../../api/index.js";
import { bind, chain, type NetworkServiceElement } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { metadataClient } from "../metadata/index.js";
import { mechanismTranslationClient } from "./index.js";

/** Plays the next hop: records what it gets and selects VXLAN with a VNI. */
function nextHop() {
  const requests: NetworkServiceRequest[] = [];
  const closes: Connection[] = [];
  const element: NetworkServiceElement = {
    name: "nextHop",
    request(req, ctx, next) {
      requests.push(req);
      const mechanism = req.connection?.mechanism ?? newMechanism(Cls.REMOTE, "VXLAN", { vni: "42" });
      const connection = clone(ConnectionSchema, req.connection!);
      connection.mechanism = mechanism;
      return next.request({ ...req, connection }, ctx);
    },
    close(conn, ctx, next) {
      closes.push(conn);
      return next.close(conn, ctx);
    },
  };
  return { requests, closes, element };
}

const incoming = () =>
  create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, {
      id: "c1",
      mechanism: newMechanism(Cls.LOCAL, "KERNEL", { name: "nsm-1" }),
    }),
    mechanismPreferences: [newMechanism(Cls.LOCAL, "KERNEL")],
  });

describe("mechanismTranslationClient", () => {
  it("hides the incoming mechanism downstream and restores it on the way back", async () => {
    const hop = nextHop();
    const h = bind(chain(metadataClient(), mechanismTranslationClient(), hop.element));
    const conn = await h.request(incoming(), CallContext.create());
    assert.equal(hop.requests[0]!.connection!.mechanism, undefined);
    assert.deepEqual(hop.requests[0]!.mechanismPreferences, []);
    assert.equal(conn.mechanism?.type, "KERNEL");
    assert.equal(conn.mechanism?.parameters.name, "nsm-1");
  });

  it("sends the remembered outgoing mechanism on refresh and on Close", async () => {
    const hop = nextHop();
    const h = bind(chain(metadataClient(), mechanismTranslationClient(), hop.element));
    const conn = await h.request(incoming(), CallContext.create());
    await h.request(incoming(), CallContext.create());
    assert.equal(hop.requests[1]!.connection!.mechanism?.type, "VXLAN");
    assert.equal(hop.requests[1]!.connection!.mechanism?.parameters.vni, "42");
    await h.close(conn, CallContext.create());
    assert.equal(hop.closes[0]!.mechanism?.type, "VXLAN");
    assert.equal(conn.mechanism?.type, "KERNEL", "the caller's connection is not changed");
  });
});
