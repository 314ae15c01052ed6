// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { NetworkServiceEndpointSchema, NetworkServiceLabelsSchema } from "../../../../api/gen/registry_pb.js";
import { registryClients, serveRegistry } from "../../../grpc/registry.js";
import { delay, testContext } from "../../../testing/async.js";
import { collectRecords, nseKind } from "../../core/index.js";
import { memoryRegistry } from "../memory/index.js";
import { nsmgrRegistry } from "../nsmgr/index.js";
import { registryClient } from "./index.js";

function listen(server: grpc.Server, address: string): Promise<void> {
  return new Promise((resolve, reject) =>
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
  );
}

describe("registryClient", () => {
  it("keeps an NSE registered through nsmgr to the registry over gRPC, and unregisters it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "nsm-registry-client-"));
    const life = new AbortController();
    const registryAddr = `unix:${join(dir, "registry.sock")}`;
    const nsmgrAddr = `unix:${join(dir, "nsmgr.sock")}`;
    const nsmgrUrl = `unix://${join(dir, "nsmgr.sock")}`;
    const registryServer = new grpc.Server();
    const nsmgrServer = new grpc.Server();
    let toRegistry: grpc.Client | undefined;
    let toNsmgr: grpc.Client | undefined;
    const { ctx, cancel } = testContext();
    try {
      const registry = memoryRegistry({ expirationMs: 400, signal: life.signal });
      serveRegistry(registryServer, registry);
      await listen(registryServer, registryAddr);
      toRegistry = new grpc.Client(registryAddr, grpc.credentials.createInsecure());
      serveRegistry(
        nsmgrServer,
        nsmgrRegistry({ nsmgrUrl, registry: registryClients(toRegistry), signal: life.signal }),
      );
      await listen(nsmgrServer, nsmgrAddr);
      toNsmgr = new grpc.Client(nsmgrAddr, grpc.credentials.createInsecure());

      const client = registryClient({
        registry: registryClients(toNsmgr),
        clientInfo: { podName: "nse-pod" },
        signal: life.signal,
      });
      const rec = create(NetworkServiceEndpointSchema, {
        name: "nse-1",
        url: `unix://${join(dir, "nse.sock")}`,
        networkServiceNames: ["icmp-responder"],
        networkServiceLabels: { "icmp-responder": create(NetworkServiceLabelsSchema, { labels: { app: "icmp" } }) },
      });
      const out = await client.nse.register(rec, ctx);
      assert.equal(out.url, rec.url);
      await delay(900); // more than twice the registry's lifetime: refresh kept it alive
      const stored = await collectRecords(nseKind, registry.nse, nseKind.query(undefined, false), ctx);
      assert.deepEqual(
        stored.map((r) => `${r.name} ${r.url} ${r.networkServiceLabels["icmp-responder"]?.labels.podName}`),
        [`nse-1 ${nsmgrUrl} nse-pod`],
      );
      await client.nse.unregister(rec, ctx);
      assert.deepEqual(await collectRecords(nseKind, registry.nse, nseKind.query(undefined, false), ctx), []);
    } finally {
      cancel();
      life.abort();
      toNsmgr?.close();
      toRegistry?.close();
      nsmgrServer.forceShutdown();
      registryServer.forceShutdown();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
