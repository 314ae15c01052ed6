// SPDX-License-Identifier: Apache-2.0
/**
 * Registry backends: Register / Find / watch latency and records per second on the memory,
 * etcd and k8s backends (the registry chain called in process, no gRPC), next to the floors
 * measured in the same run: a bare etcd put/get on the same etcd, and a bare apiserver
 * create/get of the same custom resource on the same kube-apiserver.
 *
 * - Register: N NSEs one after another (p50, p95, records/s);
 * - Find: N/10 Finds by name, no watch (p50);
 * - watch: a watcher on a second replica of the same store (its own connection; memory has
 *   no replicas, so there it is the same registry); for W new
 *   NSEs, the time from the Register call to the watcher's event (p50, p95).
 * The apiserver part is left out (null) when kube-apiserver is not built (scripts/peers.sh).
 *
 * Usage: npm run bench:registry [-- --records 1000] [-- --smoke]
 * The last line is JSON: etcd_register_ratio and k8s_register_ratio (our Register p50 / the
 * bare store write p50), etcd_watch_p95_ms and k8s_watch_p95_ms.
 */
import { parseArgs } from "node:util";
import { create } from "@bufbuild/protobuf";
import { CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import { Etcd3 } from "etcd3";
import { type NetworkServiceEndpoint, NetworkServiceEndpointSchema } from "../src/api/gen/registry_pb.js";
import { etcdStores } from "../src/etcd/store.js";
import { k8sStores } from "../src/k8s/registry/store.js";
import { storeRegistry } from "../src/registry-store/chain.js";
import { CallContext } from "../src/sdk/core/context.js";
import { memoryRegistry } from "../src/sdk/registry/chains/memory/index.js";
import type { RegistryChains } from "../src/sdk/registry/chains/slots.js";
import { nseKind } from "../src/sdk/registry/core/index.js";
import { type KubeCluster, missingK8sPeers, startCluster } from "../test/k8s/harness.js";
import { startEtcd } from "../test/k8s/registry-etcd.js";
import { applyCrds } from "../test/k8s/registry-k8s.js";
import { pct, r3 } from "./common.js";

const { values } = parseArgs({ options: { records: { type: "string", default: "1000" }, smoke: { type: "boolean" } } });
const N = values.smoke ? 20 : Number(values.records);
const FINDS = Math.max(5, Math.floor(N / 10));
const WATCHED = values.smoke ? 10 : Math.min(200, N);
const EXPIRE_MS = 30 * 60_000; // nothing expires during the run

interface BackendFigures {
  register_p50_ms: number;
  register_p95_ms: number;
  records_per_s: number;
  find_p50_ms: number;
  watch_p50_ms: number;
  watch_p95_ms: number;
}

const nse = (i: number, tag: string): NetworkServiceEndpoint =>
  create(NetworkServiceEndpointSchema, {
    name: `${tag}-nse-${i}`,
    networkServiceNames: ["bench"],
    networkServiceLabels: { bench: { labels: { app: "bench", n: String(i % 10) } } },
    url: `tcp://10.${(i >> 8) & 255}.${i & 255}.1:5001`,
  });

async function timeEach(n: number, op: (i: number) => Promise<unknown>): Promise<{ times: number[]; totalMs: number }> {
  const times: number[] = [];
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await op(i);
    times.push(performance.now() - t);
  }
  return { times, totalMs: performance.now() - start };
}

/** Register→event latency of W new NSEs seen by a watcher on `watcher` (another replica). */
async function watchLatency(writer: RegistryChains, watcher: RegistryChains, tag: string): Promise<number[]> {
  const ctx = CallContext.create();
  const ac = new AbortController();
  const pending = new Map<string, (t: number) => void>();
  const template = create(NetworkServiceEndpointSchema, { networkServiceNames: ["bench-watch"] });
  const stream = watcher.nse.find(nseKind.query(template, true), CallContext.create({ signal: ac.signal }));
  const consumed = (async () => {
    for await (const ev of stream) pending.get(ev.networkServiceEndpoint?.name ?? "")?.(performance.now());
  })().catch(() => {});
  await new Promise((r) => setTimeout(r, 500)); // the watch is open
  const times: number[] = [];
  for (let i = 0; i < WATCHED; i++) {
    const rec = nse(i, `${tag}-w`);
    rec.networkServiceNames = ["bench-watch"];
    const seen = new Promise<number>((resolve) => pending.set(rec.name, resolve));
    const t = performance.now();
    await writer.nse.register(rec, ctx);
    times.push((await seen) - t);
    pending.delete(rec.name);
  }
  ac.abort();
  await consumed;
  return times;
}

async function measureBackend(tag: string, a: RegistryChains, b: RegistryChains): Promise<BackendFigures> {
  const ctx = CallContext.create();
  const reg = await timeEach(N, (i) => a.nse.register(nse(i, tag), ctx));
  const find = await timeEach(FINDS, async (i) => {
    const q = nseKind.query(create(NetworkServiceEndpointSchema, { name: `${tag}-nse-${(i * 7) % N}` }), false);
    let found = 0;
    for await (const _ of a.nse.find(q, ctx)) found++;
    if (found !== 1) throw new Error(`${tag}: Find by name found ${found}`);
  });
  const watch = await watchLatency(a, b, tag);
  return {
    register_p50_ms: r3(pct(reg.times, 50)),
    register_p95_ms: r3(pct(reg.times, 95)),
    records_per_s: Math.round((N * 1000) / reg.totalMs),
    find_p50_ms: r3(pct(find.times, 50)),
    watch_p50_ms: r3(pct(watch, 50)),
    watch_p95_ms: r3(pct(watch, 95)),
  };
}

async function etcdFloor(endpoint: string): Promise<{ put_p50_ms: number; get_p50_ms: number }> {
  const client = new Etcd3({ hosts: [endpoint] });
  const value = JSON.stringify(nse(0, "floor"));
  const put = await timeEach(N, (i) => client.put(`/bench-floor/${i}`).value(value).exec());
  const get = await timeEach(FINDS, (i) => client.get(`/bench-floor/${(i * 7) % N}`).string());
  client.close();
  return { put_p50_ms: r3(pct(put.times, 50)), get_p50_ms: r3(pct(get.times, 50)) };
}

async function apiserverFloor(
  kc: KubeConfig,
  namespace: string,
): Promise<{ create_p50_ms: number; get_p50_ms: number }> {
  const api = kc.makeApiClient(CustomObjectsApi);
  const where = { group: "networkservicemesh.io", version: "v1", namespace, plural: "networkserviceendpoints" };
  const spec = { name: "x", url: "tcp://10.0.0.1:5001", network_service_names: ["floor"] };
  const body = (i: number) => ({
    apiVersion: "networkservicemesh.io/v1",
    kind: "NetworkServiceEndpoint",
    metadata: { name: `floor-${i}` },
    spec: { ...spec, name: `floor-${i}` },
  });
  const created = await timeEach(N, (i) => api.createNamespacedCustomObject({ ...where, body: body(i) }));
  const got = await timeEach(FINDS, (i) => api.getNamespacedCustomObject({ ...where, name: `floor-${(i * 7) % N}` }));
  return { create_p50_ms: r3(pct(created.times, 50)), get_p50_ms: r3(pct(got.times, 50)) };
}

async function runEtcd() {
  const etcd = await startEtcd();
  const life = new AbortController();
  const [sa, sb] = [etcdStores({ endpoints: [etcd.endpoint] }), etcdStores({ endpoints: [etcd.endpoint] })];
  try {
    const floor = await etcdFloor(etcd.endpoint);
    const ours = await measureBackend(
      "etcd",
      storeRegistry({ nseStore: sa.nse, nsStore: sa.ns, expirationMs: EXPIRE_MS, signal: life.signal }),
      storeRegistry({ nseStore: sb.nse, nsStore: sb.ns, expirationMs: EXPIRE_MS, signal: life.signal }),
    );
    return { floor, ours };
  } finally {
    life.abort();
    sa.close();
    sb.close();
    await etcd.stop();
  }
}

async function runK8s() {
  const skip = missingK8sPeers();
  if (skip) return { skip };
  let cluster: KubeCluster | undefined;
  const life = new AbortController();
  try {
    cluster = await startCluster();
    await applyCrds(cluster);
    for (const ns of ["bench-floor", "bench-nsm"]) await cluster.kubectl(["create", "namespace", ns]);
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    const floor = await apiserverFloor(kc, "bench-floor");
    const [sa, sb] = [k8sStores(kc, "bench-nsm"), k8sStores(kc, "bench-nsm")];
    const ours = await measureBackend(
      "k8s",
      storeRegistry({ nseStore: sa.nse, nsStore: sa.ns, expirationMs: EXPIRE_MS, signal: life.signal }),
      storeRegistry({ nseStore: sb.nse, nsStore: sb.ns, expirationMs: EXPIRE_MS, signal: life.signal }),
    );
    return { floor, ours };
  } finally {
    life.abort();
    await cluster?.stop();
  }
}

async function main() {
  const life = new AbortController();
  // One memory registry is both writer and watcher: replicas of the memory backend share nothing.
  const mem = memoryRegistry({ expirationMs: EXPIRE_MS, signal: life.signal });
  const memory = await measureBackend("mem", mem, mem);
  life.abort();
  const etcd = await runEtcd();
  const k8s = await runK8s();
  console.log(`registry backends, ${N} NSEs registered, ${FINDS} Finds, ${WATCHED} watched:`);
  console.log(`  memory: ${JSON.stringify(memory)}`);
  console.log(`  etcd  : ${JSON.stringify(etcd.ours)}`);
  console.log(`  etcd floor (bare put/get): ${JSON.stringify(etcd.floor)}`);
  if ("skip" in k8s) console.log(`  k8s   : skipped: ${k8s.skip}`);
  else {
    console.log(`  k8s   : ${JSON.stringify(k8s.ours)}`);
    console.log(`  apiserver floor (bare create/get): ${JSON.stringify(k8s.floor)}`);
  }
  const k = "skip" in k8s ? undefined : k8s;
  const result = {
    records: N,
    memory_register_p50_ms: memory.register_p50_ms,
    etcd_register_p50_ms: etcd.ours.register_p50_ms,
    etcd_put_p50_ms: etcd.floor.put_p50_ms,
    etcd_records_per_s: etcd.ours.records_per_s,
    k8s_register_p50_ms: k?.ours.register_p50_ms ?? null,
    k8s_create_p50_ms: k?.floor.create_p50_ms ?? null,
    k8s_records_per_s: k?.ours.records_per_s ?? null,
    etcd_register_ratio: r3(etcd.ours.register_p50_ms / etcd.floor.put_p50_ms),
    k8s_register_ratio: k ? r3(k.ours.register_p50_ms / k.floor.create_p50_ms) : null,
    etcd_watch_p95_ms: etcd.ours.watch_p95_ms,
    k8s_watch_p95_ms: k?.ours.watch_p95_ms ?? null,
  };
  console.log(JSON.stringify(result));
}

await main();
