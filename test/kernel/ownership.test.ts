// SPDX-License-Identifier: Apache-2.0
/**
 * Secure by construction: a kernel forwarder built the way `nsm forwarder` builds it
 * (`kernelForwarderElements` with the security package's `netnsOwnership`) wires only the
 * namespaces the requesting side owns, and nothing builds one without the check.
 *
 * Runs on the fake kernel (no root needed): its namespaces are the `/proc/<pid>/ns/net` paths
 * the check accepts, and the process identities are a fixed pid → SPIFFE ID table.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  Cls,
  ConnectionSchema,
  clone,
  create,
  MechanismType,
  NetworkServiceRequestSchema,
  newMechanism,
} from "../../src/api/index.js";
import { createFakeKernel, type FakeKernel } from "../../src/kernel/fake.js";
import {
  insecureNetnsOwnership,
  kernelForwarderElements,
  kernelRemoteXconnectServer,
  kernelXconnectServer,
} from "../../src/kernel/networkservice/index.js";
import { forwarderChain } from "../../src/kernel/networkservice/testing.js";
import type { NetworkServiceElement } from "../../src/sdk/core/chain.js";
import { CallContext } from "../../src/sdk/core/context.js";
import { Code, type NsmError } from "../../src/sdk/core/errors.js";
import { netnsOwnership } from "../../src/security/networkservice/netnsowner.js";

const NSC = "spiffe://t.test/ns/a/pod/nsc";
const NSE = "spiffe://t.test/ns/a/pod/nse";
const VICTIM = "spiffe://t.test/ns/b/pod/victim";
const owners = new Map<number, string>([
  [100, NSC],
  [200, NSE],
  [300, VICTIM],
]);
const netnsOf = (pid: number) => `/proc/${pid}/ns/net`;

/** An unsigned JWT naming `sub` (the ownership check reads `sub`; signatures are authorize's job). */
const jwt = (sub: string) =>
  `${Buffer.from('{"alg":"ES256"}').toString("base64url")}.${Buffer.from(JSON.stringify({ sub })).toString("base64url")}.c2ln`;

/** The NSE: its own KERNEL mechanism in its own netns; counts Closes. */
function nse(): NetworkServiceElement & { closes: number } {
  const element = {
    name: "nse",
    closes: 0,
    async request(req: { connection?: import("../../src/api/index.js").Connection }) {
      const conn = clone(ConnectionSchema, req.connection!);
      conn.mechanism = newMechanism(Cls.LOCAL, MechanismType.KERNEL, {
        inodeURL: `file://${netnsOf(200)}`,
        name: "nse-1",
      });
      return conn;
    },
    async close() {
      element.closes++;
    },
  };
  return element;
}

/** nsc → nsmgr → this forwarder (path index 2) → nse, the client naming the netns of `pid`. */
const request = (pid: number) =>
  create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, {
      id: `conn-${pid}`,
      networkService: "ns",
      path: {
        index: 2,
        pathSegments: [NSC, "spiffe://t.test/nsmgr", "spiffe://t.test/fwd", NSE].map((sub, i) => ({
          id: `seg-${i}`,
          name: `hop-${i}`,
          token: jwt(sub),
        })),
      },
    }),
    mechanismPreferences: [
      newMechanism(Cls.LOCAL, MechanismType.KERNEL, { inodeURL: `file://${netnsOf(pid)}`, name: "nsm-1" }),
    ],
  });

/** Every link of every namespace but `lo`, as `netns/name`. */
async function links(fake: FakeKernel): Promise<string[]> {
  const found: string[] = [];
  for (const pid of owners.keys()) {
    for (const l of await fake.listLinks(netnsOf(pid))) if (l.name !== "lo") found.push(`${netnsOf(pid)}/${l.name}`);
  }
  return found;
}

async function forwarder() {
  const fake = createFakeKernel();
  for (const pid of owners.keys()) fake.addNetns(netnsOf(pid));
  const ownership = netnsOwnership({ resolveIdentity: (pid) => owners.get(pid) });
  const els = await kernelForwarderElements({ kernel: fake, netnsOwnership: ownership });
  const endpoint = nse();
  return { fake, endpoint, fwd: forwarderChain(els, "unix:///nse.sock", endpoint) };
}

describe("kernel forwarder netns ownership (secure by construction)", () => {
  it("wires the namespaces their requesters own", async () => {
    const { fake, fwd } = await forwarder();
    const conn = await fwd.request(request(100), CallContext.create());
    assert.deepEqual(await links(fake), [`${netnsOf(100)}/nsm-1`, `${netnsOf(200)}/nse-1`]);
    await fwd.close(conn, CallContext.create());
    assert.deepEqual(await links(fake), []);
  });

  it("refuses a netns the client does not own: PermissionDenied, nothing created, downstream closed", async () => {
    const { fake, fwd, endpoint } = await forwarder();
    await assert.rejects(fwd.request(request(300), CallContext.create()), (e: NsmError) => {
      assert.equal(e.code, Code.PermissionDenied, e.message);
      assert.match(e.message, /not owned by the client/);
      return true;
    });
    assert.deepEqual(await links(fake), []);
    assert.equal(endpoint.closes, 1);
  });

  it("refuses a netns URL of another form before asking downstream", async () => {
    const { fake, fwd, endpoint } = await forwarder();
    fake.addNetns("/var/run/netns/victim");
    const req = request(100);
    req.mechanismPreferences[0]!.parameters.inodeURL = "file:///var/run/netns/victim";
    await assert.rejects(fwd.request(req, CallContext.create()), { code: Code.InvalidArgument });
    assert.equal(endpoint.closes, 0);
    assert.deepEqual(await fake.listLinks("/var/run/netns/victim").then((l) => l.map((x) => x.name)), ["lo"]);
  });

  it("has no default that allows all: the check is required by type and at run time", async () => {
    const fake = createFakeKernel();
    // @ts-expect-error netnsOwnership is a required option
    await assert.rejects(kernelForwarderElements({ kernel: fake }), { code: Code.InvalidArgument });
    // @ts-expect-error checkNetns is a required option
    assert.throws(() => kernelXconnectServer({ kernel: fake }), { code: Code.InvalidArgument });
    // @ts-expect-error checkNetns is a required option
    assert.throws(() => kernelRemoteXconnectServer({ kernel: fake }), { code: Code.InvalidArgument });
    const half = { server: insecureNetnsOwnership().server } as never;
    await assert.rejects(kernelForwarderElements({ kernel: fake, netnsOwnership: half }), {
      code: Code.InvalidArgument,
    });
  });

  it("insecure mode is an explicit value: it allows the victim's netns", async () => {
    const fake = createFakeKernel();
    for (const pid of owners.keys()) fake.addNetns(netnsOf(pid));
    const els = await kernelForwarderElements({ kernel: fake, netnsOwnership: insecureNetnsOwnership() });
    const fwd = forwarderChain(els, "unix:///nse.sock", nse());
    await fwd.request(request(300), CallContext.create());
    assert.deepEqual(await links(fake), [`${netnsOf(200)}/nse-1`, `${netnsOf(300)}/nsm-1`]);
  });
});
