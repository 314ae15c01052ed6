// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import {
  ConnectionSchema,
  create,
  ipam,
  MonitorConnection,
  NetworkService,
  NetworkServiceRequestSchema,
  registry,
} from "../../api/index.js";
import { CallContext } from "../core/context.js";
import { Code, invalidArgument, NsmError } from "../core/errors.js";
import { addService, grpcClient, grpcDefinition, MAX_STATUS_DETAILS } from "./service.js";

describe("grpcDefinition", () => {
  it("uses the upstream method paths", () => {
    const paths = (svc: Parameters<typeof grpcDefinition>[0]) => Object.values(grpcDefinition(svc)).map((m) => m.path);
    assert.deepEqual(paths(NetworkService), [
      "/networkservice.NetworkService/Request",
      "/networkservice.NetworkService/Close",
    ]);
    assert.deepEqual(paths(MonitorConnection), ["/connection.MonitorConnection/MonitorConnections"]);
    assert.deepEqual(paths(registry.NetworkServiceRegistry), [
      "/registry.NetworkServiceRegistry/Register",
      "/registry.NetworkServiceRegistry/Find",
      "/registry.NetworkServiceRegistry/Unregister",
    ]);
    assert.deepEqual(paths(registry.NetworkServiceEndpointRegistry), [
      "/registry.NetworkServiceEndpointRegistry/Register",
      "/registry.NetworkServiceEndpointRegistry/Find",
      "/registry.NetworkServiceEndpointRegistry/Unregister",
    ]);
    assert.deepEqual(paths(ipam.IPAM), ["/ipam.IPAM/ManagePrefixes"]);
    assert.equal(grpcDefinition(MonitorConnection).monitorConnections?.responseStream, true);
    assert.equal(grpcDefinition(ipam.IPAM).managePrefixes?.requestStream, true);
  });
});

describe("addService status messages", () => {
  // Found by test/fuzz: the registry quoted a 200 000-character URL back in its status.
  it("cuts a huge error message (one quoting the caller's input) to a bounded size", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nsm-status-"));
    const server = new grpc.Server();
    const huge = "x".repeat(200_000);
    addService(server, NetworkService, {
      request: async () => {
        throw invalidArgument(`netns URL "${huge}": not a URL`);
      },
      close: async () => {
        throw invalidArgument("short");
      },
    });
    const target = `unix://${join(dir, "s.sock")}`;
    await new Promise((resolve, reject) =>
      server.bindAsync(target, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    const channel = new grpc.Client(target, grpc.credentials.createInsecure());
    try {
      const client = grpcClient(NetworkService, channel);
      const ctx = CallContext.create({ deadline: Date.now() + 5000 });
      const err = await client.request(create(NetworkServiceRequestSchema), ctx).catch((e: unknown) => e);
      assert.ok(err instanceof NsmError && err.code === Code.InvalidArgument, String(err));
      assert.ok(err.rawMessage.length < MAX_STATUS_DETAILS + 64, `details of ${err.rawMessage.length} characters`);
      assert.match(err.rawMessage, /^netns URL "xxx.*… \(19\d{4} more characters\)$/);
      const short = await client.close(create(ConnectionSchema), ctx).catch((e: unknown) => e);
      assert.equal((short as NsmError).rawMessage, "short");
    } finally {
      channel.close();
      server.forceShutdown();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
