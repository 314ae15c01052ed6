// SPDX-License-Identifier: Apache-2.0
/**
 * What the gRPC fuzz tests send: the services of each role, a valid seed message per request type
 * (the mutations start from these), and the loop that fuzzes every method of a target within a
 * time budget and reports every unclear answer.
 */
import { spawn } from "node:child_process";
import { cpSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, type DescMessage, type DescMethod, type DescService, fromBinary, toBinary } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { SpiffeWorkloadAPI } from "../../src/api/gen/workload_pb.js";
import {
  ConnectionSchema,
  MonitorConnection,
  MonitorScopeSelectorSchema,
  NetworkService,
  NetworkServiceRequestSchema,
  registry,
} from "../../src/api/index.js";
import { EXAMPLE } from "../local/helpers.js";
import { mutateN, type RawResult, type Rng, randomMessage, rawStream, rawUnary, unclear } from "./harness.js";

export const NETWORK_SERVICES = [NetworkService, MonitorConnection];
export const REGISTRY_SERVICES = [registry.NetworkServiceRegistry, registry.NetworkServiceEndpointRegistry];
export const WORKLOAD_SERVICES = [SpiffeWorkloadAPI];

/** A netns of the test's own with a process in it: the only netns a fuzzed Request may name. */
export interface Holder {
  readonly netns: string;
  readonly pid: number;
  readonly url: string;
  close(): void;
}

export async function startHolder(netns: string): Promise<Holder> {
  const { execFileSync } = await import("node:child_process");
  execFileSync("ip", ["netns", "add", netns]);
  const child = spawn("ip", ["netns", "exec", netns, "sleep", "3600"], { stdio: "ignore" });
  await new Promise((r) => setTimeout(r, 200));
  const pid = child.pid!;
  return {
    netns,
    pid,
    url: `file:///proc/${pid}/ns/net`,
    close() {
      child.kill("SIGKILL");
      try {
        execFileSync("ip", ["netns", "del", netns]);
      } catch {}
    },
  };
}

/** Valid messages of each request type, naming the holder's netns and fuzz-only names. */
export function seeds(holderUrl: string): Map<string, Uint8Array[]> {
  const mech = (name: string) => ({ cls: "LOCAL", type: "KERNEL", parameters: { inodeURL: holderUrl, name } });
  const conn = (id: string, service: string) =>
    create(ConnectionSchema, {
      id,
      networkService: service,
      payload: "ETHERNET",
      labels: { app: "fuzz" },
      mechanism: mech("nsm-f"),
      path: { index: 0, pathSegments: [{ name: "fuzz-nsc", id }] },
    });
  const request = (id: string, service: string) =>
    toBinary(
      NetworkServiceRequestSchema,
      create(NetworkServiceRequestSchema, { connection: conn(id, service), mechanismPreferences: [mech("nsm-f")] }),
    );
  const nse = create(registry.NetworkServiceEndpointSchema, {
    name: "fuzz-nse",
    networkServiceNames: ["fuzz-svc"],
    url: "tcp://127.0.0.1:1",
    networkServiceLabels: { "fuzz-svc": { labels: { app: "fuzz" } } },
  });
  const ns = create(registry.NetworkServiceSchema, { name: "fuzz-svc", payload: "ETHERNET" });
  const m = new Map<string, Uint8Array[]>();
  m.set(NetworkServiceRequestSchema.typeName, [request("fuzz-1", "kernel2kernel"), request("fuzz-2", "fuzz-svc")]);
  m.set(ConnectionSchema.typeName, [toBinary(ConnectionSchema, conn("fuzz-1", "kernel2kernel"))]);
  m.set(MonitorScopeSelectorSchema.typeName, [
    toBinary(MonitorScopeSelectorSchema, create(MonitorScopeSelectorSchema, { pathSegments: [{ name: "fuzz-nsc" }] })),
  ]);
  m.set(registry.NetworkServiceEndpointSchema.typeName, [toBinary(registry.NetworkServiceEndpointSchema, nse)]);
  m.set(registry.NetworkServiceSchema.typeName, [toBinary(registry.NetworkServiceSchema, ns)]);
  m.set(registry.NetworkServiceEndpointQuerySchema.typeName, [
    toBinary(
      registry.NetworkServiceEndpointQuerySchema,
      create(registry.NetworkServiceEndpointQuerySchema, { networkServiceEndpoint: { name: "fuzz-nse" } }),
    ),
  ]);
  m.set(registry.NetworkServiceQuerySchema.typeName, [
    toBinary(
      registry.NetworkServiceQuerySchema,
      create(registry.NetworkServiceQuerySchema, { networkService: { name: "fuzz-svc" } }),
    ),
  ]);
  return m;
}

/** The inodeURL values a decodable Request or Connection carries (undefined: not decodable). */
function inodeUrls(desc: DescMessage, body: Uint8Array): string[] | undefined {
  try {
    if (desc.typeName === NetworkServiceRequestSchema.typeName) {
      const r = fromBinary(NetworkServiceRequestSchema, body);
      return [r.connection?.mechanism, ...r.mechanismPreferences].flatMap((m) =>
        m ? Object.values(m.parameters) : [],
      );
    }
    if (desc.typeName === ConnectionSchema.typeName) {
      return Object.values(fromBinary(ConnectionSchema, body).mechanism?.parameters ?? {});
    }
  } catch {
    return undefined;
  }
  return [];
}

/**
 * Whether a body is safe to send to an insecure runtime (no netns ownership check there): a
 * decodable Request or Connection whose parameters name any netns other than the holder's could
 * wire the host's namespace, so it is not sent.
 */
export function safeToSend(desc: DescMessage, body: Uint8Array, holderUrl: string): boolean {
  if (namesTheMesh(desc, body)) return false;
  const values = inodeUrls(desc, body) ?? [];
  return values.every((v) => v === holderUrl || !/file:|\/proc\/|netns/i.test(v));
}

const MESH_NAMES = /^(kernel2kernel|nse-kernel|forwarder-|nsmgr-)/;

/**
 * Whether a decodable registry entity names the runtime's own service, endpoint, forwarder or
 * nsmgr: without authorization (insecure mode) anyone may unregister or overwrite those, which
 * would only test that insecure mode is insecure.
 */
function namesTheMesh(desc: DescMessage, body: Uint8Array): boolean {
  try {
    if (desc.typeName === registry.NetworkServiceSchema.typeName)
      return MESH_NAMES.test(fromBinary(registry.NetworkServiceSchema, body).name);
    if (desc.typeName === registry.NetworkServiceEndpointSchema.typeName) {
      const e = fromBinary(registry.NetworkServiceEndpointSchema, body);
      return MESH_NAMES.test(e.name) || e.networkServiceNames.some((n) => MESH_NAMES.test(n));
    }
  } catch {
    return false;
  }
  return false;
}

/** One fuzzing target: a role's socket and the services it is fuzzed with. */
export interface Target {
  readonly role: string;
  readonly client: grpc.Client;
  readonly services: DescService[];
  readonly metadata?: () => grpc.Metadata;
}

export interface FuzzOptions {
  readonly rng: Rng;
  readonly seconds: number;
  readonly seeds: Map<string, Uint8Array[]>;
  readonly holderUrl: string;
  readonly deadlineMs: number;
  /** Deadline of server-streaming calls. @default min(1500, deadlineMs) */
  readonly streamDeadlineMs?: number;
  /** Calls in flight at once. */
  readonly parallel: number;
}

export interface FuzzReport {
  calls: number;
  skipped: number;
  byCode: Record<string, number>;
  problems: string[];
  /** A few distinct non-OK details, for the log. */
  details: Set<string>;
}

function pickBody(m: DescMethod, o: FuzzOptions): Uint8Array {
  const seeded = o.seeds.get(m.input.typeName) ?? [];
  const r = o.rng.int(100);
  if (seeded.length && r < 45) return mutateN(o.rng.pick(seeded), o.rng);
  if (r < 75) return randomMessage(m.input, o.rng);
  if (r < 90) return mutateN(randomMessage(m.input, o.rng), o.rng);
  return o.rng.bytes(o.rng.int(256));
}

const call = (t: Target, m: DescMethod, svc: DescService, body: Uint8Array, deadlineMs: number) => {
  const path = `/${svc.typeName}/${m.name}`;
  const md = t.metadata?.();
  return m.methodKind === "server_streaming"
    ? rawStream(t.client, path, body, deadlineMs, md)
    : rawUnary(t.client, path, body, deadlineMs, md);
};

/**
 * Undoes what a fuzzed call created: a Connection returned by Request is closed, an entity
 * returned by Register unregistered (with the bytes the server returned, unchanged).
 */
async function undo(t: Target, m: DescMethod, svc: DescService, r: RawResult, deadlineMs: number) {
  const undoName = m.name === "Request" ? "Close" : m.name === "Register" ? "Unregister" : undefined;
  const um = undoName && svc.methods.find((x) => x.name === undoName);
  if (!um || r.code !== 0 || !r.messages[0]) return;
  await call(t, um, svc, r.messages[0], deadlineMs);
}

async function fuzzOnce(t: Target, svc: DescService, m: DescMethod, o: FuzzOptions, report: FuzzReport) {
  const body = pickBody(m, o);
  if (!safeToSend(m.input, body, o.holderUrl)) {
    report.skipped++;
    return;
  }
  const deadline =
    m.methodKind === "server_streaming" ? (o.streamDeadlineMs ?? Math.min(1500, o.deadlineMs)) : o.deadlineMs;
  const r = await call(t, m, svc, body, deadline);
  report.calls++;
  const key = `${m.name}:${r.code}`;
  report.byCode[key] = (report.byCode[key] ?? 0) + 1;
  if (r.code !== 0 && report.details.size < 200) report.details.add(`${m.name} ${r.code} ${r.details.slice(0, 160)}`);
  const problem = unclear(r, deadline);
  if (problem && report.problems.length < 20) {
    report.problems.push(`${t.role} ${svc.typeName}/${m.name} ${problem} (body ${Buffer.from(body).toString("hex")})`);
  }
  await undo(t, m, svc, r, o.deadlineMs);
}

/** Fuzzes every method of `t` for `o.seconds` in total, `o.parallel` calls at a time. */
export async function fuzzTarget(t: Target, o: FuzzOptions): Promise<FuzzReport> {
  const report: FuzzReport = { calls: 0, skipped: 0, byCode: {}, problems: [], details: new Set() };
  const methods = t.services.flatMap((svc) => svc.methods.map((m) => [svc, m] as const));
  const until = Date.now() + o.seconds * 1000;
  let next = 0;
  const worker = async () => {
    while (Date.now() < until) {
      const [svc, m] = methods[next++ % methods.length]!;
      await fuzzOnce(t, svc, m, o, report);
    }
  };
  await Promise.all(Array.from({ length: o.parallel }, worker));
  return report;
}

/** A copy of examples/kernel2kernel split in two: the mesh (ns, service, endpoint) and the client. */
export function splitExample(): { mesh: string; client: string } {
  const root = mkdtempSync(join(tmpdir(), "nsm-fuzz-k2k-"));
  const mesh = join(root, "mesh");
  const client = join(root, "client");
  for (const dir of [mesh, client]) cpSync(EXAMPLE, dir, { recursive: true });
  writeFileSync(
    join(mesh, "kustomization.yaml"),
    "namespace: ns-kernel2kernel\nresources:\n  - ns-kernel2kernel.yaml\n  - netsvc.yaml\n  - nse.yaml\npatchesStrategicMerge:\n  - patch-nse.yaml\n",
  );
  writeFileSync(join(client, "kustomization.yaml"), "namespace: ns-kernel2kernel\nresources:\n  - client.yaml\n");
  return { mesh, client };
}
