// SPDX-License-Identifier: Apache-2.0
// The registry storage tests (those of src/sdk/registry/common/memory and chains/memory) run on
// every backend from one table of store factories, plus what only a shared store can do: two
// replicas serving the same records, a restart that loses nothing, bad stored records skipped.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { KubeConfig } from "@kubernetes/client-node";
import {
  type NetworkService,
  type NetworkServiceEndpoint,
  NetworkServiceEndpointSchema,
  NetworkServiceSchema,
} from "../../src/api/gen/registry_pb.js";
import { etcdStores } from "../../src/etcd/store.js";
import { k8sStores } from "../../src/k8s/registry/store.js";
import { storeRegistry } from "../../src/registry-store/chain.js";
import { followStore, type RecordStore, registryStore, StoreGone } from "../../src/registry-store/index.js";
import { CallContext } from "../../src/sdk/core/context.js";
import { Code, type NsmError } from "../../src/sdk/core/errors.js";
import type { Logger } from "../../src/sdk/core/logger.js";
import { memoryRegistry } from "../../src/sdk/registry/chains/memory/index.js";
import type { RegistryChains } from "../../src/sdk/registry/chains/slots.js";
import { registryMemory } from "../../src/sdk/registry/common/memory/index.js";
import {
  bindRegistry,
  collectRecords,
  nseKind,
  nsKind,
  type RegistryElement,
  type RegistryKind,
  type RegistryTypes,
} from "../../src/sdk/registry/core/index.js";
import { eventually, nextWithin, testContext } from "../../src/sdk/testing/registry.js";
import { type KubeCluster, missingK8sPeers, startCluster } from "./harness.js";
import { type EtcdServer, missingEtcd, startEtcd } from "./registry-etcd.js";
import { applyCrds } from "./registry-k8s.js";

/** The stores of one isolated space (etcd prefix, k8s namespace) of a backend. */
interface Stores {
  readonly nse: RecordStore<NetworkServiceEndpoint>;
  readonly ns: RecordStore<NetworkService>;
  /** Writes raw bytes/objects where a record of `kind` named `name` would be (bad-input tests). */
  writeRaw(kind: "ns" | "nse", name: string, value: string): Promise<void>;
  close(): void;
}

export interface Backend {
  readonly name: string;
  readonly skip: string | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Stores on `space`: two calls with the same space are two replicas on the same data. */
  stores?(space: string): Promise<Stores>;
}

let etcd: EtcdServer | undefined;
const etcdBackend: Backend = {
  name: "etcd",
  skip: missingEtcd(),
  async start() {
    etcd = await startEtcd();
  },
  async stop() {
    await etcd?.stop();
  },
  async stores(space) {
    const prefix = `/nsm-test/${space}`;
    const s = etcdStores({ endpoints: [etcd!.endpoint], prefix });
    return {
      ...s,
      async writeRaw(kind, name, value) {
        const { Etcd3 } = await import("etcd3");
        const c = new Etcd3({ hosts: [etcd!.endpoint] });
        await c.put(`${prefix}/${kind}/${name}`).value(value);
        c.close();
      },
      close: () => s.close(),
    };
  },
};

const memoryBackend: Backend = { name: "memory", skip: undefined, start: async () => {}, stop: async () => {} };

let cluster: KubeCluster | undefined;
let kubeConfig: KubeConfig | undefined;
const k8sBackend: Backend = {
  name: "k8s",
  skip: missingK8sPeers(),
  async start() {
    cluster = await startCluster();
    await applyCrds(cluster);
    kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(cluster.kubeconfigPath);
  },
  async stop() {
    await cluster?.stop();
  },
  async stores(space) {
    await cluster!.kubectl(["create", "namespace", space]); // AlreadyExists for a second replica
    const s = k8sStores(kubeConfig!, space);
    return {
      ...s,
      async writeRaw(kind, name, value) {
        let spec: unknown;
        try {
          spec = JSON.parse(value);
        } catch {
          spec = { name: 7, url: { not: "a string" } }; // a spec no record decodes from
        }
        if (typeof spec !== "object" || Array.isArray(spec)) spec = { name: 7, url: { not: "a string" } };
        const resource = kind === "nse" ? "NetworkServiceEndpoint" : "NetworkService";
        const body = { apiVersion: "networkservicemesh.io/v1", kind: resource, metadata: { name }, spec };
        const r = await cluster!.kubectl(["-n", space, "create", "-f", "-"], { input: JSON.stringify(body) });
        assert.equal(r.code, 0, r.stderr);
      },
      close: () => {},
    };
  },
};

/** The backends every storage test runs on. */
export const backends: Backend[] = [memoryBackend, etcdBackend, k8sBackend];

let spaceSeq = 0;
const newSpace = () => `t${process.pid}-${Date.now()}-${spaceSeq++}`; // also a valid namespace name

const nse = (name: string, services: string[], url = "") =>
  create(NetworkServiceEndpointSchema, { name, networkServiceNames: services, url });

/** A capturing logger: `lines` gets every warn as `msg name reason`. */
function captureLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const noop = () => {};
  const log: Logger = {
    trace: noop,
    debug: noop,
    info: noop,
    warn: (a: unknown, b?: string) => lines.push(typeof a === "string" ? a : `${b} ${JSON.stringify(a)}`),
    error: noop,
    child: () => log,
    isLevelEnabled: () => true,
    level: "warn",
  } as Logger;
  return { log, lines };
}

function runStorageSuite(backend: Backend): void {
  const cleanups: (() => void)[] = [];
  after(() => {
    for (const c of cleanups.splice(0)) c();
  });
  async function element<T extends RegistryTypes>(kind: RegistryKind<T>): Promise<RegistryElement<T>> {
    if (!backend.stores) return registryMemory(kind);
    const s = await backend.stores(newSpace());
    cleanups.push(() => s.close());
    return registryStore(kind, (kind.id === "nse" ? s.nse : s.ns) as unknown as RecordStore<T["record"]>);
  }
  async function chains(life: AbortSignal, expirationMs: number): Promise<RegistryChains> {
    if (!backend.stores) return memoryRegistry({ expirationMs, signal: life });
    const s = await backend.stores(newSpace());
    cleanups.push(() => s.close());
    return storeRegistry({ nseStore: s.nse, nsStore: s.ns, expirationMs, signal: life });
  }

  it("Find without watch yields the current matches and ends", async () => {
    const { ctx, cancel } = testContext();
    const h = bindRegistry(await element(nseKind));
    await h.register(nse("a", ["s1"]), ctx);
    await h.register(nse("b", ["s1", "s2"]), ctx);
    await h.register(nse("c", ["s3"]), ctx);
    const all = await collectRecords(nseKind, h, nseKind.query(undefined, false), ctx);
    assert.deepEqual(all.map((r) => r.name).sort(), ["a", "b", "c"]);
    const s1 = await collectRecords(nseKind, h, nseKind.query(nse("", ["s1"]), false), ctx);
    assert.deepEqual(s1.map((r) => r.name).sort(), ["a", "b"]);
    const byName = await collectRecords(nseKind, h, nseKind.query(nse("b", []), false), ctx);
    assert.deepEqual(
      byName.map((r) => r.name),
      ["b"],
    );
    cancel();
  });

  it("replaces a record on re-register and forgets it on unregister", async () => {
    const { ctx, cancel } = testContext();
    const h = bindRegistry(await element(nseKind));
    await h.register(nse("a", ["s1"], "tcp://1.1.1.1:1"), ctx);
    await h.register(nse("a", ["s1"], "tcp://2.2.2.2:2"), ctx);
    let all = await collectRecords(nseKind, h, nseKind.query(undefined, false), ctx);
    assert.deepEqual(
      all.map((r) => r.url),
      ["tcp://2.2.2.2:2"],
    );
    await h.unregister(nse("a", []), ctx);
    all = await collectRecords(nseKind, h, nseKind.query(undefined, false), ctx);
    assert.equal(all.length, 0);
    cancel();
  });

  it("stores copies: changing a returned or found record does not change the store", async () => {
    const { ctx, cancel } = testContext();
    const h = bindRegistry(await element(nseKind));
    const input = nse("a", ["s1"], "tcp://1.1.1.1:1");
    const out = await h.register(input, ctx);
    out.url = "changed";
    input.url = "changed";
    const [found] = await collectRecords(nseKind, h, nseKind.query(undefined, false), ctx);
    found!.url = "changed";
    const [again] = await collectRecords(nseKind, h, nseKind.query(undefined, false), ctx);
    assert.equal(again!.url, "tcp://1.1.1.1:1");
    cancel();
  });

  it("Find with watch yields current matches, then updates and deletions that match, until aborted", async () => {
    const { ctx, cancel } = testContext();
    const h = bindRegistry(await element(nseKind));
    await h.register(nse("a", ["s1"]), ctx);
    await h.register(nse("other", ["s2"]), ctx);
    const watch = testContext();
    const it = h.find(nseKind.query(nse("", ["s1"]), true), watch.ctx)[Symbol.asyncIterator]();
    const first = await nextWithin(it);
    assert.equal(first.value?.networkServiceEndpoint?.name, "a");
    assert.equal(first.value?.deleted, false);
    await h.register(nse("other2", ["s2"]), ctx); // does not match: not delivered
    await h.register(nse("b", ["s1"], "tcp://3.3.3.3:3"), ctx);
    const update = await nextWithin(it);
    assert.equal(update.value?.networkServiceEndpoint?.name, "b");
    assert.equal(update.value?.networkServiceEndpoint?.url, "tcp://3.3.3.3:3");
    assert.equal(update.value?.deleted, false);
    await h.unregister(nse("a", []), ctx);
    const deleted = await nextWithin(it);
    assert.equal(deleted.value?.networkServiceEndpoint?.name, "a");
    assert.deepEqual(deleted.value?.networkServiceEndpoint?.networkServiceNames, ["s1"]);
    assert.equal(deleted.value?.deleted, true);
    const pending = it.next();
    watch.cancel();
    assert.equal((await pending).done, true);
    cancel();
  });

  it("delivers each event to every watcher", async () => {
    const { ctx, cancel } = testContext();
    const h = bindRegistry(await element(nseKind));
    const [w1, w2] = [testContext(), testContext()];
    const it1 = h.find(nseKind.query(undefined, true), w1.ctx)[Symbol.asyncIterator]();
    const it2 = h.find(nseKind.query(undefined, true), w2.ctx)[Symbol.asyncIterator]();
    const p1 = nextWithin(it1);
    const p2 = nextWithin(it2);
    await eventuallyWatching();
    await h.register(nse("a", ["s"]), ctx);
    assert.equal((await p1).value?.networkServiceEndpoint?.name, "a");
    assert.equal((await p2).value?.networkServiceEndpoint?.name, "a");
    w1.cancel();
    w2.cancel();
    cancel();
  });

  it("serves NetworkServices with the NS matching rules", async () => {
    const { ctx, cancel } = testContext();
    const h = bindRegistry(await element(nsKind));
    await h.register(create(NetworkServiceSchema, { name: "svc", payload: "ETHERNET" }), ctx);
    await h.register(create(NetworkServiceSchema, { name: "svc2", payload: "IP" }), ctx);
    const eth = await collectRecords(
      nsKind,
      h,
      nsKind.query(create(NetworkServiceSchema, { payload: "ETHERNET" }), false),
      ctx,
    );
    assert.deepEqual(
      eth.map((r) => r.name),
      ["svc"],
    );
    const byName = await collectRecords(
      nsKind,
      h,
      nsKind.query(create(NetworkServiceSchema, { name: "svc2" }), false),
      ctx,
    );
    assert.deepEqual(
      byName.map((r) => r.payload),
      ["IP"],
    );
    cancel();
  });

  it("the registry chain expires NSEs, keeps the registration time, sets the NS payload and validates", async () => {
    const { ctx, cancel } = testContext();
    const life = new AbortController();
    const reg = await chains(life.signal, 1500);
    const rec = nse("nse", ["s"], "unix:///nse.sock");
    const watch = testContext();
    const it = reg.nse.find(nseKind.query(undefined, true), watch.ctx)[Symbol.asyncIterator]();
    const first = nextWithin(it);
    await eventuallyWatching();
    const out = await reg.nse.register(rec, ctx);
    assert.ok(out.expirationTime && out.initialRegistrationTime);
    assert.equal((await first).value?.deleted, false);
    const again = await reg.nse.register(rec, ctx);
    assert.deepEqual(again.initialRegistrationTime, out.initialRegistrationTime);
    assert.equal((await nextWithin(it)).value?.deleted, false);
    const expired = (await nextWithin(it, 3000)).value!;
    assert.equal(expired.deleted, true);
    assert.equal(expired.networkServiceEndpoint?.name, "nse");
    watch.cancel();
    const ns = await reg.ns.register(create(NetworkServiceSchema, { name: "s" }), ctx);
    assert.equal(ns.payload, "IP");
    await assert.rejects(
      reg.ns.register(create(NetworkServiceSchema, {}), ctx),
      (e: NsmError) => e.code === Code.InvalidArgument,
    );
    assert.equal((await collectRecords(nsKind, reg.ns, nsKind.query(undefined, false), ctx)).length, 1);
    life.abort();
    cancel();
  });
}

/** A watch on an external store is opened asynchronously: give it a moment to be in place. */
async function eventuallyWatching(): Promise<void> {
  await new Promise((r) => setTimeout(r, 300));
}

function runSharedStoreSuite(backend: Backend): void {
  const stores = (space: string) => backend.stores!(space);

  it("two replicas on the same store serve the same records, and a watcher on one sees the other's", async () => {
    const space = newSpace();
    const [sa, sb] = [await stores(space), await stores(space)];
    const life = new AbortController();
    const a = storeRegistry({ nseStore: sa.nse, nsStore: sa.ns, signal: life.signal });
    const b = storeRegistry({ nseStore: sb.nse, nsStore: sb.ns, signal: life.signal });
    const { ctx, cancel } = testContext();
    const watch = testContext();
    const it = b.nse.find(nseKind.query(nse("", ["svc"]), true), watch.ctx)[Symbol.asyncIterator]();
    const first = nextWithin(it);
    await eventuallyWatching();
    await a.nse.register(nse("via-a", ["svc"], "tcp://10.0.0.1:5001"), ctx);
    assert.equal((await first).value?.networkServiceEndpoint?.name, "via-a");
    await b.ns.register(create(NetworkServiceSchema, { name: "svc" }), ctx);
    const fromA = await collectRecords(nsKind, a.ns, nsKind.query(undefined, false), ctx);
    assert.deepEqual(
      fromA.map((r) => r.name),
      ["svc"],
    );
    const fromB = await collectRecords(nseKind, b.nse, nseKind.query(undefined, false), ctx);
    assert.deepEqual(
      fromB.map((r) => r.url),
      ["tcp://10.0.0.1:5001"],
    );
    await a.nse.unregister(nse("via-a", []), ctx); // begin forwards it only where it was registered
    assert.equal((await nextWithin(it)).value?.deleted, true);
    watch.cancel();
    life.abort();
    cancel();
    sa.close();
    sb.close();
  });

  it("replicas writing the same record in turn all succeed (conflicts retried) and the last write wins", async () => {
    const space = newSpace();
    const [sa, sb] = [await stores(space), await stores(space)];
    const life = new AbortController();
    const a = storeRegistry({ nseStore: sa.nse, nsStore: sa.ns, signal: life.signal });
    const b = storeRegistry({ nseStore: sb.nse, nsStore: sb.ns, signal: life.signal });
    const { ctx, cancel } = testContext(20_000);
    for (const [i, r] of [a, b, a, b, a].entries()) {
      await r.nse.register(nse("shared", ["svc"], `tcp://10.9.0.${i}:5001`), ctx);
    }
    const found = await collectRecords(nseKind, b.nse, nseKind.query(undefined, false), ctx);
    assert.deepEqual(
      found.map((r) => r.url),
      ["tcp://10.9.0.4:5001"],
    );
    life.abort();
    cancel();
    sa.close();
    sb.close();
  });

  it("a registry restart loses nothing", async () => {
    const space = newSpace();
    const { ctx, cancel } = testContext();
    const s1 = await stores(space);
    const life1 = new AbortController();
    const r1 = storeRegistry({ nseStore: s1.nse, nsStore: s1.ns, signal: life1.signal });
    await r1.nse.register(nse("kept", ["svc"], "tcp://10.0.0.2:5001"), ctx);
    await r1.ns.register(create(NetworkServiceSchema, { name: "svc" }), ctx);
    life1.abort();
    s1.close();
    const s2 = await stores(space);
    const r2 = storeRegistry({ nseStore: s2.nse, nsStore: s2.ns });
    const found = await collectRecords(nseKind, r2.nse, nseKind.query(undefined, false), ctx);
    assert.deepEqual(
      found.map((r) => r.name),
      ["kept"],
    );
    assert.equal((await collectRecords(nsKind, r2.ns, nsKind.query(undefined, false), ctx)).length, 1);
    s2.close();
    cancel();
  });

  it("skips bad stored records with a log line naming each, in Find and in a watch", async () => {
    const space = newSpace();
    const s = await stores(space);
    const { log, lines } = captureLogger();
    const ctx = CallContext.create({ signal: AbortSignal.timeout(10_000), log });
    const life = new AbortController();
    const reg = storeRegistry({ nseStore: s.nse, nsStore: s.ns, signal: life.signal });
    await reg.nse.register(nse("good", ["svc"], "tcp://10.0.0.3:5001"), ctx);
    const past = new Date(Date.now() - 60_000).toISOString();
    await s.writeRaw(
      "nse",
      "bad-url",
      JSON.stringify({ name: "bad-url", url: "ftp://x", networkServiceNames: ["svc"] }),
    );
    await s.writeRaw(
      "nse",
      "expired",
      JSON.stringify({ name: "expired", url: "tcp://1.2.3.4:5", expirationTime: past }),
    );
    await s.writeRaw("nse", "garbage", "{not json");
    await s.writeRaw("ns", "weird", JSON.stringify({ name: "weird", payload: "CARRIER_PIGEON" }));
    const found = await collectRecords(nseKind, reg.nse, nseKind.query(undefined, false), ctx);
    assert.deepEqual(
      found.map((r) => r.name),
      ["good"],
    );
    assert.equal((await collectRecords(nsKind, reg.ns, nsKind.query(undefined, false), ctx)).length, 0);
    for (const name of ["bad-url", "garbage", "missing"]) {
      const byName = await collectRecords(nseKind, reg.nse, nseKind.query(nse(name, []), false), ctx);
      assert.equal(byName.length, 0, `Find by name ${name}`);
    }
    const good = await collectRecords(nseKind, reg.nse, nseKind.query(nse("good", []), false), ctx);
    assert.equal(good[0]?.url, "tcp://10.0.0.3:5001");
    for (const name of ["bad-url", "expired", "garbage", "weird"]) {
      assert.ok(
        lines.some((l) => l.includes(`"name":"${name}"`)),
        `no log line names ${name}: ${lines.join("\n")}`,
      );
    }
    const wctx = CallContext.create({ signal: AbortSignal.timeout(5000), log });
    const it = reg.nse.find(nseKind.query(undefined, true), wctx)[Symbol.asyncIterator]();
    assert.equal((await nextWithin(it)).value?.networkServiceEndpoint?.name, "good");
    await eventuallyWatching();
    await s.writeRaw("nse", "garbage2", "[]]");
    await reg.nse.register(nse("good2", ["svc"], "tcp://10.0.0.4:5001"), ctx);
    assert.equal((await nextWithin(it)).value?.networkServiceEndpoint?.name, "good2");
    await eventually(() => lines.some((l) => l.includes('"name":"garbage2"')));
    life.abort();
    s.close();
  });
}

for (const backend of backends) {
  describe(`registry storage on ${backend.name}`, { skip: backend.skip }, () => {
    before(() => backend.start());
    after(() => backend.stop());
    runStorageSuite(backend);
    if (backend.stores) describe("shared store", () => runSharedStoreSuite(backend));
  });
}

describe("etcd leases", { skip: etcdBackend.skip }, () => {
  before(() => etcdBackend.start());
  after(() => etcdBackend.stop());
  it("a record whose registry is gone disappears when its lease ends", async () => {
    const space = newSpace();
    const [sa, sb] = [await etcdBackend.stores!(space), await etcdBackend.stores!(space)];
    const life = new AbortController();
    const a = storeRegistry({ nseStore: sa.nse, nsStore: sa.ns, expirationMs: 1500, signal: life.signal });
    const b = storeRegistry({ nseStore: sb.nse, nsStore: sb.ns });
    const { ctx, cancel } = testContext(10_000);
    await a.nse.register(nse("orphan", ["svc"], "tcp://10.0.0.5:5001"), ctx);
    life.abort(); // replica a is gone: its expiry timer will not run
    sa.close();
    assert.equal((await collectRecords(nseKind, b.nse, nseKind.query(undefined, false), ctx)).length, 1);
    await eventually(async () => (await sb.nse.list(ctx.signal)).records.length === 0, 5000, 200);
    sb.close();
    cancel();
  });
});

describe("followStore", () => {
  it("lists again when the watch revision is gone and yields the differences", async () => {
    type Rec = { name: string; v: number };
    let listed: Rec[] = [
      { name: "a", v: 1 },
      { name: "b", v: 1 },
    ];
    let lists = 0;
    let watches = 0;
    const store: RecordStore<Rec> = {
      backend: "fake",
      put: async () => {},
      remove: async () => {},
      get: async () => ({ records: [], skipped: [], revision: "0" }),
      list: async () => {
        lists++;
        return { records: listed, skipped: [], revision: String(lists * 10) };
      },
      async *watch(revision, signal) {
        watches++;
        if (watches === 1) {
          assert.equal(revision, "10");
          yield { revision: "11", record: { name: "c", v: 1 }, deleted: false };
          listed = [
            { name: "b", v: 2 },
            { name: "c", v: 1 },
          ];
          throw new StoreGone("410 Gone");
        }
        assert.equal(revision, "20");
        if (!signal.aborted) await new Promise((r) => signal.addEventListener("abort", r, { once: true }));
      },
    };
    const ac = new AbortController();
    const seen: string[] = [];
    const { log } = captureLogger();
    for await (const ev of followStore(store, ac.signal, log)) {
      seen.push(`${ev.deleted ? "-" : "+"}${ev.record?.name}${ev.record?.v}`);
      if (seen.length === 6) ac.abort();
    }
    assert.deepEqual(seen, ["+a1", "+b1", "+c1", "-a1", "+b2", "+c1"]);
    assert.equal(lists, 2);
  });
});
