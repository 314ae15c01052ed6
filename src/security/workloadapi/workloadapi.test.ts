// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { SpiffeWorkloadAPI, X509BundlesRequestSchema, X509SVIDRequestSchema } from "../../api/gen/workload_pb.js";
import { CallContext } from "../../sdk/core/context.js";
import { Code, type NsmError } from "../../sdk/core/errors.js";
import { closeChannel } from "../../sdk/grpc/dial.js";
import { grpcClient, outgoingMetadataKey } from "../../sdk/grpc/service.js";
import { type CertificateAuthority, chainsToBundle, createCa, spiffeIdOfCertificate } from "../index.js";
import { tempDir } from "../testing.js";
import {
  addonNetlinkRequester,
  createUnixPeerLookup,
  createX509Source,
  netnsInodeOf,
  parentPid,
  resolveByNetns,
  resolveByProcessTree,
  serveWorkloadApi,
  WORKLOAD_API_HEADER,
  type WorkloadApiServer,
} from "./index.js";

const addon = join(fileURLToPath(new URL("../../..", import.meta.url)), "native/build/Release/nsnl.node");
const skip = existsSync(addon) ? false : "the netlink addon is not built (npm run build:native)";

const ME = "spiffe://test.nsm/ns/default/pod/me";

async function firstMessage<T>(stream: AsyncIterable<T>): Promise<T> {
  for await (const m of stream) return m;
  throw new Error("the stream ended without a message");
}

describe("Workload API (embedded) over a unix socket", { skip }, () => {
  let ca: CertificateAuthority;
  let dir: ReturnType<typeof tempDir>;
  let server: WorkloadApiServer;
  const identities = new Map<number, string>();

  before(async () => {
    ca = await createCa({ trustDomain: "test.nsm" });
    dir = tempDir();
    server = await serveWorkloadApi({
      ca,
      socket: join(dir.path, "agent.sock"),
      resolveIdentity: (pid) => identities.get(pid),
      svidTtlMs: 2000,
    });
  });
  after(async () => {
    await server.close();
    dir.cleanup();
  });

  it("streams this process's SVID and bundle, then the rotated SVID", async () => {
    identities.set(process.pid, ME);
    const source = await createX509Source({ socket: server.endpoint });
    try {
      const first = source.current();
      assert.equal(first.svid.spiffeId, ME);
      assert.equal(spiffeIdOfCertificate(first.svid.certificates[0]!), ME);
      assert.equal(first.bundle.trustDomain, "test.nsm");
      assert.equal(chainsToBundle(first.svid.certificates[0]!, first.bundle), true);
      assert.equal(first.bundle.certificates[0]!.fingerprint256, ca.certificate.fingerprint256);
      const rotated = await new Promise<typeof first>((resolve) => source.subscribe(resolve));
      assert.equal(rotated.svid.spiffeId, ME);
      assert.notEqual(rotated.svid.certificates[0]!.serialNumber, first.svid.certificates[0]!.serialNumber);
      assert.ok(rotated.svid.notAfter > first.svid.notAfter);
      assert.ok(Date.now() < first.svid.notAfter.getTime(), "rotated at half of the lifetime, before expiry");
      assert.equal(source.current(), rotated);
    } finally {
      source.close();
      identities.delete(process.pid);
    }
  });

  it("rejects a request without the workload.spiffe.io header (InvalidArgument)", async () => {
    identities.set(process.pid, ME);
    const channel = new grpc.Client(server.endpoint, grpc.credentials.createInsecure());
    try {
      const stream = grpcClient(SpiffeWorkloadAPI, channel).fetchX509SVID(
        create(X509SVIDRequestSchema),
        CallContext.create({ deadline: Date.now() + 5000 }),
      );
      await assert.rejects(firstMessage(stream), (e: NsmError) => e.code === Code.InvalidArgument);
    } finally {
      closeChannel(channel);
      identities.delete(process.pid);
    }
  });

  it("gives a caller it cannot identify PermissionDenied", async () => {
    const channel = new grpc.Client(server.endpoint, grpc.credentials.createInsecure());
    const ctx = CallContext.create({ deadline: Date.now() + 5000 }).with(outgoingMetadataKey, {
      [WORKLOAD_API_HEADER]: "true",
    });
    try {
      const client = grpcClient(SpiffeWorkloadAPI, channel);
      await assert.rejects(
        firstMessage(client.fetchX509SVID(create(X509SVIDRequestSchema), ctx)),
        (e: NsmError) => e.code === Code.PermissionDenied,
      );
      await assert.rejects(
        firstMessage(client.fetchX509Bundles(create(X509BundlesRequestSchema), ctx)),
        (e: NsmError) => e.code === Code.PermissionDenied,
      );
      // The source retries until its timeout and then names the last answer: the first answer
      // must come back within it, also on a loaded machine.
      await assert.rejects(createX509Source({ socket: server.endpoint, timeoutMs: 2000 }), (e: NsmError) =>
        /PermissionDenied|no identity/.test(e.message),
      );
    } finally {
      closeChannel(channel);
    }
  });

  it("serves the bundle to an identified caller", async () => {
    identities.set(process.pid, ME);
    const channel = new grpc.Client(server.endpoint, grpc.credentials.createInsecure());
    const ctx = CallContext.create({ deadline: Date.now() + 5000 }).with(outgoingMetadataKey, {
      [WORKLOAD_API_HEADER]: "true",
    });
    try {
      const msg = await firstMessage(
        grpcClient(SpiffeWorkloadAPI, channel).fetchX509Bundles(create(X509BundlesRequestSchema), ctx),
      );
      assert.deepEqual(Object.keys(msg.bundles), ["spiffe://test.nsm"]);
      assert.ok(Buffer.from(msg.bundles["spiffe://test.nsm"]!).equals(ca.certificate.raw));
    } finally {
      closeChannel(channel);
      identities.delete(process.pid);
    }
  });
});

describe("unix peer lookup", { skip }, () => {
  it("finds the pid of the process on the other end of a connection", async () => {
    const netlink = addonNetlinkRequester();
    const lookup = createUnixPeerLookup(netlink.request);
    try {
      await withConnectedChild(async (socket, child) => {
        const pids = await lookup(socket);
        assert.deepEqual(pids, [child.pid]);
        assert.ok(!pids.includes(process.pid), "the server side is not mistaken for the peer");
      });
    } finally {
      await netlink.close();
    }
  });
});

describe("unix peer lookup, connection handed on", { skip }, () => {
  it("finds the process holding the client end when the connecting one has passed it on and exited", async () => {
    const dir = tempDir();
    const netlink = addonNetlinkRequester();
    const lookup = createUnixPeerLookup(netlink.request);
    const path = join(dir.path, "peer.sock");
    // The connector hands its socket to a detached `sleep` (as its stdout), prints that pid, exits.
    const script =
      `const s = require("net").connect(${JSON.stringify(path)}, () => {` +
      ` const c = require("child_process").spawn("sleep", ["30"], { stdio: ["ignore", s, "ignore"], detached: true });` +
      ' require("fs").writeSync(1, String(c.pid)); process.exit(0); });';
    let holder: number | undefined;
    const accepted = new Promise<net.Socket>((resolve) => {
      const srv = net.createServer((s) => {
        srv.close();
        resolve(s);
      });
      srv.listen(path);
    });
    try {
      const connector = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "ignore"] });
      let out = "";
      connector.stdout.on("data", (d) => (out += d));
      await new Promise((r) => connector.once("exit", r));
      holder = Number(out);
      const socket = await accepted;
      assert.ok(holder > 0, `the holder's pid: ${out}`);
      assert.deepEqual(await lookup(socket), [holder], "the connector is gone: the holder, not its stale pid");
      socket.destroy();
    } finally {
      if (holder) process.kill(holder, "SIGKILL");
      await netlink.close();
      dir.cleanup();
    }
  });
});

describe("identity resolvers", () => {
  it("resolves a process by its nearest registered ancestor", async () => {
    const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
    try {
      assert.equal(await parentPid(child.pid!), process.pid);
      const resolve = resolveByProcessTree((pid) => (pid === process.pid ? ME : undefined));
      assert.equal(await resolve(child.pid!), ME, "the child inherits the registered parent's identity");
      assert.equal(await resolveByProcessTree(() => undefined)(child.pid!), undefined);
      assert.equal(await resolve(2 ** 22 + 12345), undefined, "a pid that does not exist");
    } finally {
      child.kill();
    }
  });

  it("resolves a process by its network namespace", async () => {
    const mine = await netnsInodeOf(process.pid);
    assert.ok(mine && mine > 0);
    const resolve = resolveByNetns((ino) => (ino === mine ? ME : undefined));
    assert.equal(await resolve(process.pid), ME);
  });
});

/** Runs `fn` with the server end of a unix connection made by a child process. */
async function withConnectedChild(fn: (socket: net.Socket, child: ChildProcess) => Promise<void>): Promise<void> {
  const dir = tempDir();
  const path = join(dir.path, "peer.sock");
  let child: ChildProcess | undefined;
  const accepted = new Promise<net.Socket>((resolve) => {
    const srv = net.createServer((s) => {
      srv.close();
      resolve(s);
    });
    srv.listen(path, () => {
      const code = `require("net").connect(${JSON.stringify(path)}); setInterval(() => {}, 1000);`;
      child = spawn(process.execPath, ["-e", code], { stdio: "ignore" });
    });
  });
  try {
    const socket = await accepted;
    await fn(socket, child!);
    socket.destroy();
  } finally {
    child?.kill();
    dir.cleanup();
  }
}
