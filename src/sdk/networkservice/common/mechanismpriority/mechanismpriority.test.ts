// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Cls, ConnectionSchema, create, NetworkServiceRequestSchema, newMechanism } from "../../../../api/index.js";
import { bind, chain } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { count } from "../../../testing/elements.js";
import { mechanismPriorityClient } from "./index.js";

async function order(types: string[], priorities: string[]): Promise<string[]> {
  const after = count();
  const req = create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, { id: "c1" }),
    mechanismPreferences: types.map((t, i) => newMechanism(Cls.REMOTE, t, { i: String(i) })),
  });
  await bind(chain(mechanismPriorityClient({ priorities }), after)).request(req, CallContext.create());
  return after.lastRequest!.mechanismPreferences.map((m) => `${m.type}${m.parameters.i}`);
}

describe("mechanismPriorityClient", () => {
  it("puts the listed types first, in the listed order, the rest after in their order", async () => {
    assert.deepEqual(await order(["VXLAN", "KERNEL", "WIREGUARD", "MEMIF"], ["wireguard", "VXLAN"]), [
      "WIREGUARD2",
      "VXLAN0",
      "KERNEL1",
      "MEMIF3",
    ]);
  });
  it("is stable among preferences of the same type", async () => {
    assert.deepEqual(await order(["VXLAN", "KERNEL", "VXLAN"], ["VXLAN"]), ["VXLAN0", "VXLAN2", "KERNEL1"]);
  });
  it("changes nothing without priorities", async () => {
    assert.deepEqual(await order(["VXLAN", "KERNEL"], []), ["VXLAN0", "KERNEL1"]);
  });
});
