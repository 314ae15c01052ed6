// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { newMechanism, Param } from "../../../api/index.js";
import { bind, chain } from "../../../sdk/core/chain.js";
import { CallContext } from "../../../sdk/core/context.js";
import { metadataServer } from "../../../sdk/networkservice/common/metadata/index.js";
import { passthroughServer } from "../../../sdk/networkservice/common/passthrough/index.js";
import { updatePathServer } from "../../../sdk/networkservice/common/updatepath/index.js";
import { checkRequest } from "../../../sdk/testing/elements.js";
import { nscRequest } from "../../../sdk/testing/requests.js";
import { type ServedChain, serveChain } from "../../../sdk/testing/serve.js";
import { createFakeKernel, type FakeKernel } from "../../fake.js";
import { bridgeNameOf, kernelPassthroughServer } from "./index.js";

describe("kernel passthrough: the two interfaces of a hop on one bridge", () => {
  let kernel: FakeKernel;
  let nextHop: ServedChain;
  before(async () => {
    kernel = createFakeKernel();
    // The next hop's forwarder makes the outgoing interface in this hop's netns before answering.
    nextHop = await serveChain(
      "kpt-next",
      updatePathServer("nsmgr"),
      checkRequest((r) => {
        const name = r.mechanismPreferences.find((m) => m.type === "KERNEL")!.parameters[Param.NAME]!;
        return kernel.createVeth(undefined, { name, peer: { name: `p-${name.slice(4)}` } });
      }),
    );
  });
  after(() => nextHop.stop());

  const hop = () =>
    bind(
      chain(
        updatePathServer("fw"),
        metadataServer(),
        kernelPassthroughServer({ kernel, pollMs: 2, attachTimeoutMs: 2000 }),
        passthroughServer({
          name: "fw",
          connectTo: nextHop.url,
          labels: {},
          inodeUrl: "file:///x",
          outgoingPrefix: "fwo-",
        }),
      ),
    );

  it("bridges the outgoing interface at once and the incoming one when it appears; Close removes the bridge", async () => {
    const h = hop();
    const req = nscRequest("svc", "c-1");
    req.connection!.mechanism = newMechanism("LOCAL", "KERNEL", { [Param.NAME]: "in-1" });
    const conn = await h.request(req, CallContext.create());
    const bridge = await kernel.getLink(undefined, bridgeNameOf(conn.id));
    assert.equal(bridge.kind, "bridge");
    const out = (await kernel.listLinks(undefined)).find((l) => l.name.startsWith("fwo-"))!;
    assert.equal(out.masterIndex, bridge.index);
    // The previous hop's forwarder makes the incoming interface after the Request returned.
    await kernel.createVeth(undefined, { name: "in-1", peer: { name: "in-1-peer" } });
    for (let i = 0; i < 200 && (await kernel.getLink(undefined, "in-1")).masterIndex === undefined; i++)
      await new Promise((r) => setTimeout(r, 5));
    assert.equal((await kernel.getLink(undefined, "in-1")).masterIndex, bridge.index);

    await h.close(conn, CallContext.create());
    assert.equal(await kernel.findLink(undefined, bridgeNameOf(conn.id)), undefined);
  });

  it("bridge names are valid interface names and differ per connection", () => {
    assert.match(bridgeNameOf("a"), /^ptb-[0-9a-f]{11}$/);
    assert.notEqual(bridgeNameOf("a"), bridgeNameOf("b"));
  });
});
