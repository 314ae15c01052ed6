// SPDX-License-Identifier: Apache-2.0
// `nsm registry` with NSM_REGISTRY_BACKEND=etcd: two replicas on one etcd serve the same
// records, a watcher on one sees a Register made through the other, and a restarted replica
// still has everything.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { NetworkServiceEndpointSchema } from "../../src/api/gen/registry_pb.js";
import { CallContext } from "../../src/sdk/core/context.js";
import { collectRecords, nseKind } from "../../src/sdk/registry/core/index.js";
import { nextWithin } from "../../src/sdk/testing/registry.js";
import { type RegistryProcess, startRegistryProcess } from "./registry-cmd.js";
import { type EtcdServer, freePort, missingEtcd, startEtcd } from "./registry-etcd.js";

describe("nsm registry on etcd", { skip: missingEtcd() }, () => {
  let etcd: EtcdServer;
  const procs: RegistryProcess[] = [];
  before(async () => {
    etcd = await startEtcd();
  });
  after(async () => {
    for (const p of procs) await p.stop();
    await etcd?.stop();
  });

  it("two replicas serve the same records and a restart loses nothing", async () => {
    const env = { NSM_REGISTRY_BACKEND: "etcd", NSM_ETCD_ENDPOINTS: etcd.endpoint, NSM_ETCD_PREFIX: "/nsm-cmd-test" };
    const [pa, pb] = [await freePort(), await freePort()];
    const a = await startRegistryProcess(pa, env);
    procs.push(a);
    const b = await startRegistryProcess(pb, env);
    procs.push(b);
    const ctx = CallContext.create({ deadline: Date.now() + 20_000 });
    const watch = new AbortController();
    const wctx = CallContext.create({ signal: watch.signal });
    const it = b.clients.nse.find(nseKind.query(undefined, true), wctx)[Symbol.asyncIterator]();
    const first = nextWithin(it, 5000);
    await new Promise((r) => setTimeout(r, 500));
    const rec = create(NetworkServiceEndpointSchema, {
      name: "nse-1",
      networkServiceNames: ["svc"],
      url: "tcp://10.1.1.1:5001",
    });
    await a.clients.nse.register(rec, ctx);
    assert.equal((await first).value?.networkServiceEndpoint?.url, "tcp://10.1.1.1:5001");
    watch.abort();
    await a.stop();
    const a2 = await startRegistryProcess(pa, env);
    procs.push(a2);
    const found = await collectRecords(nseKind, a2.clients.nse, nseKind.query(undefined, false), ctx);
    assert.deepEqual(
      found.map((r) => r.name),
      ["nse-1"],
    );
    assert.match(a2.output(), /registry on etcd/);
  });
});
