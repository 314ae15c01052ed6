// SPDX-License-Identifier: Apache-2.0
/**
 * Fault injection through the local runtime: manifests for endpoints and clients pinned to
 * nodes, a background pinger that records every answered echo (loss and the longest gap), and
 * readers of the NSC sidecar's structured log ("connection established" / "connection healed").
 * Faults are `nsm stop|start|restart TARGET [--kill]` and `nsm delete`; every process is the
 * runtime's, stopped by PID. Used by test/heal/*.test.ts and bench/heal.ts.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { icmpEcho } from "../../src/kernel/icmp.js";
import { ipJson, podNetns, type TestRuntime } from "../local/helpers.js";

export const NSE_IMAGE = "ghcr.io/networkservicemesh/cmd-nse-icmp-responder:v1.14.0";

export interface NseSpec {
  name: string;
  service: string;
  /** `NSM_CIDR_PREFIX`, e.g. 172.16.10.100/31: the endpoint gets .100, its client .101. */
  cidr: string;
  node: string;
  labels?: string;
  /** More container environment (e.g. NSM_UNREGISTER_ITSELF). */
  env?: Record<string, string>;
}

export interface ClientSpec {
  name: string;
  /** e.g. kernel://heal/nsm-1 */
  nsurl: string;
  node: string;
}

export function namespaceYaml(ns: string): string {
  return `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n`;
}

export function networkServiceYaml(
  name: string,
  payload: "ETHERNET" | "IP",
  matches?: { sourceSelector?: Record<string, string>; destinationSelector: Record<string, string> }[],
): string {
  const lines = [
    "apiVersion: networkservicemesh.io/v1",
    "kind: NetworkService",
    "metadata:",
    `  name: ${name}`,
    "spec:",
    `  payload: ${payload}`,
  ];
  if (matches) {
    lines.push("  matches:");
    for (const m of matches) {
      lines.push("    - source_selector:");
      for (const [k, v] of Object.entries(m.sourceSelector ?? {})) lines.push(`        ${k}: "${v}"`);
      if (!m.sourceSelector || Object.keys(m.sourceSelector).length === 0) lines[lines.length - 1] += " {}";
      lines.push("      routes:", "        - destination_selector:");
      for (const [k, v] of Object.entries(m.destinationSelector)) lines.push(`            ${k}: "${v}"`);
    }
  }
  return `${lines.join("\n")}\n`;
}

export function nseYaml(s: NseSpec): string {
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${s.name}
  labels:
    app: ${s.name}
spec:
  nodeName: ${s.node}
  containers:
    - name: nse
      image: ${NSE_IMAGE}
      env:
        - name: NSM_NAME
          value: ${s.name}
        - name: NSM_SERVICE_NAMES
          value: ${s.service}
        - name: NSM_CIDR_PREFIX
          value: ${s.cidr}
        - name: NSM_LABELS
          value: "${s.labels ?? `app:${s.name}`}"
        - name: NSM_CONNECT_TO
          value: unix:///var/lib/networkservicemesh/nsm.io.sock
        - name: NSM_REGISTER_SERVICE
          value: "false"
${Object.entries(s.env ?? {})
  .map(([k, v]) => `        - name: ${k}\n          value: "${v}"\n`)
  .join("")}`;
}

export function clientYaml(c: ClientSpec): string {
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${c.name}
  labels:
    app: ${c.name}
  annotations:
    networkservicemesh.io: ${c.nsurl}
spec:
  nodeName: ${c.node}
  containers:
    - name: app
      image: alpine:3.15.0
`;
}

/** Writes `docs` (YAML documents) to `dir/name.yaml` and returns the path. */
export function writeManifest(dir: string, name: string, ...docs: string[]): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, docs.join("---\n"));
  return file;
}

// ---------------------------------------------------------------------------------------------
// Pings

/**
 * One echo from the pod's netns; true if answered within `timeoutMs`. Sent through the addon
 * (src/kernel/icmp.ts), not a `ping` process: the tests poll this every 20 ms per client, and
 * two execs per echo slowed the very heals they time.
 */
export async function pingOnceFrom(netns: string, dst: string, timeoutMs = 500): Promise<boolean> {
  return icmpEcho(dst, { nsPath: `/var/run/netns/${netns}`, timeoutMs }).catch(() => false);
}

/** Pings until one is answered; resolves with the time (ms since epoch) of the answer. */
export async function waitPing(netns: string, dst: string, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await pingOnceFrom(netns, dst, 200)) return Date.now();
    if (Date.now() > deadline) throw new Error(`no answer from ${dst} in ${netns} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Waits until the client's interface leads to an address starting with `prefix` (the new
 * endpoint's range) and that address answers; resolves with the time of the answer.
 */
export async function waitPingThrough(
  netns: string,
  ifname: string,
  prefix: string,
  timeoutMs: number,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let dst: string | undefined;
    try {
      dst = endpointAddressOf(netns, ifname);
    } catch {
      dst = undefined;
    }
    if (dst?.startsWith(prefix) && (await pingOnceFrom(netns, dst, 200))) return Date.now();
    if (Date.now() > deadline)
      throw new Error(
        `${netns}: no answer through ${ifname} from an address in ${prefix}* within ${timeoutMs} ms (now ${dst})`,
      );
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface PingRecord {
  transmitted: number;
  received: number;
  /** Echo requests not answered. */
  lost: number;
  /** The longest time between two answers (ms), or 0. */
  maxGapMs: number;
}

/** A `ping -D -i interval` running in a netns until stopped. */
export class Pinger {
  readonly #child: ChildProcess;
  readonly #answers: number[] = [];
  #output = "";
  readonly #closed: Promise<void>;

  constructor(netns: string, dst: string, intervalMs = 50) {
    this.#child = spawn(
      "ip",
      ["netns", "exec", netns, "ping", "-D", "-n", "-i", (intervalMs / 1000).toFixed(3), "-W", "1", dst],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    this.#child.stdout!.on("data", (d: Buffer) => {
      this.#output += d.toString();
      for (const m of d.toString().matchAll(/^\[(\d+\.\d+)\] \d+ bytes from/gm))
        this.#answers.push(Number(m[1]) * 1000);
    });
    this.#closed = new Promise((r) => this.#child.once("close", () => r()));
  }

  /** Answers so far. */
  get answered(): number {
    return this.#answers.length;
  }

  /** Stops it (SIGINT, so that ping prints its statistics) and returns the record. */
  async stop(): Promise<PingRecord> {
    this.#child.kill("SIGINT");
    await this.#closed;
    const m = /(\d+) packets transmitted, (\d+) received/.exec(this.#output);
    const transmitted = Number(m?.[1] ?? 0);
    const received = Number(m?.[2] ?? 0);
    let maxGapMs = 0;
    for (let i = 1; i < this.#answers.length; i++)
      maxGapMs = Math.max(maxGapMs, this.#answers[i]! - this.#answers[i - 1]!);
    // The last request may still be in flight when SIGINT arrives.
    return { transmitted, received, lost: Math.max(0, transmitted - received - 1), maxGapMs: Math.round(maxGapMs) };
  }
}

// ---------------------------------------------------------------------------------------------
// The client sidecar's view

interface LogEvent {
  time: number;
  msg: string;
  endpoint?: string;
  dst?: string[];
  reselect?: boolean;
}

/** The sidecar's "connection established/healed" and "connection broke" events. */
export function sidecarEvents(rt: TestRuntime, ns: string, pod: string): LogEvent[] {
  let text = "";
  try {
    text = readFileSync(join(rt.dir, "logs", `${ns}_${pod}_cmd-nsc.log`), "utf8");
  } catch {
    return [];
  }
  const out: LogEvent[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    let o: { time: string; msg: string; endpoint?: string; dst?: string[]; reselect?: boolean };
    try {
      o = JSON.parse(line);
    } catch {
      continue;
    }
    if (/^connection (established|healed|broke)/.test(o.msg))
      out.push({ time: Date.parse(o.time), msg: o.msg, endpoint: o.endpoint, dst: o.dst, reselect: o.reselect });
  }
  return out;
}

/** The endpoint of the sidecar's last "connection established/healed" event. */
export function currentEndpoint(rt: TestRuntime, ns: string, pod: string): string {
  const e = sidecarEvents(rt, ns, pod)
    .filter((x) => x.msg !== "connection broke: healing")
    .at(-1);
  assert.ok(e?.endpoint, `${ns}/${pod} has no connection`);
  return e.endpoint;
}

/** Waits for a "connection healed" event after `since` (ms epoch); returns it. */
export async function waitHealed(
  rt: TestRuntime,
  ns: string,
  pod: string,
  since: number,
  timeoutMs = 20_000,
): Promise<LogEvent> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const e = sidecarEvents(rt, ns, pod).find((x) => x.msg === "connection healed" && x.time >= since);
    if (e) return e;
    if (Date.now() > deadline) {
      const tail = sidecarEvents(rt, ns, pod).slice(-5);
      throw new Error(`${ns}/${pod} did not heal within ${timeoutMs} ms; last events: ${JSON.stringify(tail)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The client's interface: ifindex and IPv4 addresses, or undefined if it is gone. */
export function clientInterface(netns: string, name = "nsm-1"): { ifindex: number; addrs: string[] } | undefined {
  const [l] = ipJson(netns, "addr", "show").filter((x: { ifname: string }) => x.ifname === name);
  if (!l) return undefined;
  return {
    ifindex: l.ifindex,
    addrs: (l.addr_info ?? [])
      .filter((a: { family: string }) => a.family === "inet")
      .map((a: { local: string }) => a.local),
  };
}

/** The endpoint address the client reaches: the peer of its interface's /32 route (the NSE gets the even address). */
export function endpointAddressOf(netns: string, name = "nsm-1"): string {
  let routes: { dst: string }[] = [];
  try {
    const out = execFileSync("ip", ["-n", netns, "-j", "route", "show", "dev", name], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    routes = out.trim() ? JSON.parse(out) : [];
  } catch {
    // no such interface (yet)
  }
  const r = routes.find((x) => /^\d+\.\d+\.\d+\.\d+$/.test(x.dst));
  assert.ok(r, `no host route on ${name} in ${netns}: ${JSON.stringify(routes)}`);
  return r.dst;
}

export { podNetns };

// ---------------------------------------------------------------------------------------------
// Scenario steps

/** Prints a figure as a TAP comment (`# heal figure: NAME N ms`), collected by the test log. */
export const figure = (name: string, ms: number) => process.stdout.write(`# heal figure: ${name} ${ms} ms\n`);

export async function waitFor(cond: () => boolean, timeoutMs: number, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Injects `fault` (nsm arguments) while `pod` pings its endpoint every 50 ms, and checks the
 * upstream "control plane down, data plane alive" heal: the sidecar re-requests on the same
 * path (no reselect, same endpoint), no echo is lost, and the interface is the same (ifindex and
 * addresses). Returns the time from the fault to the re-request and the longest ping gap.
 */
export async function healsOnSamePath(
  rt: TestRuntime,
  ns: string,
  pod: string,
  fault: string[],
  what: string,
  ifname = "nsm-1",
): Promise<{ rerequestMs: number; maxGapMs: number }> {
  const netns = podNetns(rt, ns, pod);
  const before = clientInterface(netns, ifname);
  assert.ok(before, `${pod} has no ${ifname}`);
  const endpoint = currentEndpoint(rt, ns, pod);
  const pinger = new Pinger(netns, endpointAddressOf(netns, ifname));
  await waitFor(() => pinger.answered > 3, 3000, `${pod} pings its endpoint`);
  const t0 = Date.now();
  await rt.ok(...fault);
  const healed = await waitHealed(rt, ns, pod, t0);
  const seen = pinger.answered;
  await waitFor(() => pinger.answered > seen + 3, 2000, `${pod} pings after the heal`);
  const rec = await pinger.stop();
  const broke = sidecarEvents(rt, ns, pod).find((e) => e.msg.startsWith("connection broke") && e.time >= t0);
  assert.equal(broke?.reselect, false, `the data plane was alive: no reselect (${JSON.stringify(broke)})`);
  assert.equal(healed.endpoint, endpoint, "same endpoint");
  assert.equal(rec.lost, 0, `pings lost across ${what}: ${JSON.stringify(rec)}`);
  assert.deepEqual(clientInterface(netns, ifname), before, "the interface was kept (same ifindex and addresses)");
  const rerequestMs = healed.time - t0;
  figure(`${what}_rerequest`, rerequestMs);
  figure(`${what}_max_ping_gap`, rec.maxGapMs);
  return { rerequestMs, maxGapMs: rec.maxGapMs };
}
