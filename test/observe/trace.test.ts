// SPDX-License-Identifier: Apache-2.0
/**
 * Traces of a running local runtime into a real Jaeger v2: `TELEMETRY=true
 * NSM_OPEN_TELEMETRY_ENDPOINT=unix:///…/otlp.sock nsm up --nodes 2`, examples/kernel2ethernet2kernel
 * (client on one node, endpoint on the other). The client's Request must be ONE trace in Jaeger
 * holding spans from every hop of the connection's path: the client, both nsmgrs, both
 * forwarders and the endpoint, each as its own service, rooted at the client. Then Jaeger is
 * stopped: a collector that is down neither fails nor slows the next Request (a new client
 * connects as fast as one did with the collector up), and the roles say so in their logs.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Jaeger, startJaeger } from "../helpers/jaeger.js";
import { missingPeers } from "../helpers/peers.js";
import { REPO, rows, skipReason, type TestRuntime, testRuntime } from "../local/helpers.js";

const EX = { dir: join(REPO, "examples", "kernel2ethernet2kernel"), ns: "ns-kernel2ethernet2kernel" };
const SERVICE = "kernel2ethernet2kernel";
const skip = skipReason() ?? missingPeers("jaeger");

interface JaegerSpan {
  spanID: string;
  operationName: string;
  processID: string;
  references: { refType: string; spanID: string; traceID: string }[];
}
interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string }>;
}

async function tracesOf(jaeger: Jaeger, service: string): Promise<JaegerTrace[]> {
  const url = `${jaeger.queryUrl}/api/traces?service=${encodeURIComponent(service)}&limit=100&lookback=1h`;
  const res = await fetch(url);
  assert.equal(res.status, 200, `${url}: ${await res.clone().text()}`);
  return ((await res.json()) as { data: JaegerTrace[] | null }).data ?? [];
}

const servicesOf = (t: JaegerTrace) => new Set(t.spans.map((s) => t.processes[s.processID]!.serviceName));

/** The path of the service's connection, as `nsm get connections` shows it (segment names). */
async function pathOf(rt: TestRuntime): Promise<string[]> {
  const row = rows(await rt.ok("get", "connections")).find((r) => r[2] === SERVICE);
  assert.ok(row, "no connection");
  return row[7]!.split(" > ");
}

describe("OpenTelemetry traces of the local runtime into Jaeger", { skip }, () => {
  let rt: TestRuntime;
  let jaeger: Jaeger;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "nsm-jaeger-"));
    jaeger = await startJaeger(dir);
    rt = testRuntime("trace", { TELEMETRY: "true", NSM_OPEN_TELEMETRY_ENDPOINT: jaeger.endpoint });
    await rt.ok("up", "--nodes", "2");
    await rt.ok("apply", "-f", EX.dir);
  });
  after(async () => {
    await rt?.cleanup();
    await jaeger?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("one client Request is one trace with spans from the client, both nsmgrs, both forwarders and the endpoint", async () => {
    const path = await pathOf(rt);
    assert.equal(path.length, 6, `path: ${path.join(" > ")}`);
    const client = path[0]!;
    let found: JaegerTrace | undefined;
    let seen = "";
    for (let i = 0; i < 60 && !found; i++) {
      const traces = await tracesOf(jaeger, client);
      found = traces.find((t) => path.every((name) => servicesOf(t).has(name)));
      seen = traces.map((t) => [...servicesOf(t)].join(",")).join(" | ");
      if (!found) await new Promise((r) => setTimeout(r, 1000));
    }
    assert.ok(found, `no trace of ${client} has every hop of ${path.join(" > ")}; traces: ${seen}`);
    const roots = found.spans.filter((s) => s.references.length === 0);
    assert.equal(roots.length, 1, "one root span");
    assert.equal(found.processes[roots[0]!.processID]!.serviceName, client, "the client's span is the root");
    const ids = new Set(found.spans.map((s) => s.spanID));
    for (const s of found.spans) {
      for (const ref of s.references) {
        assert.equal(ref.traceID, found.traceID);
        assert.ok(ids.has(ref.spanID), `span ${s.operationName} has a parent outside the trace`);
      }
    }
    const ops = new Set(found.spans.map((s) => s.operationName));
    assert.ok(
      [...ops].every((o) => /\.(Request|Close)$/.test(o)),
      [...ops].join(","),
    );
    assert.ok(found.spans.length >= 6 * 3, `only ${found.spans.length} spans`);
  });

  it("a collector that is down neither fails nor slows a Request", async () => {
    const withCollector = await reconnectSeconds(rt);
    await jaeger.stop();
    const without = await reconnectSeconds(rt);
    assert.ok(without < withCollector * 2 + 5, `reconnecting took ${without} s down, ${withCollector} s up`);
    const logs = readdirSync(join(rt.dir, "logs")).map((f) => readFileSync(join(rt.dir, "logs", f), "utf8"));
    assert.ok(
      logs.some((l) => l.includes("cannot export trace spans")),
      "no role noticed that the collector is down",
    );
  });
});

/** Deletes and re-applies the client; seconds until its connection is up again. */
async function reconnectSeconds(rt: TestRuntime): Promise<number> {
  const started = Date.now();
  await rt.ok("delete", "-f", join(EX.dir, "client.yaml"), "-n", EX.ns);
  await rt.ok("apply", "-f", join(EX.dir, "client.yaml"), "-n", EX.ns);
  let path: string[] = [];
  for (let i = 0; i < 120 && path.length === 0; i++) {
    path = await pathOf(rt).catch(() => []);
    if (path.length === 0) await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal(path.length, 6, "the new client's connection is up");
  return (Date.now() - started) / 1000;
}
