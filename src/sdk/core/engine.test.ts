// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { ConnectionSchema } from "../../api/gen/connection_pb.js";
import { NetworkServiceRequestSchema } from "../../api/gen/networkservice_pb.js";
import { NetworkServiceEndpointSchema } from "../../api/gen/registry_pb.js";
import { bindRegistry, collectRecords, type NseTypes, nseKind, registryChain } from "../registry/core/index.js";
import { recordingLogger } from "../testing/logger.js";
import { bind, chain, type NetworkServiceElement, passThrough } from "./chain.js";
import { CallContext } from "./context.js";
import { Code, NsmError } from "./errors.js";

const request = (id = "c1") =>
  create(NetworkServiceRequestSchema, { connection: create(ConnectionSchema, { id, networkService: "svc" }) });
const nse = (name: string) => create(NetworkServiceEndpointSchema, { name });

/** A non-async element that throws synchronously. */
const throwsSync: NetworkServiceElement = {
  name: "throwsSync",
  request: () => {
    throw new NsmError("sync", Code.Aborted);
  },
  close: () => {
    throw new NsmError("sync close", Code.Aborted);
  },
};

describe("chain engine: networkservice shape", () => {
  it("runs elements in order and ends at the tail, which returns the connection", async () => {
    const seen: string[] = [];
    const mark = (n: string): NetworkServiceElement => ({
      name: n,
      request: (req, ctx, next) => {
        seen.push(n);
        return next.request(req, ctx);
      },
      close: (conn, ctx, next) => next.close(conn, ctx),
    });
    const conn = await bind(chain(mark("a"), chain(mark("b"), mark("c")), passThrough())).request(
      request("x"),
      CallContext.create(),
    );
    assert.deepEqual(seen, ["a", "b", "c"]);
    assert.equal(conn.id, "x");
  });

  it("the tail rejects a request without a connection (InvalidArgument)", async () => {
    await assert.rejects(bind(passThrough()).request(create(NetworkServiceRequestSchema), CallContext.create()), {
      code: Code.InvalidArgument,
    });
  });

  it("turns a synchronous throw into a rejection, traced or not", async () => {
    for (const level of ["info", "trace"] as const) {
      const ctx = CallContext.create({ log: recordingLogger(level) });
      const h = bind(chain(passThrough(), throwsSync));
      const p = h.request(request(), ctx);
      assert.ok(p instanceof Promise);
      await assert.rejects(p, { code: Code.Aborted });
      await assert.rejects(h.close(request().connection!, ctx), { code: Code.Aborted });
    }
  });

  it("checks `requires` when binding, with the chain's label", () => {
    const needy: NetworkServiceElement = { ...passThrough("needy"), requires: ["begin"] };
    assert.throws(
      () => bind(chain(needy)),
      (e: unknown) =>
        e instanceof NsmError &&
        e.code === Code.FailedPrecondition &&
        e.reason === "chain-order" &&
        e.rawMessage === 'chain element "needy" must come after "begin"',
    );
    assert.doesNotThrow(() => bind(chain(passThrough("begin"), chain(needy))));
  });

  it("a chain used as an element continues with the next it is given", async () => {
    const inner = chain(passThrough("a"), passThrough("b"));
    const seen: string[] = [];
    const conn = await bind(inner, {
      request: async (req) => {
        seen.push("outer");
        return req.connection!;
      },
      close: async () => {},
    }).request(request("y"), CallContext.create());
    assert.deepEqual(seen, ["outer"]);
    assert.equal(conn.id, "y");
  });

  it("traces entry and exit of every element at trace level, with the connection id", async () => {
    const log = recordingLogger("trace");
    await bind(chain(passThrough("a"), passThrough("b"))).request(request("c9"), CallContext.create({ log }));
    assert.deepEqual(
      log.lines.map((l) => `${l.fields.element}:${l.msg}:${l.fields.connId}`),
      ["a:request:c9", "b:request:c9", "b:request done:c9", "a:request done:c9"],
    );
  });
});

describe("chain engine: registry shape", () => {
  const emits = (names: string[]) => ({
    name: "emits",
    register: async (rec: NseTypes["record"]) => rec,
    find: async function* () {
      for (const n of names) yield nseKind.response(nse(n), false);
    },
    unregister: async () => {},
  });

  it("a synchronous throw from find becomes a stream that fails when read", async () => {
    const h = bindRegistry<NseTypes>(
      registryChain({
        name: "bad",
        register: async (rec) => rec,
        find: () => {
          throw new NsmError("no find", Code.Unimplemented);
        },
        unregister: async () => {},
      }),
    );
    const stream = h.find(nseKind.query(undefined, false), CallContext.create());
    await assert.rejects(
      collectRecords(nseKind, { find: () => stream }, nseKind.query(undefined, false), CallContext.create()),
      {
        code: Code.Unimplemented,
      },
    );
  });

  it("traces find on entry and on its end, with the count of items", async () => {
    const log = recordingLogger("trace");
    const h = bindRegistry<NseTypes>(registryChain(emits(["a", "b"])));
    const found = await collectRecords(nseKind, h, nseKind.query(undefined, false), CallContext.create({ log }));
    assert.deepEqual(
      found.map((r) => r.name),
      ["a", "b"],
    );
    const find = log.lines.filter((l) => l.fields.element === "emits");
    assert.deepEqual(
      find.map((l) => [l.msg, l.fields.items]),
      [
        ["find", undefined],
        ["find done", 2],
      ],
    );
  });

  it("traces register with the record name and the registry chain's label in errors", async () => {
    const log = recordingLogger("trace");
    await bindRegistry<NseTypes>(registryChain(emits([]))).register(nse("n1"), CallContext.create({ log }));
    assert.deepEqual(
      log.lines.map((l) => [l.msg, l.fields.registryName]),
      [
        ["register", "n1"],
        ["register done", "n1"],
      ],
    );
    const needy = { ...emits([]), name: "needy", requires: ["begin"] };
    assert.throws(
      () => bindRegistry<NseTypes>(registryChain(needy)),
      (e: unknown) =>
        e instanceof NsmError && e.rawMessage === 'registry chain element "needy" must come after "begin"',
    );
  });
});
