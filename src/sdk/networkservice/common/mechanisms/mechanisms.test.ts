// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  Cls,
  type Connection,
  ConnectionSchema,
  create,
  MechanismType,
  NetworkServiceRequestSchema,
  newMechanism,
} from "../../../../api/index.js";
import { bind, chain, type NetworkServiceElement } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { Code, NsmError } from "../../../core/errors.js";
import { count } from "../../../testing/elements.js";
import { mechanismsClient, mechanismsServer } from "./index.js";

/** A mechanism sub-element that records its calls, marks the connection, and can fail. */
function recorder(type: string, log: string[], fail?: NsmError): NetworkServiceElement {
  return {
    name: `rec-${type}`,
    request(req, ctx, next) {
      log.push(`request ${type} (mechanism ${req.connection?.mechanism?.type ?? "none"})`);
      if (fail) return Promise.reject(fail);
      return next.request(
        { ...req, mechanismPreferences: [...req.mechanismPreferences, newMechanism(Cls.LOCAL, `${type}-added`)] },
        ctx,
      );
    },
    close(conn, ctx, next) {
      log.push(`close ${type}`);
      return next.close(conn, ctx);
    },
  };
}

const request = (mechanism?: string, preferences: string[] = []) =>
  create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, {
      id: "c1",
      mechanism: mechanism ? newMechanism(Cls.LOCAL, mechanism) : undefined,
    }),
    mechanismPreferences: preferences.map((t) => newMechanism(Cls.LOCAL, t)),
  });

const ctx = () => CallContext.create();

describe("mechanismsServer", () => {
  it("dispatches on the connection's mechanism type", async () => {
    const log: string[] = [];
    const after = count();
    const h = bind(chain(mechanismsServer({ KERNEL: recorder("KERNEL", log), NOOP: recorder("NOOP", log) }), after));
    const conn = await h.request(request("NOOP", ["KERNEL"]), ctx());
    assert.deepEqual(log, ["request NOOP (mechanism NOOP)"]);
    assert.equal(conn.mechanism?.type, "NOOP");
    assert.equal(after.requests, 1, "the sub-element's next is the rest of the chain");
    await h.close(conn, ctx());
    assert.deepEqual(log.at(-1), "close NOOP");
    assert.equal(after.closes, 1);
  });

  it("tries preferences in order, setting each as the connection mechanism", async () => {
    const log: string[] = [];
    const h = bind(
      mechanismsServer({
        KERNEL: recorder("KERNEL", log, new NsmError("no netns", Code.Internal)),
        NOOP: recorder("NOOP", log),
      }),
    );
    const conn = await h.request(request(undefined, ["VXLAN", "KERNEL", "NOOP"]), ctx());
    assert.deepEqual(log, ["request KERNEL (mechanism KERNEL)", "request NOOP (mechanism NOOP)"]);
    assert.equal(conn.mechanism?.type, "NOOP");
  });

  it("is InvalidArgument listing the types when no preference is supported", async () => {
    const h = bind(mechanismsServer({ KERNEL: recorder("KERNEL", []) }));
    await assert.rejects(
      h.request(request(undefined, ["VXLAN", "WIREGUARD"]), ctx()),
      (e: NsmError) =>
        e.code === Code.InvalidArgument &&
        e.rawMessage === "cannot support any of the requested mechanisms: [VXLAN, WIREGUARD]",
    );
    await assert.rejects(h.request(request(undefined, []), ctx()), (e: NsmError) => e.code === Code.InvalidArgument);
  });

  it("is InvalidArgument for a connection mechanism of an unknown type", async () => {
    const h = bind(mechanismsServer({ KERNEL: recorder("KERNEL", []) }));
    await assert.rejects(
      h.request(request("MEMIF"), ctx()),
      (e: NsmError) => e.code === Code.InvalidArgument && e.message.includes("MEMIF"),
    );
  });

  it("returns the single failure as is, and the last code with every failure listed", async () => {
    const one = bind(
      mechanismsServer({ KERNEL: recorder("KERNEL", [], new NsmError("denied", Code.PermissionDenied)) }),
    );
    await assert.rejects(
      one.request(request(undefined, ["KERNEL"]), ctx()),
      (e: NsmError) => e.code === Code.PermissionDenied && e.rawMessage === "denied",
    );
    const two = bind(
      mechanismsServer({
        KERNEL: recorder("KERNEL", [], new NsmError("k failed", Code.Internal)),
        NOOP: recorder("NOOP", [], new NsmError("n failed", Code.Unavailable)),
      }),
    );
    await assert.rejects(
      two.request(request(undefined, ["KERNEL", "NOOP"]), ctx()),
      (e: NsmError) =>
        e.code === Code.Unavailable && e.message.includes("KERNEL: k failed") && e.message.includes("NOOP: n failed"),
    );
  });

  it("closes a connection of an unknown type through next", async () => {
    const after = count();
    const h = bind(chain(mechanismsServer({ KERNEL: recorder("KERNEL", []) }), after));
    await h.close(create(ConnectionSchema, { id: "c1" }), ctx());
    assert.equal(after.closes, 1);
  });

  it("does not mutate the caller's request", async () => {
    const h = bind(mechanismsServer({ KERNEL: recorder("KERNEL", []) }));
    const req = request(undefined, ["KERNEL"]);
    await h.request(req, ctx());
    assert.equal(req.connection!.mechanism, undefined);
  });
});

describe("mechanismsClient", () => {
  const prefsOf = (c: { lastRequest: { mechanismPreferences: { type: string }[] } | undefined }) =>
    c.lastRequest!.mechanismPreferences.map((m) => m.type);

  it("lets every sub-client add its preference on a first request", async () => {
    const log: string[] = [];
    const after = count();
    const h = bind(chain(mechanismsClient({ KERNEL: recorder("KERNEL", log), VXLAN: recorder("VXLAN", log) }), after));
    await h.request(request(), ctx());
    assert.deepEqual(prefsOf(after), ["KERNEL-added", "VXLAN-added"]);
  });

  it("tries the sub-clients of the known preferences in order", async () => {
    const log: string[] = [];
    const h = bind(
      mechanismsClient({
        KERNEL: recorder("KERNEL", log),
        VFIO: recorder("VFIO", log, new NsmError("no vfio", Code.Unavailable)),
      }),
    );
    await h.request(request(undefined, ["VFIO", "KERNEL"]), ctx());
    assert.deepEqual(log, ["request VFIO (mechanism none)", "request KERNEL (mechanism none)"]);
  });

  it("runs only the sub-client of the connection's mechanism on a refresh", async () => {
    const log: string[] = [];
    const h = bind(mechanismsClient({ KERNEL: recorder("KERNEL", log), VXLAN: recorder("VXLAN", log) }));
    const conn: Connection = await h.request(request(MechanismType.VXLAN), ctx());
    assert.deepEqual(log, ["request VXLAN (mechanism VXLAN)"]);
    await h.close(conn, ctx());
    assert.deepEqual(log.at(-1), "close VXLAN");
  });

  it("is InvalidArgument without any sub-client", async () => {
    const h = bind(mechanismsClient({}));
    await assert.rejects(
      h.request(request(undefined, ["KERNEL"]), ctx()),
      (e: NsmError) => e.code === Code.InvalidArgument,
    );
  });
});
