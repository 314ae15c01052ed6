// SPDX-License-Identifier: Apache-2.0
/**
 * Security of a mesh of real processes (identity provider, registry, nsmgr, forwarder,
 * icmp-responder), every hop mTLS with SVIDs from the Workload API:
 * - a client that names its own netns connects; naming another pod's netns, /proc/1/ns/net, a
 *   non-netns file, a /var/run/netns path or a path with `..` is refused and no interface
 *   appears anywhere; an endpoint naming another pod's netns is refused too;
 * - a token signed with the wrong key is refused by the next hop (prev_token_signed);
 * - peers without a certificate or from another trust domain are refused;
 * - an NSE name registered by one identity cannot be re-registered or unregistered by another;
 * - with the service_connection policy, MonitorConnections shows a caller only its own
 *   connections;
 * - insecure mode only with NSM_INSECURE=true, and it says so.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  type Connection,
  ConnectionSchema,
  MonitorConnection,
  MonitorScopeSelectorSchema,
  NetworkServiceRequestSchema,
  registry,
} from "../../src/api/index.js";
import { CallContext } from "../../src/sdk/core/context.js";
import { Code, NsmError } from "../../src/sdk/core/errors.js";
import { closeChannel, dialChannel } from "../../src/sdk/grpc/dial.js";
import { registryClients } from "../../src/sdk/grpc/registry.js";
import { grpcClient } from "../../src/sdk/grpc/service.js";
import { createClient } from "../../src/sdk/networkservice/chains/client/index.js";
import { createEndpoint } from "../../src/sdk/networkservice/chains/endpoint/index.js";
import {
  kernelMechanismClient,
  kernelMechanismServer,
} from "../../src/sdk/networkservice/common/kernelmechanism/index.js";
import { mechanismsClient, mechanismsServer } from "../../src/sdk/networkservice/common/mechanisms/index.js";
import { point2pointIpamServer } from "../../src/sdk/networkservice/common/point2pointipam/index.js";
import { registryClient } from "../../src/sdk/registry/chains/client/index.js";
import {
  authorizeClient,
  authorizeServer,
  createCa,
  createCaX509Source,
  createTokenGenerator,
  PERMISSION_DENIED_MESSAGE,
  registryClientSecurity,
  secureDialOptions,
  serverCredentials,
  staticX509Source,
  updateTokenServer,
} from "../../src/security/index.js";
import { type Identity, Mesh, skipReason } from "./harness.js";

const skip = skipReason();
const SERVICE = "secure-svc";
const ctx = (ms = 10_000) => CallContext.create({ deadline: Date.now() + ms });
const denied = (e: unknown) =>
  e instanceof NsmError && e.code === Code.PermissionDenied && (e as NsmError).rawMessage === PERMISSION_DENIED_MESSAGE;
const code = (c: Code) => (e: unknown) => e instanceof NsmError && e.code === c;
/** Whether some line of `log` has every one of `parts`. */
const logged = (log: string, ...parts: string[]) => log.split("\n").some((l) => parts.every((p) => l.includes(p)));

describe("security of a mesh of processes", { skip, timeout: 120_000 }, () => {
  let mesh: Mesh;
  let admin: Identity;
  let nseNetns: string;

  before(async () => {
    mesh = await Mesh.start({ nsmgrEnv: { NSM_MONITOR_POLICIES: "etc/nsm/opa/monitor/.*.rego" } });
    admin = await mesh.identity("admin");
    nseNetns = await mesh.endpoint("nse-1", SERVICE, "172.16.7.0/24", admin);
  });
  after(() => mesh?.close());

  /** A client of the test process as `who`, naming `inodeUrl` as its netns. */
  const client = (who: Identity, inodeUrl: string, dial = who.dial()) =>
    createClient({
      name: who.id.split("/").at(-1)!,
      connectTo: mesh.nsmgrUrl,
      ...dial,
      authorize: authorizeClient(),
      additional: [mechanismsClient({ KERNEL: kernelMechanismClient({ inodeUrl, interfaceName: "nsm-1" }) })],
    });
  const request = (id: string, service = SERVICE) =>
    create(NetworkServiceRequestSchema, { connection: create(ConnectionSchema, { id, networkService: service }) });

  /** Links with our tag (alias `nsm:`) in every namespace of the mesh and in the root namespace. */
  const nsmLinks = () => {
    const all: string[] = [];
    for (const ns of mesh.namespaces) for (const l of mesh.links(ns)) all.push(`${ns}:${l.ifname}`);
    const root = JSON.parse(execFileSync("ip", ["-j", "link", "show"], { encoding: "utf8" })) as {
      ifname: string;
      ifalias?: string;
    }[];
    for (const l of root) if (l.ifalias?.startsWith("nsm:")) all.push(`root:${l.ifname}`);
    return all.sort();
  };

  const open: { close(): Promise<void> }[] = [];
  after(async () => {
    for (const o of open.splice(0)) await o.close().catch(() => {});
  });

  it("a client naming its own netns connects: nsm-1 on both sides, ping", async () => {
    const a = await mesh.identity("nsc-a");
    const h = mesh.holder("nsc-a", a.id);
    const c = client(a, h.url);
    const conn = await c.request(request("nsc-a-0"), ctx());
    open.push({ close: () => c.close(conn, ctx()).then(() => {}) });
    assert.deepEqual(
      conn.path!.pathSegments.map((s) => s.name),
      ["nsc-a", "nsmgr-1", "forwarder-1", "nse-1"],
    );
    assert.deepEqual(
      mesh.links(h.netns).map((l) => l.ifname),
      ["nsm-1"],
    );
    assert.equal(mesh.links(nseNetns).length, 1);
    const dst = conn.context!.ipContext!.dstIpAddrs[0]!.split("/")[0]!;
    const ping = spawnSync("ip", ["netns", "exec", h.netns, "ping", "-c", "2", "-i", "0.2", "-W", "2", dst], {
      encoding: "utf8",
    });
    assert.equal(ping.status, 0, ping.stdout + ping.stderr);
  });

  it("a client naming another pod's netns, /proc/1, a file, /var/run/netns or `..` gets nothing", async () => {
    const attacker = await mesh.identity("attacker");
    mesh.holder("attacker", attacker.id);
    const victim = mesh.holder("victim", mesh.pod("victim"));
    const before = nsmLinks();
    const attacks: [string, string, Code][] = [
      ["another pod's netns", victim.url, Code.PermissionDenied],
      ["pid 1", "file:///proc/1/ns/net", Code.PermissionDenied],
      ["a pid that does not exist", "file:///proc/4194000/ns/net", Code.PermissionDenied],
      ["a named netns path", `file:///var/run/netns/${victim.netns}`, Code.InvalidArgument],
      ["a regular file", "file:///etc/hostname", Code.InvalidArgument],
      ["a path with ..", `file:///proc/${victim.pid}/ns/../ns/net`, Code.InvalidArgument],
    ];
    for (const [what, url, want] of attacks) {
      const c = client(attacker, url);
      await assert.rejects(c.request(request(`attack-${want}-${url.length}`), ctx()), code(want), what);
      assert.deepEqual(nsmLinks(), before, `${what}: an interface appeared`);
    }
    assert.match(mesh.log("forwarder"), /netns ownership check failed/);
  });

  it("an endpoint naming another pod's netns is refused, and nothing is wired", async () => {
    const evil = await mesh.identity("evil-nse");
    const victim = mesh.holder("victim-2", mesh.pod("victim-2"));
    const endpoint = createEndpoint({
      name: "evil-nse",
      updateToken: updateTokenServer(createTokenGenerator(evil.source)),
      authorize: authorizeServer(),
      additional: [
        point2pointIpamServer({ prefixes: [["172.16.9.0/24"]] }),
        mechanismsServer({ KERNEL: kernelMechanismServer({ inodeUrl: victim.url }) }),
      ],
    });
    const server = new grpc.Server();
    endpoint.register(server);
    const sock = join(mesh.dir, "evil.sock");
    await new Promise<number>((resolve, reject) =>
      server.bindAsync(`unix://${sock}`, serverCredentials(evil.source), (err, port) =>
        err ? reject(err) : resolve(port),
      ),
    );
    const channel = dialChannel(mesh.nsmgrUrl, evil.dial());
    try {
      const reg = registryClient({
        registry: registryClients(channel),
        refresh: false,
        security: registryClientSecurity(),
      });
      await reg.ns.register(create(registry.NetworkServiceSchema, { name: "evil-svc", payload: "ETHERNET" }), ctx());
      await reg.nse.register(
        create(registry.NetworkServiceEndpointSchema, {
          name: "evil-nse",
          networkServiceNames: ["evil-svc"],
          url: `unix://${sock}`,
        }),
        ctx(),
      );
      const a = await mesh.identity("nsc-e");
      const h = mesh.holder("nsc-e", a.id);
      const before = nsmLinks();
      await assert.rejects(
        client(a, h.url).request(request("nsc-e-0", "evil-svc"), ctx()),
        code(Code.PermissionDenied),
      );
      assert.deepEqual(nsmLinks(), before);
      assert.deepEqual(mesh.links(victim.netns), []);
      assert.ok(logged(mesh.log("forwarder"), "netns ownership check failed", '"side":"endpoint"'));
    } finally {
      closeChannel(channel);
      endpoint.dispose();
      server.forceShutdown();
    }
  });

  it("a token signed with the wrong key is refused by the next hop", async () => {
    const a = await mesh.identity("nsc-f");
    const h = mesh.holder("nsc-f", a.id);
    const real = a.source.current().svid;
    // The client's own certificate (public), but a key the attacker made: the token claims to be
    // signed by the client's SVID (x5c) and is not.
    const stolenCert = staticX509Source(
      { ...real, privateKey: generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey },
      mesh.ca.bundle,
    );
    // Same SPIFFE ID, from a CA this trust domain does not trust.
    const otherCa = await createCa({ trustDomain: mesh.trustDomain });
    const foreign = staticX509Source(await otherCa.issue(a.id), otherCa.bundle);
    for (const [what, forged] of [
      ["stolen certificate", stolenCert],
      ["untrusted CA", foreign],
    ] as const) {
      const before = mesh.log("nsmgr").length;
      await assert.rejects(
        client(a, h.url, a.dial(createTokenGenerator(forged))).request(request(`nsc-f-${what.length}`), ctx()),
        denied,
        what,
      );
      assert.ok(logged(mesh.log("nsmgr").slice(before), "policy failed", "server/prev_token_signed.rego"), what);
    }
    assert.deepEqual(mesh.links(h.netns), []);
  });

  it("refuses a peer without a certificate, or with one from another trust domain", async () => {
    const h = mesh.holder("nsc-p", mesh.pod("nsc-p"));
    const plain = createClient({
      name: "nsc-p",
      connectTo: mesh.nsmgrUrl,
      dialTimeoutMs: 1500,
      additional: [mechanismsClient({ KERNEL: kernelMechanismClient({ inodeUrl: h.url, interfaceName: "nsm-1" }) })],
    });
    await assert.rejects(plain.request(request("nsc-p-0"), ctx()), code(Code.Unavailable));
    const foreignCa = await createCa({ trustDomain: "elsewhere.test" });
    const foreign = await createCaX509Source(foreignCa, mesh.pod("nsc-p").replace(mesh.trustDomain, "elsewhere.test"));
    try {
      const c = createClient({
        name: "nsc-p",
        connectTo: mesh.nsmgrUrl,
        dialTimeoutMs: 1500,
        ...secureDialOptions(foreign, { tokenGenerator: createTokenGenerator(foreign) }),
        additional: [mechanismsClient({ KERNEL: kernelMechanismClient({ inodeUrl: h.url, interfaceName: "nsm-1" }) })],
      });
      await assert.rejects(c.request(request("nsc-p-1"), ctx()), code(Code.Unavailable));
    } finally {
      foreign.close();
    }
    assert.deepEqual(mesh.links(h.netns), []);
  });

  it("an NSE name registered by one identity cannot be re-registered or unregistered by another", async () => {
    const owner = await mesh.identity("owner");
    const thief = await mesh.identity("thief");
    const rec = create(registry.NetworkServiceEndpointSchema, {
      name: "owned-nse",
      networkServiceNames: [SERVICE],
      url: "unix:///nowhere.sock",
    });
    // The client chain, and the bare gRPC clients (the chain skips unregistering what it did not register).
    const as = (who: Identity, url: string) => {
      const channel = dialChannel(url, who.dial());
      const raw = registryClients(channel);
      const r = registryClient({ registry: raw, refresh: false, security: registryClientSecurity() });
      return { r, raw, close: () => closeChannel(channel) };
    };
    const o = as(owner, mesh.registryUrl);
    const t = as(thief, mesh.registryUrl);
    const tn = as(thief, mesh.nsmgrUrl);
    try {
      await o.r.nse.register(rec, ctx());
      await assert.rejects(t.r.nse.register(rec, ctx()), denied, "re-register at the registry");
      await assert.rejects(t.raw.nse.unregister(rec, ctx()), denied, "unregister at the registry");
      // nse-1 was registered by its own process through nsmgr.
      const nse1 = (await mesh.findNse("nse-1", admin))[0]!;
      await assert.rejects(tn.r.nse.register({ ...nse1, url: "unix:///hijack.sock" }, ctx()), denied, "via nsmgr");
      await assert.rejects(tn.raw.nse.unregister(nse1, ctx()), denied, "unregister via nsmgr");
      assert.equal((await mesh.findNse("owned-nse", admin)).length, 1);
      assert.equal((await mesh.findNse("nse-1", admin))[0]?.url, nse1.url);
      await o.r.nse.unregister(rec, ctx());
      assert.equal((await mesh.findNse("owned-nse", admin)).length, 0);
    } finally {
      o.close();
      t.close();
      tn.close();
    }
    assert.ok(logged(mesh.log("registry"), "policy failed", "registry/client_allowed.rego"));
  });

  it("with service_connection, MonitorConnections shows a caller only its own connections", async () => {
    const a = await mesh.identity("mon-a");
    const b = await mesh.identity("mon-b");
    const conns: [Identity, ReturnType<typeof client>, Connection][] = [];
    for (const who of [a, b]) {
      const h = mesh.holder(who.id.split("/").at(-1)!, who.id);
      const c = client(who, h.url);
      conns.push([who, c, await c.request(request(`${who.id.split("/").at(-1)}-0`), ctx())]);
    }
    const monitor = async (who: Identity, ids: string[]) => {
      const channel = dialChannel(mesh.nsmgrUrl, who.dial());
      try {
        const selector = create(MonitorScopeSelectorSchema, { pathSegments: ids.map((id) => ({ id })) });
        for await (const e of grpcClient(MonitorConnection, channel).monitorConnections(selector, ctx(5000)))
          return Object.values(e.connections).map((c) => c.path!.pathSegments[0]!.id);
        return [];
      } finally {
        closeChannel(channel);
      }
    };
    try {
      assert.deepEqual(await monitor(a, ["mon-a-0"]), ["mon-a-0"]);
      assert.deepEqual(await monitor(b, ["mon-b-0"]), ["mon-b-0"]);
      await assert.rejects(monitor(a, ["mon-b-0"]), denied, "another's connection");
      await assert.rejects(monitor(b, []), denied, "everything");
      await assert.rejects(monitor(admin, ["mon-a-0"]), denied, "a stranger");
    } finally {
      for (const [, c, conn] of conns) await c.close(conn, ctx());
    }
  });

  it("runs insecure only when asked to, and says so", async () => {
    const sock = join(mesh.dir, "plain.sock");
    /** Runs `nsm registry` until it exits or prints "registry serving" (then SIGTERM). */
    const run = (env: Record<string, string>) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(process.execPath, [join(import.meta.dirname, "..", "..", "bin", "nsm.js"), "registry"], {
          env: { PATH: process.env.PATH, NSM_LISTEN_ON: `unix://${sock}`, ...env },
          stdio: ["ignore", "pipe", "pipe"],
        });
        let out = "";
        const timer = setTimeout(() => child.kill("SIGTERM"), 10_000);
        const onData = (d: Buffer) => {
          out += d;
          if (out.includes("registry serving")) child.kill("SIGTERM");
        };
        child.stdout.on("data", onData);
        child.stderr.on("data", onData);
        child.on("close", (c) => {
          clearTimeout(timer);
          resolve({ code: c, out });
        });
      });
    const refused = await run({});
    assert.equal(refused.code, 2, refused.out);
    assert.match(refused.out, /SPIFFE_ENDPOINT_SOCKET=.*is required/);
    const insecure = await run({ NSM_INSECURE: "true" });
    assert.match(insecure.out, /INSECURE MODE \(NSM_INSECURE=true\)/);
    assert.match(insecure.out, /registry serving/);
  });
});
