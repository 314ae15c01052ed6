// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { openSync, readdirSync } from "node:fs";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import {
  type Connection,
  ConnectionSchema,
  create,
  MechanismType,
  type NetworkServiceRequest,
  NetworkServiceRequestSchema,
  Param,
} from "../../../../api/index.js";
import { bind, chain, type NetworkServiceElement } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { Code, NsmError } from "../../../core/errors.js";
import { FdTable } from "../../../grpc/fdsocket.js";
import { grpcPeerKey } from "../../../grpc/service.js";
import { inodeUrlOfPath } from "../sendfd/index.js";
import { isReceivedNetns, recvFdServer } from "./index.js";

const O_PATH = 0o10000000;
const NETNS = `/proc/${process.pid}/ns/net`;
const openFds = () => readdirSync("/proc/self/fd").length;

function request(id: string, inodeUrl: string): NetworkServiceRequest {
  return create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, {
      id,
      mechanism: { cls: "LOCAL", type: MechanismType.KERNEL, parameters: { [Param.INODE_URL]: inodeUrl } },
    }),
  });
}

function ctxWith(fds: FdTable | undefined, timeoutMs = 2000): CallContext {
  return CallContext.create({ deadline: Date.now() + timeoutMs }).with(grpcPeerKey, {
    address: "unknown",
    metadata: new grpc.Metadata(),
    authContext: undefined,
    responseHeaders: new grpc.Metadata(),
    fds,
  });
}

/** Whether `url` (`file://<path>`) names the test's netns now (an open descriptor of it). */
function namesNetns(url: string): boolean {
  try {
    return inodeUrlOfPath(url.slice("file://".length)) === inodeUrlOfPath(NETNS);
  } catch {
    return false;
  }
}

/** Records the URL it sees, whether the context marks it as received and whether it is open; fails when told to. */
function tail(seen: { url: string; received: boolean; open?: boolean }[], fail = false): NetworkServiceElement {
  return {
    name: "tail",
    async request(req, ctx) {
      const url = req.connection?.mechanism?.parameters[Param.INODE_URL] ?? "";
      seen.push({ url, received: isReceivedNetns(ctx, url), open: namesNetns(url) });
      if (fail) throw new NsmError("downstream failed", Code.Unavailable);
      return req.connection as Connection;
    },
    close: async () => ({}) as never,
  };
}

async function codeOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (err) {
    return NsmError.from(err).code;
  }
  return Code.OK;
}

describe("recvfd server", () => {
  it("swaps inode:// for the received descriptor, marks it received, restores it on the way out, and releases it", async () => {
    const table = new FdTable();
    const seen: { url: string; received: boolean; open: boolean }[] = [];
    const h = bind(chain(recvFdServer(), tail(seen)));
    const before = openFds();
    table.add(openSync(NETNS, O_PATH));
    const inode = inodeUrlOfPath(NETNS);
    const req = request("a", inode);
    const conn = await h.request(req, ctxWith(table));
    assert.match(seen[0]!.url, new RegExp(`^file:///proc/${process.pid}/fd/\\d+$`));
    assert.equal(seen[0]!.open, true, "the descriptor is open while the chain runs");
    assert.equal(seen[0]!.received, true);
    assert.equal(conn.mechanism?.parameters[Param.INODE_URL], inode, "the caller gets its own URL back");
    assert.equal(req.connection?.mechanism?.parameters[Param.INODE_URL], inode, "the request is left as it came");
    assert.equal(openFds(), before, "released once the Request is done: nothing held between calls");

    assert.equal(
      await codeOf(h.request(request("a", inode), ctxWith(table, 300))),
      Code.InvalidArgument,
      "a refresh must send the namespace again",
    );
    await h.close(conn, ctxWith(table));
    assert.equal(openFds(), before);
    table.closeAll();
  });

  it("each refresh that sends the namespace again gets it for its call only (no pile-up)", async () => {
    const table = new FdTable();
    const seen: { url: string; received: boolean; open: boolean }[] = [];
    const h = bind(chain(recvFdServer(), tail(seen)));
    const before = openFds();
    const inode = inodeUrlOfPath(NETNS);
    for (let i = 0; i < 3; i++) {
      table.add(openSync(NETNS, O_PATH));
      await h.request(request("b", inode), ctxWith(table));
      assert.equal(openFds(), before);
    }
    assert.ok(seen.every((s) => s.open && s.received));
    await h.close(create(ConnectionSchema, { id: "b" }), ctxWith(table));
    assert.equal(openFds(), before);
  });

  it("an element under it that tries again in the same call (roundrobin) gets the descriptor every time", async () => {
    const table = new FdTable();
    const seen: { url: string; received: boolean; open?: boolean }[] = [];
    const failsOnce = tail(seen, true);
    const retry: NetworkServiceElement = {
      name: "retry",
      request: (req, ctx, next) => next.request(req, ctx).catch(() => tail(seen).request(req, ctx, next)),
      close: (conn, ctx, next) => next.close(conn, ctx),
    };
    const h = bind(chain(recvFdServer({ waitMs: 300 }), retry, failsOnce));
    const before = openFds();
    table.add(openSync(NETNS, O_PATH));
    const inode = inodeUrlOfPath(NETNS);
    const conn = await h.request(request("r", inode), ctxWith(table));
    assert.equal(seen.length, 2);
    assert.ok(
      seen.every((s) => s.open && s.received),
      JSON.stringify(seen),
    );
    assert.equal(conn.mechanism?.parameters[Param.INODE_URL], inode);
    assert.equal(openFds(), before);
  });

  it("bad input is InvalidArgument and goes no further: no descriptor, no fd-passing connection, a malformed URL", async () => {
    const seen: { url: string; received: boolean }[] = [];
    const h = bind(chain(recvFdServer({ waitMs: 200 }), tail(seen)));
    const inode = inodeUrlOfPath(NETNS);
    const t0 = Date.now();
    assert.equal(await codeOf(h.request(request("c", inode), ctxWith(new FdTable()))), Code.InvalidArgument);
    assert.ok(Date.now() - t0 < 1500, "waited waitMs, not the whole deadline");
    assert.equal(await codeOf(h.request(request("c", inode), ctxWith(undefined))), Code.InvalidArgument);
    assert.equal(await codeOf(h.request(request("c", "inode://4/x"), ctxWith(new FdTable()))), Code.InvalidArgument);
    assert.equal(seen.length, 0);
  });

  it("a descriptor that is not the sender's netns is PermissionDenied (requireSenderNetns), and closed", async () => {
    const table = new FdTable();
    table.peerPid = 1 << 22; // no such process: the sender's netns cannot match
    const h = bind(chain(recvFdServer({ requireSenderNetns: true }), tail([])));
    const before = openFds();
    table.add(openSync(NETNS, O_PATH));
    const code = await codeOf(h.request(request("d", inodeUrlOfPath(NETNS)), ctxWith(table)));
    assert.equal(code, Code.PermissionDenied);
    assert.equal(openFds(), before, "the refused descriptor was closed");
  });

  it("a failed first Request closes what it took and leaves the request as it was", async () => {
    const table = new FdTable();
    const h = bind(chain(recvFdServer(), tail([], true)));
    const before = openFds();
    table.add(openSync(NETNS, O_PATH));
    const req = request("e", inodeUrlOfPath(NETNS));
    assert.equal(await codeOf(h.request(req, ctxWith(table))), Code.Unavailable);
    assert.equal(openFds(), before);
    assert.equal(req.connection?.mechanism?.parameters[Param.INODE_URL], inodeUrlOfPath(NETNS));
  });

  it("file:// URLs pass untouched and are not marked received", async () => {
    const seen: { url: string; received: boolean }[] = [];
    const h = bind(chain(recvFdServer(), tail(seen)));
    await h.request(request("f", `file:///proc/${process.pid}/fd/3`), ctxWith(new FdTable()));
    assert.deepEqual(
      seen.map(({ url, received }) => ({ url, received })),
      [{ url: `file:///proc/${process.pid}/fd/3`, received: false }],
    );
  });
});

describe("FdTable", () => {
  it("a waiter gets the descriptor that arrives later; closeAll closes what is held and fails waiters", async () => {
    const table = new FdTable();
    const key = inodeUrlOfPath(NETNS).slice("inode://".length);
    const before = openFds();
    const waiting = table.waitFor(key, AbortSignal.timeout(2000));
    table.add(openSync(NETNS, O_PATH));
    const fd = await waiting;
    assert.ok(fd > 2);
    table.add(openSync(NETNS, O_PATH));
    table.add(openSync(NETNS, O_PATH));
    assert.equal(table.size, 1, "one per key");
    const late = table.waitFor("1/2", AbortSignal.timeout(2000));
    table.closeAll();
    await assert.rejects(late);
    assert.equal(openFds(), before + 1, "only the taken one is still open");
    const { closeSync } = await import("node:fs");
    closeSync(fd);
    table.add(openSync(NETNS, O_PATH));
    assert.equal(openFds(), before, "a descriptor arriving after closeAll is closed at once");
  });

  it("finds a descriptor that rode on a sibling connection of the same peer, now or later; never another peer's", async () => {
    const key = inodeUrlOfPath(NETNS).slice("inode://".length);
    const [a, b, stranger] = [new FdTable(), new FdTable(), new FdTable()];
    a.peerPid = b.peerPid = 100;
    stranger.peerPid = 200;
    for (const t of [a, b, stranger]) t.siblings = () => [a, b, stranger];
    const before = openFds();
    b.add(openSync(NETNS, O_PATH));
    const now = a.take(key);
    assert.ok(now !== undefined, "taken from the sibling");
    assert.equal(b.size, 0);
    const waiting = a.waitFor(key, AbortSignal.timeout(2000));
    b.add(openSync(NETNS, O_PATH));
    const later = await waiting;
    assert.ok(later > 2, "the wait on the sibling won");
    stranger.add(openSync(NETNS, O_PATH));
    assert.equal(a.take(key), undefined, "another peer's descriptor is not taken");
    const [u1, u2] = [new FdTable(), new FdTable()];
    for (const t of [u1, u2]) t.siblings = () => [u1, u2];
    u2.add(openSync(NETNS, O_PATH));
    assert.equal(u1.take(key), undefined, "connections of unknown peers (pid 0) share nothing");
    u2.closeAll();
    const deadline = new AbortController();
    setTimeout(() => deadline.abort(), 100);
    await assert.rejects(a.waitFor(key, deadline.signal), /no descriptor arrived before the deadline/);
    const { closeSync } = await import("node:fs");
    for (const fd of [now!, later]) closeSync(fd);
    stranger.closeAll();
    assert.equal(openFds(), before, "nothing left open");
  });
});
