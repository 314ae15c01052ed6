// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConnectionSchema, create, NetworkServiceRequestSchema } from "../../../../api/index.js";
import { bind, chain } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import type { Logger } from "../../../core/logger.js";
import { updatePathServer } from "../updatepath/index.js";
import { connLogServer } from "./index.js";

/** A logger that records each line's bound fields and message. */
function capture(lines: Record<string, unknown>[], bound: Record<string, unknown> = {}): Logger {
  const at = (fields: Record<string, unknown> | string, msg?: string) =>
    lines.push(typeof fields === "string" ? { ...bound, msg: fields } : { ...bound, ...fields, msg });
  return {
    trace: at,
    debug: at,
    info: at,
    warn: at,
    error: at,
    child: (b) => capture(lines, { ...bound, ...b }),
    isLevelEnabled: () => true,
    level: "trace",
  } as Logger;
}

describe("connLogServer", () => {
  it("binds the client's connection id to every line logged below it, on Request and Close", async () => {
    const lines: Record<string, unknown>[] = [];
    const h = bind(
      chain(connLogServer(), updatePathServer("nsmgr"), {
        request: async (r, ctx, next) => {
          ctx.log.info({ connId: r.connection?.id }, "selected a forwarder");
          return next.request(r, ctx);
        },
        close: async (c, ctx, next) => {
          ctx.log.warn("closing");
          return next.close(c, ctx);
        },
      }),
    );
    const req = create(NetworkServiceRequestSchema, {
      connection: create(ConnectionSchema, {
        id: "alpine-0",
        path: { index: 0, pathSegments: [{ name: "alpine", id: "alpine-0" }] },
      }),
    });
    const ctx = CallContext.create({ log: capture(lines) });
    const conn = await h.request(req, ctx);
    await h.close(conn, ctx);
    const mine = lines.filter((l) => l.msg === "selected a forwarder" || l.msg === "closing");
    assert.equal(mine.length, 2);
    for (const l of mine) assert.equal(l.connection, "alpine-0", JSON.stringify(l));
    // The hop's own id differs from the end-to-end id, and both are there.
    assert.notEqual(mine[0]!.connId, "alpine-0");
    assert.equal(typeof mine[0]!.connId, "string");
  });

  it("uses the connection id when the path is still empty (the client's own chain)", async () => {
    const lines: Record<string, unknown>[] = [];
    const h = bind(
      chain(connLogServer(), {
        request: async (r, ctx, next) => {
          ctx.log.debug("asking");
          return next.request(r, ctx);
        },
        close: (c, ctx, next) => next.close(c, ctx),
      }),
    );
    await h.request(
      create(NetworkServiceRequestSchema, { connection: create(ConnectionSchema, { id: "nsc-1" }) }),
      CallContext.create({ log: capture(lines) }),
    );
    assert.equal(lines.find((l) => l.msg === "asking")?.connection, "nsc-1");
  });
});
