// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import {
  NetworkServiceEndpointSchema,
  NetworkServiceLabelsSchema,
  NetworkServiceSchema,
} from "../../../../api/gen/registry_pb.js";
import { delay, testContext } from "../../../testing/async.js";
import { collectRecords, nseKind, nseRegistryFromChain, nsKind, nsRegistryFromChain } from "../../core/index.js";
import { memoryRegistry } from "../memory/index.js";
import { nsmgrRegistry } from "./index.js";

const NSMGR = "tcp://10.0.0.5:5001";
const forwarder = () =>
  create(NetworkServiceEndpointSchema, {
    name: "fwd-1",
    url: "unix:///run/fwd.sock",
    networkServiceNames: ["forwarder"],
    networkServiceLabels: { forwarder: create(NetworkServiceLabelsSchema, { labels: { p2p: "true" } }) },
  });
const byNsmgrUrl = nseKind.query(
  create(NetworkServiceEndpointSchema, { networkServiceNames: ["forwarder"], url: NSMGR }),
  false,
);

describe("nsmgrRegistry", () => {
  it("with a remote registry: publishes its own URL there and returns real URLs locally", async () => {
    const { ctx, cancel } = testContext();
    const life = new AbortController();
    const remote = memoryRegistry({ signal: life.signal });
    const nsmgr = nsmgrRegistry({
      nsmgrUrl: NSMGR,
      registry: { ns: nsRegistryFromChain(remote.ns), nse: nseRegistryFromChain(remote.nse) },
      clientInfo: { nodeName: "node-1" },
      signal: life.signal,
    });
    const out = await nsmgr.nse.register(forwarder(), ctx);
    assert.equal(out.url, "unix:///run/fwd.sock");
    assert.ok(out.expirationTime);

    const inRegistry = await collectRecords(nseKind, remote.nse, nseKind.query(undefined, false), ctx);
    assert.equal(inRegistry[0]?.url, NSMGR);
    assert.deepEqual(inRegistry[0]?.networkServiceLabels.forwarder?.labels, { p2p: "true", nodeName: "node-1" });

    const local = await collectRecords(nseKind, nsmgr.nse, byNsmgrUrl, ctx);
    assert.deepEqual(
      local.map((r) => r.url),
      ["unix:///run/fwd.sock"],
    );

    await nsmgr.ns.register(create(NetworkServiceSchema, { name: "svc" }), ctx);
    const nss = await collectRecords(nsKind, remote.ns, nsKind.query(undefined, false), ctx);
    assert.deepEqual(
      nss.map((n) => `${n.name} ${n.payload}`),
      ["svc IP"],
    );

    await nsmgr.nse.unregister(forwarder(), ctx);
    assert.deepEqual(await collectRecords(nseKind, remote.nse, nseKind.query(undefined, false), ctx), []);
    life.abort();
    cancel();
  });

  it("without a remote registry: keeps records itself, finds forwarders by its URL, expires them", async () => {
    const { ctx, cancel } = testContext();
    const life = new AbortController();
    const nsmgr = nsmgrRegistry({ nsmgrUrl: NSMGR, expirationMs: 150, signal: life.signal });
    await nsmgr.nse.register(forwarder(), ctx);
    const found = await collectRecords(nseKind, nsmgr.nse, byNsmgrUrl, ctx);
    assert.deepEqual(
      found.map((r) => `${r.name} ${r.url}`),
      ["fwd-1 unix:///run/fwd.sock"],
    );
    const ns = await nsmgr.ns.register(create(NetworkServiceSchema, { name: "svc" }), ctx);
    assert.equal(ns.payload, "IP");
    await delay(250);
    assert.deepEqual(await collectRecords(nseKind, nsmgr.nse, nseKind.query(undefined, false), ctx), []);
    life.abort();
    cancel();
  });
});
