// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  type NetworkServiceEndpoint,
  NetworkServiceEndpointQuerySchema,
  NetworkServiceEndpointSchema,
  NetworkServiceSchema,
} from "../../api/gen/registry_pb.js";
import { CallContext } from "../../sdk/core/context.js";
import { Code, type NsmError } from "../../sdk/core/errors.js";
import { closeChannel, dialChannel } from "../../sdk/grpc/dial.js";
import { registryClients, serveRegistry } from "../../sdk/grpc/registry.js";
import { registryClient } from "../../sdk/registry/chains/client/index.js";
import { memoryRegistry } from "../../sdk/registry/chains/memory/index.js";
import { nsmgrRegistry } from "../../sdk/registry/chains/nsmgr/index.js";
import { collectRecords } from "../../sdk/registry/core/adapters.js";
import { nseKind } from "../../sdk/registry/core/kind.js";
import {
  createTokenGenerator,
  decodeRegistryPath,
  encodeRegistryPath,
  PERMISSION_DENIED_MESSAGE,
  registryClientSecurity,
  registryServerSecurity,
  secureDialOptions,
  secureRegistryClients,
  serverCredentials,
  type X509Source,
} from "../index.js";
import { bindUnix, createTestPki, recordingLogger, type TestPki, tempDir } from "../testing.js";

const ctx = () => CallContext.create({ deadline: Date.now() + 10_000 });
const nse = (name: string) =>
  create(NetworkServiceEndpointSchema, {
    name,
    networkServiceNames: ["secure-svc"],
    url: `unix:///tmp/${name}.sock`,
  });
const denied = (e: NsmError) => e.code === Code.PermissionDenied && e.rawMessage === PERMISSION_DENIED_MESSAGE;

describe("registry path header", () => {
  it("uses Go's JSON shape and reads it back case-insensitively", () => {
    assert.equal(encodeRegistryPath({ index: 0, pathSegments: [] }), '{"Index":0,"PathSegments":null}');
    assert.equal(
      encodeRegistryPath({ index: 1, pathSegments: [{ token: "a" }] }),
      '{"Index":1,"PathSegments":[{"token":"a"}]}',
    );
    assert.deepEqual(decodeRegistryPath('{"index":2,"pathSegments":[{"Token":"x"},null]}'), {
      index: 2,
      pathSegments: [{ token: "x" }, { token: "" }],
    });
    assert.throws(
      () => decodeRegistryPath('{"Index":-1}'),
      (e: NsmError) => e.code === Code.InvalidArgument,
    );
  });
});

describe("registry security over mTLS", () => {
  let pki: TestPki;
  let dir: ReturnType<typeof tempDir>;
  const sources: Record<string, X509Source> = {};
  const lifetime = new AbortController();
  const servers: grpc.Server[] = [];
  const channels: grpc.Client[] = [];
  const log = recordingLogger();
  let registryUrl: string;

  /** A channel from `who` with path tokens and the call observer. */
  const dial = (who: string, url: string) => {
    const channel = dialChannel(
      url,
      secureDialOptions(sources[who], { tokenGenerator: createTokenGenerator(sources[who]!) }),
    );
    channels.push(channel);
    return channel;
  };

  before(async () => {
    pki = await createTestPki("test.nsm");
    dir = tempDir();
    for (const n of ["registry", "nsmgr", "nse-a", "nse-b"]) sources[n] = await pki.source(n);
    const registry = memoryRegistry({
      signal: lifetime.signal,
      security: registryServerSecurity({ tokenGenerator: createTokenGenerator(sources.registry!) }),
    });
    const server = new grpc.Server();
    serveRegistry(server, registry, { log });
    registryUrl = await bindUnix(server, serverCredentials(sources.registry), dir.path, "registry.sock");
    servers.push(server);
  });
  after(() => {
    lifetime.abort();
    for (const c of channels) closeChannel(c);
    for (const s of servers) s.forceShutdown();
    pki.close();
    dir.cleanup();
  });

  it("client_allowed: another identity can neither re-register nor unregister an NSE name", async () => {
    // nse-a registers through the standard registry client chain with the client security slot.
    const a = registryClient({
      registry: registryClients(dial("nse-a", registryUrl)),
      security: registryClientSecurity(),
      refresh: false,
    });
    // nse-b calls the registry directly (no begin in front: its Unregister really goes out).
    const b = secureRegistryClients(registryClients(dial("nse-b", registryUrl)));

    const registered = await a.nse.register(nse("nse-1"), ctx());
    assert.deepEqual(registered.pathIds, [pki.id("nse-a"), pki.id("registry")]);

    const before = log.records.length;
    await assert.rejects(b.nse.register(nse("nse-1"), ctx()), denied);
    await assert.rejects(b.nse.unregister(nse("nse-1"), ctx()), denied);
    assert.ok(
      log.records
        .slice(before)
        .some((r) => r.msg.includes("policy failed") && r.fields.policy === "etc/nsm/opa/registry/client_allowed.rego"),
    );
    const stored = await collectRecords(
      nseKind,
      registryClients(dial("nse-a", registryUrl)).nse,
      create(NetworkServiceEndpointQuerySchema, { networkServiceEndpoint: { name: "nse-1" } }),
      ctx(),
    );
    assert.equal(stored.length, 1, "the record survived both attempts");
    assert.deepEqual(stored[0]!.pathIds, [pki.id("nse-a"), pki.id("registry")]);

    // The owner may refresh and unregister; then the name is free for anyone.
    await a.nse.register(nse("nse-1"), ctx());
    await a.nse.unregister(nse("nse-1"), ctx());
    const taken = await b.nse.register(nse("nse-1"), ctx());
    assert.deepEqual(taken.pathIds, [pki.id("nse-b"), pki.id("registry")]);
    await b.nse.unregister(taken, ctx());
  });

  it("client_allowed guards network service names too", async () => {
    const a = secureRegistryClients(registryClients(dial("nse-a", registryUrl)));
    const b = secureRegistryClients(registryClients(dial("nse-b", registryUrl)));
    await a.ns.register(create(NetworkServiceSchema, { name: "svc-owned" }), ctx());
    await assert.rejects(
      b.ns.register(create(NetworkServiceSchema, { name: "svc-owned", payload: "IP" }), ctx()),
      denied,
    );
    await a.ns.unregister(create(NetworkServiceSchema, { name: "svc-owned" }), ctx());
  });

  it("NSE → nsmgr → registry: path ids name every hop and every client check passes", async () => {
    const nsmgr = nsmgrRegistry({
      nsmgrUrl: "tcp://127.0.0.1:5001",
      signal: lifetime.signal,
      registry: secureRegistryClients(registryClients(dial("nsmgr", registryUrl))),
      security: registryServerSecurity({ tokenGenerator: createTokenGenerator(sources.nsmgr!) }),
    });
    const server = new grpc.Server();
    serveRegistry(server, nsmgr, { log });
    const nsmgrUrl = await bindUnix(server, serverCredentials(sources.nsmgr), dir.path, "nsmgr.sock");
    servers.push(server);

    const a = registryClient({
      registry: registryClients(dial("nse-a", nsmgrUrl)),
      security: registryClientSecurity(),
      refresh: false,
    });
    const registered: NetworkServiceEndpoint = await a.nse.register(nse("nse-via-nsmgr"), ctx());
    assert.deepEqual(registered.pathIds, [pki.id("nse-a"), pki.id("nsmgr"), pki.id("registry")]);

    // nse-b cannot take the name over at the cluster registry either (it goes through nsmgr too).
    const b = secureRegistryClients(registryClients(dial("nse-b", nsmgrUrl)));
    await assert.rejects(b.nse.register(nse("nse-via-nsmgr"), ctx()), denied);
    await a.nse.unregister(nse("nse-via-nsmgr"), ctx());
  });
});
