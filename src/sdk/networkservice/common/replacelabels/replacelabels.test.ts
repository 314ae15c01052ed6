// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bind, chain } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { checkRequest } from "../../../testing/elements.js";
import { nscRequest } from "../../../testing/requests.js";
import { replaceLabelsClient } from "./index.js";

describe("replacelabels", () => {
  it("sends its own labels downstream and hands the incoming ones back", async () => {
    const seen: Record<string, string>[] = [];
    const req = nscRequest("svc", "c-1");
    req.connection!.labels = { app: "alpine" };
    const h = bind(
      chain(
        replaceLabelsClient({ app: "firewall" }),
        checkRequest((r) => {
          seen.push({ ...r.connection!.labels });
        }),
      ),
    );
    const conn = await h.request(req, CallContext.create());
    assert.deepEqual(seen, [{ app: "firewall" }]);
    assert.deepEqual(conn.labels, { app: "alpine" });
    assert.deepEqual(req.connection!.labels, { app: "alpine" }, "the caller's request is not changed");
  });
});
