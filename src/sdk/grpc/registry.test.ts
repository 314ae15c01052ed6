// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { NetworkServiceEndpointSchema, NetworkServiceSchema } from "../../api/gen/registry_pb.js";
import { Code, type NsmError } from "../core/errors.js";
import { memoryRegistry } from "../registry/chains/memory/index.js";
import { collectRecords, nseKind, nsKind } from "../registry/core/index.js";
import { nextWithin, testContext } from "../testing/registry.js";
import { registryClients, serveRegistry } from "./registry.js";

const nse = (name: string, url: string) =>
  create(NetworkServiceEndpointSchema, { name, url, networkServiceNames: ["icmp-responder"] });

function listen(server: grpc.Server, address: string): Promise<void> {
  return new Promise((resolve, reject) =>
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
  );
}

describe("registry over gRPC (unix socket)", () => {
  let dir = "";
  let server: grpc.Server;
  let channel: grpc.Client;
  const life = new AbortController();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "nsm-registry-"));
    const address = `unix:${join(dir, "registry.sock")}`;
    server = new grpc.Server();
    serveRegistry(server, memoryRegistry({ signal: life.signal }));
    await listen(server, address);
    channel = new grpc.Client(address, grpc.credentials.createInsecure());
  });

  after(async () => {
    channel.close();
    server.forceShutdown();
    life.abort();
    await rm(dir, { recursive: true, force: true });
  });

  it("register, watch sees a second register, unregister shows deleted", async () => {
    const { ctx, cancel } = testContext();
    const { nse: client } = registryClients(channel);
    const first = await client.register(nse("nse-1", "tcp://10.0.0.1:5001"), ctx);
    assert.equal(first.name, "nse-1");
    assert.ok(first.expirationTime && timestampMs(first.expirationTime) > Date.now(), "the registry set an expiry");
    assert.ok(first.initialRegistrationTime, "the registry set the registration time");

    const watch = testContext();
    const it = client.find(nseKind.query(nse("", ""), true), watch.ctx)[Symbol.asyncIterator]();
    const current = (await nextWithin(it)).value!;
    assert.equal(current.networkServiceEndpoint?.name, "nse-1");
    assert.equal(current.deleted, false);

    await client.register(nse("nse-2", "tcp://10.0.0.2:5001"), ctx);
    const update = (await nextWithin(it)).value!;
    assert.equal(update.networkServiceEndpoint?.name, "nse-2");
    assert.equal(update.networkServiceEndpoint?.url, "tcp://10.0.0.2:5001");
    assert.equal(update.deleted, false);

    await client.unregister(nse("nse-1", ""), ctx);
    const deleted = (await nextWithin(it)).value!;
    assert.equal(deleted.networkServiceEndpoint?.name, "nse-1");
    assert.equal(deleted.deleted, true);

    watch.cancel();
    assert.equal((await nextWithin(it)).done, true);

    const left = await collectRecords(nseKind, client, nseKind.query(undefined, false), ctx);
    assert.deepEqual(
      left.map((r) => r.name),
      ["nse-2"],
    );
    await client.unregister(nse("nse-2", ""), ctx);
    cancel();
  });

  it("serves NetworkServices with the default payload", async () => {
    const { ctx, cancel } = testContext();
    const { ns } = registryClients(channel);
    const out = await ns.register(create(NetworkServiceSchema, { name: "icmp-responder" }), ctx);
    assert.equal(out.payload, "IP");
    const found = await collectRecords(
      nsKind,
      ns,
      nsKind.query(create(NetworkServiceSchema, { name: "icmp-responder" }), false),
      ctx,
    );
    assert.deepEqual(
      found.map((r) => r.payload),
      ["IP"],
    );
    await ns.unregister(out, ctx);
    cancel();
  });

  it("returns InvalidArgument for bad input and stores nothing", async () => {
    const { ctx, cancel } = testContext();
    const { nse: client } = registryClients(channel);
    await assert.rejects(
      client.register(nse("", "tcp://1.1.1.1:1"), ctx),
      (e: NsmError) => e.code === Code.InvalidArgument,
    );
    await assert.rejects(client.register(nse("bad", "nope"), ctx), (e: NsmError) => e.code === Code.InvalidArgument);
    assert.deepEqual(await collectRecords(nseKind, client, nseKind.query(undefined, false), ctx), []);
    cancel();
  });
});
