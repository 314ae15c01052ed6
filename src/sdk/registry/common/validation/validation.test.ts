// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { NetworkServiceEndpointSchema, NetworkServiceSchema } from "../../../../api/gen/registry_pb.js";
import { Code, type NsmError } from "../../../core/errors.js";
import { testContext } from "../../../testing/async.js";
import { bindRegistry, collectRecords, nseKind, nsKind, registryChain } from "../../core/index.js";
import { registryMemory } from "../memory/index.js";
import { nsmUrlProblem, registryValidation } from "./index.js";

const invalid = (e: NsmError) => e.code === Code.InvalidArgument;

describe("registryValidation", () => {
  it("rejects an NSE with an empty name or a bad url and stores nothing", async () => {
    const { ctx, cancel } = testContext();
    const h = bindRegistry(registryChain(registryValidation(nseKind), registryMemory(nseKind)));
    const nse = (name: string, url: string) => create(NetworkServiceEndpointSchema, { name, url });
    await assert.rejects(h.register(nse("", "unix:///a.sock"), ctx), invalid);
    for (const url of ["not a url", "http://x:1", "unix://relative", "tcp://", "inode://a/b", "tcp:///nohost"]) {
      await assert.rejects(h.register(nse("a", url), ctx), invalid, url);
    }
    await assert.rejects(h.unregister(nse("", ""), ctx), invalid);
    assert.deepEqual(await collectRecords(nseKind, h, nseKind.query(undefined, false), ctx), []);
    for (const url of [
      "unix:///var/lib/nsm/nsm.io.sock",
      "tcp://10.0.0.1:5001",
      "tcp://[::1]:5001",
      "inode://4/4026531992",
      "",
    ]) {
      await h.register(nse(`ok-${url}`, url), ctx);
    }
    assert.equal((await collectRecords(nseKind, h, nseKind.query(undefined, false), ctx)).length, 5);
    cancel();
  });

  it("rejects a NetworkService with an empty name", async () => {
    const { ctx, cancel } = testContext();
    const h = bindRegistry(registryChain(registryValidation(nsKind), registryMemory(nsKind)));
    await assert.rejects(h.register(create(NetworkServiceSchema, { payload: "IP" }), ctx), invalid);
    assert.deepEqual(await collectRecords(nsKind, h, nsKind.query(undefined, false), ctx), []);
    cancel();
  });

  it("explains what is wrong with a url", () => {
    assert.equal(nsmUrlProblem("unix:///x.sock"), undefined);
    assert.match(nsmUrlProblem("ftp://x")!, /unsupported scheme ftp/);
  });
});
