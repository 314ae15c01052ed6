// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  Cls,
  type Connection,
  type ConnectionEvent,
  ConnectionEventSchema,
  ConnectionEventType,
  ConnectionSchema,
  MechanismType,
  MonitorScopeSelectorSchema,
  NetworkServiceRequestSchema,
  newMechanism,
} from "../../api/index.js";
import { CallContext } from "../../sdk/core/context.js";
import { Code, type NsmError } from "../../sdk/core/errors.js";
import { grpcPeerKey } from "../../sdk/grpc/service.js";
import { monitorServiceConnection } from "../policy/builtin.js";
import { createTestPki, recordingLogger } from "../testing.js";
import { SpiffeIdConnectionMap } from "./authorize.js";
import { authorizeMonitorConnectionService } from "./monitor.js";
import { netnsOwnership, netnsUrlPid } from "./netnsowner.js";

/** An unsigned JWT with these claims (the check reads `sub` only; signatures are the policies' job). */
const jwt = (claims: Record<string, unknown>) =>
  `${Buffer.from('{"alg":"ES256"}').toString("base64url")}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.c2ln`;

const NSC = "spiffe://t.test/ns/a/pod/nsc";
const NSE = "spiffe://t.test/ns/a/pod/nse";
const OTHER = "spiffe://t.test/ns/b/pod/victim";

function connection(subs: string[], index: number): Connection {
  return create(ConnectionSchema, {
    id: "c-1",
    path: { index, pathSegments: subs.map((sub, i) => ({ id: `seg-${i}`, name: `hop-${i}`, token: jwt({ sub }) })) },
  });
}

const isCode = (code: Code) => (e: NsmError) => e.code === code;

describe("netns ownership", () => {
  it("accepts only file:///proc/<pid>/ns/net", () => {
    assert.equal(netnsUrlPid("file:///proc/4242/ns/net"), 4242);
    for (const url of [
      "file:///var/run/netns/victim",
      "file:///etc/hostname",
      "file:///proc/4242/ns/../ns/net",
      "file:///proc/4242/ns/mnt",
      "file:///proc/self/ns/net",
      "file:///proc/0/ns/net",
      "file:///proc/4242/ns/net?x=1",
      "inode://4/4026531840",
      "",
    ]) {
      assert.throws(() => netnsUrlPid(url), isCode(Code.InvalidArgument), url);
    }
  });

  const owners = new Map<number, string>([
    [100, NSC],
    [200, NSE],
    [300, OTHER],
  ]);
  const owner = netnsOwnership({ resolveIdentity: (pid) => owners.get(pid) });
  const ask = (side: "client" | "endpoint", pid: number, conn: Connection, ctx = CallContext.create()) =>
    owner.check({ side, url: `file:///proc/${pid}/ns/net`, netns: `/proc/${pid}/ns/net`, connection: conn }, ctx);
  // nsc → nsmgr → forwarder (index 2) → nse
  const conn = connection([NSC, "spiffe://t.test/nsmgr", "spiffe://t.test/fwd", NSE], 2);

  it("in a composition, the client of a later hop is the passthrough endpoint before its nsmgr", async () => {
    // nsc → nsmgr → fwd → firewall (NSE, pid 200) → nsmgr → forwarder (index 5) → nse
    const composed = connection(
      [NSC, "spiffe://t.test/nsmgr", "spiffe://t.test/fwd", NSE, "spiffe://t.test/nsmgr", "spiffe://t.test/fwd", OTHER],
      5,
    );
    await ask("client", 200, composed);
    await assert.rejects(ask("client", 100, composed), isCode(Code.PermissionDenied), "the NSC's netns");
  });

  it("lets each side wire only its own namespace", async () => {
    await ask("client", 100, conn);
    await ask("endpoint", 200, conn);
    await assert.rejects(ask("client", 300, conn), isCode(Code.PermissionDenied), "another pod's netns");
    await assert.rejects(ask("client", 200, conn), isCode(Code.PermissionDenied), "the endpoint's netns");
    await assert.rejects(ask("endpoint", 100, conn), isCode(Code.PermissionDenied), "the client's netns");
    await assert.rejects(ask("client", 1, conn), isCode(Code.PermissionDenied), "pid 1");
    await assert.rejects(
      owner.check(
        { side: "client", url: "file:///var/run/netns/x", netns: "/var/run/netns/x", connection: conn },
        CallContext.create(),
      ),
      isCode(Code.InvalidArgument),
    );
  });

  it("takes the client from the request it verified, not from what comes back", async () => {
    const request = create(NetworkServiceRequestSchema, {
      connection: {
        ...conn,
        mechanism: newMechanism(Cls.LOCAL, MechanismType.KERNEL, {
          inodeURL: "file:///proc/100/ns/net",
          name: "nsm-1",
        }),
      },
    });
    // Downstream rewrites segment 0 of the returned path to name the victim.
    const forged = connection([OTHER, "spiffe://t.test/nsmgr", "spiffe://t.test/fwd", NSE], 2);
    const seen: string[] = [];
    await owner.server.request(request, CallContext.create(), {
      request: async (_req, ctx) => {
        await assert.rejects(ask("client", 300, forged, ctx), isCode(Code.PermissionDenied));
        await ask("client", 100, forged, ctx);
        seen.push("checked");
        return forged;
      },
      close: async () => {},
    });
    assert.deepEqual(seen, ["checked"]);
    // A badly formed client URL is refused before the request goes on.
    const bad = create(NetworkServiceRequestSchema, {
      connection: {
        ...conn,
        mechanism: newMechanism(Cls.LOCAL, MechanismType.KERNEL, { inodeURL: "file:///var/run/netns/x" }),
      },
    });
    await assert.rejects(
      owner.server.request(bad, CallContext.create(), {
        request: () => assert.fail("the request went on"),
        close: async () => {},
      }),
      isCode(Code.InvalidArgument),
    );
  });

  it("without a resolver refuses; in insecure mode checks the form only and warns per connection", async () => {
    await assert.rejects(
      netnsOwnership({}).check(
        { side: "client", url: "file:///proc/100/ns/net", netns: "/proc/100/ns/net", connection: conn },
        CallContext.create(),
      ),
      isCode(Code.PermissionDenied),
    );
    const log = recordingLogger();
    const insecure = netnsOwnership({ insecure: true, log });
    const ctx = CallContext.create({ log });
    await insecure.check(
      { side: "client", url: "file:///proc/300/ns/net", netns: "/proc/300/ns/net", connection: conn },
      ctx,
    );
    assert.ok(log.records.some((r) => r.level === "warn" && r.msg.includes("INSECURE")));
    await assert.rejects(
      insecure.check({ side: "client", url: "file:///etc/passwd", netns: "/etc/passwd", connection: conn }, ctx),
      isCode(Code.InvalidArgument),
    );
  });
});

describe("MonitorConnections with service_connection", () => {
  it("shows a caller only its own connections", async () => {
    const pki = await createTestPki("t.test");
    try {
      const mine = await pki.source("mine");
      const map = new SpiffeIdConnectionMap();
      map.add(pki.id("mine"), "own-1");
      map.add(pki.id("theirs"), "their-1");
      const conn = (id: string) =>
        create(ConnectionSchema, { id: `srv-${id}`, path: { pathSegments: [{ id }, { id: `srv-${id}` }] } });
      const events: ConnectionEvent[] = [
        create(ConnectionEventSchema, {
          type: ConnectionEventType.INITIAL_STATE_TRANSFER,
          connections: { "srv-own-1": conn("own-1"), "srv-their-1": conn("their-1") },
        }),
        create(ConnectionEventSchema, {
          type: ConnectionEventType.UPDATE,
          connections: { "srv-their-1": conn("their-1") },
        }),
        create(ConnectionEventSchema, {
          type: ConnectionEventType.UPDATE,
          connections: { "srv-own-1": conn("own-1") },
        }),
      ];
      const service = authorizeMonitorConnectionService(
        {
          async *monitorConnections() {
            yield* events;
          },
        },
        { policies: [monitorServiceConnection], spiffeIdConnectionMap: map },
      );
      const ctx = CallContext.create().with(grpcPeerKey, {
        address: "test",
        metadata: new grpc.Metadata(),
        authContext: { sslPeerCertificate: { raw: mine.current().svid.certificates[0]!.raw } as never },
        responseHeaders: new grpc.Metadata(),
      });
      const seen: string[][] = [];
      for await (const e of service.monitorConnections(
        create(MonitorScopeSelectorSchema, { pathSegments: [{ id: "own-1" }] }),
        ctx,
      )) {
        seen.push(Object.keys(e.connections));
      }
      assert.deepEqual(seen, [["srv-own-1"], ["srv-own-1"]]);
    } finally {
      pki.close();
    }
  });
});
