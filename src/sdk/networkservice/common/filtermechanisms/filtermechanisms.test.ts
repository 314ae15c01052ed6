// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Cls, ConnectionSchema, create, NetworkServiceRequestSchema, newMechanism } from "../../../../api/index.js";
import { bind, chain } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { Code, type NsmError } from "../../../core/errors.js";
import { count } from "../../../testing/elements.js";
import { clientUrlClient } from "../clienturl/index.js";
import { filterMechanismsClient } from "./index.js";

const request = () =>
  create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, { id: "c1" }),
    mechanismPreferences: [
      newMechanism(Cls.LOCAL, "KERNEL"),
      newMechanism(Cls.REMOTE, "VXLAN"),
      newMechanism(Cls.REMOTE, "WIREGUARD"),
    ],
  });

async function typesFor(url: string): Promise<string[]> {
  const after = count();
  await bind(chain(clientUrlClient(url), filterMechanismsClient(), after)).request(request(), CallContext.create());
  return after.lastRequest!.mechanismPreferences.map((m) => m.type);
}

describe("filterMechanismsClient", () => {
  it("keeps LOCAL preferences for unix and inode URLs", async () => {
    assert.deepEqual(await typesFor("unix:///var/lib/networkservicemesh/nsm.io.sock"), ["KERNEL"]);
    assert.deepEqual(await typesFor("inode://4/4026532000"), ["KERNEL"]);
  });
  it("keeps REMOTE preferences for network URLs", async () => {
    assert.deepEqual(await typesFor("tcp://10.0.0.2:5001"), ["VXLAN", "WIREGUARD"]);
  });
  it("is FailedPrecondition without a client URL", async () => {
    await assert.rejects(
      bind(filterMechanismsClient()).request(request(), CallContext.create()),
      (e: NsmError) => e.code === Code.FailedPrecondition,
    );
  });
});
