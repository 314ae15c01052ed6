// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import {
  ConnectionEventSchema,
  ConnectionEventType,
  ConnectionSchema,
  create,
  ipam,
  MonitorConnection,
  MonitorScopeSelectorSchema,
  NetworkService,
  NetworkServiceRequestSchema,
  registry,
} from "../../api/index.js";
import { CallContext } from "../core/context.js";
import { Code, invalidArgument, NsmError } from "../core/errors.js";
import { closeChannel, dialChannel } from "./dial.js";
import { bindUrls, shutdown } from "./listen.js";
import { addService, grpcClient, grpcDefinition, grpcPeerKey, MAX_STATUS_DETAILS } from "./service.js";

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

describe("shutdown", () => {
  it("ends open streams at once with UNAVAILABLE instead of waiting out the grace period", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nsm-grpc-"));
    const server = new grpc.Server();
    let served = 0;
    addService(server, MonitorConnection, {
      async *monitorConnections() {
        served++;
        yield create(ConnectionEventSchema, { type: ConnectionEventType.INITIAL_STATE_TRANSFER });
        await new Promise(() => {}); // a monitor waits for events that never come
      },
    });
    const [url] = await bindUrls(server, [`unix://${join(dir, "s.sock")}`]);
    const channel = dialChannel(url!);
    try {
      const stream = grpcClient(MonitorConnection, channel).monitorConnections(
        create(MonitorScopeSelectorSchema, {}),
        CallContext.create(),
      );
      const it = stream[Symbol.asyncIterator]();
      assert.equal((await it.next()).value?.type, ConnectionEventType.INITIAL_STATE_TRANSFER);
      const started = Date.now();
      await shutdown(server, 5000);
      assert.ok(Date.now() - started < 1000, `shutdown took ${Date.now() - started} ms with one stream open`);
      await assert.rejects(it.next(), (err: unknown) => err instanceof NsmError && err.code === Code.Unavailable);
      assert.equal(served, 1);
    } finally {
      closeChannel(channel);
      server.forceShutdown();
      rmSync(dir, { recursive: true, force: true });
    }
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
    const channel = await bindAndDial(server, dir);
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

describe("addService response headers", () => {
  it("sends the headers an element set, and none when no element set any", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nsm-headers-"));
    const server = new grpc.Server();
    addService(server, NetworkService, {
      request: async (req, ctx) => {
        if (req.connection?.id === "with") ctx.get(grpcPeerKey)!.responseHeaders.set("x-test", "yes");
        return create(ConnectionSchema, { id: req.connection?.id ?? "" });
      },
      close: async () => create(EmptySchema),
    });
    const channel = await bindAndDial(server, dir);
    try {
      const client = grpcClient(NetworkService, channel);
      const headerOf = async (id: string) => {
        let seen: grpc.MetadataValue[] = [];
        const req = create(NetworkServiceRequestSchema, { connection: { id } });
        await client.request(req, CallContext.create({ deadline: Date.now() + 5000 }), {
          onHeaders: (h) => {
            seen = h.get("x-test");
          },
        });
        return seen;
      };
      assert.deepEqual(await headerOf("with"), ["yes"]);
      assert.deepEqual(await headerOf("without"), []);
    } finally {
      channel.close();
      server.forceShutdown();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("server streams", () => {
  it("end with DEADLINE_EXCEEDED, never OK, when the server sees the deadline pass first", async () => {
    // The handler is driven directly with a stand-in call, so the server's deadline always comes
    // first (over a real connection the client's own timer usually wins the race).
    let handlers: grpc.UntypedServiceImplementation = {};
    const server = { addService: (_d: unknown, h: grpc.UntypedServiceImplementation) => (handlers = h) };
    addService(server as unknown as grpc.Server, MonitorConnection, {
      async *monitorConnections(_req, ctx) {
        yield create(ConnectionEventSchema, { type: ConnectionEventType.INITIAL_STATE_TRANSFER });
        // A watch that ends quietly once its context is done (as the registry's do).
        await new Promise((r) => ctx.signal.addEventListener("abort", r));
      },
    });
    const call = Object.assign(new EventEmitter(), {
      cancelled: false,
      request: create(MonitorScopeSelectorSchema, {}),
      metadata: new grpc.Metadata(),
      getDeadline: () => new Date(Date.now() + 100),
      getPeer: () => "test",
      getAuthContext: () => undefined,
      sendMetadata: () => {},
      written: 0,
      ended: false,
      write() {
        this.written++;
        return true;
      },
      end() {
        this.ended = true;
      },
    });
    const status = new Promise<grpc.StatusObject>((resolve, reject) => {
      call.on("error", resolve);
      // Also keeps the event loop alive: the deadline's own timer does not.
      setTimeout(() => reject(new Error(`no status; ended with OK: ${call.ended}`)), 2000);
    });
    (handlers.monitorConnections as (c: unknown) => void)(call);
    const s = await status;
    assert.equal(s.code, grpc.status.DEADLINE_EXCEEDED);
    assert.equal(call.written, 1);
    assert.equal(call.ended, false, "a stream cut short by its deadline never ends with OK");
  });
});

describe("incoming call context", () => {
  it("aborts at the call's deadline with a timeout (DeadlineExceeded), and carries the deadline", async () => {
    let handlers: grpc.UntypedServiceImplementation = {};
    const server = { addService: (_d: unknown, h: grpc.UntypedServiceImplementation) => (handlers = h) };
    const deadline = Date.now() + 100;
    let seenDeadline: number | undefined;
    addService(server as unknown as grpc.Server, NetworkService, {
      request: async (req, ctx) => {
        await new Promise((r) => ctx.signal.addEventListener("abort", r));
        seenDeadline = ctx.deadline;
        ctx.throwIfDone();
        return req.connection!;
      },
      close: async () => create(EmptySchema),
    });
    // The handler's answer also keeps the event loop alive: the deadline's own timer does not.
    const keepAlive = setTimeout(() => {}, 2000);
    const call = Object.assign(new EventEmitter(), {
      request: create(NetworkServiceRequestSchema, { connection: create(ConnectionSchema, { id: "c" }) }),
      metadata: new grpc.Metadata(),
      getDeadline: () => new Date(deadline),
      getPeer: () => "test",
      getAuthContext: () => undefined,
    });
    const answered = new Promise<grpc.StatusObject | null>((resolve) => {
      (handlers.request as (c: unknown, cb: (e: grpc.StatusObject | null) => void) => void)(call, resolve);
    });
    const err = await answered;
    assert.equal(err?.code, grpc.status.DEADLINE_EXCEEDED, "the handler's throwIfDone after the deadline");
    clearTimeout(keepAlive);
    assert.ok(Date.now() >= deadline - 5);
    assert.equal(seenDeadline, deadline);
  });
});

/** Serves `server` on a unix socket in `dir` (insecure) and dials it. */
async function bindAndDial(server: grpc.Server, dir: string): Promise<grpc.Client> {
  const target = `unix://${join(dir, "s.sock")}`;
  await new Promise((resolve, reject) =>
    server.bindAsync(target, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return new grpc.Client(target, grpc.credentials.createInsecure());
}
