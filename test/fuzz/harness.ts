// SPDX-License-Identifier: Apache-2.0
/**
 * Fuzzing helpers: a seeded PRNG (the seed is printed so a failure reproduces with
 * `NSM_FUZZ_SEED=<seed>`), a time budget (`NSM_FUZZ_SECONDS`, default a few seconds per target so
 * a file stays well under a minute in CI), byte mutation, random messages built by reflection over
 * the generated descriptors, raw gRPC calls that send bytes as they are (identity serializers, so
 * malformed messages reach the server) and a snapshot of what a runtime holds (pids, fds, netns,
 * links) to compare before and after.
 *
 * Written by hand: the mutations are a few lines each and no npm fuzzer works on protobuf
 * descriptors of @bufbuild/protobuf v2.
 */
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { create, type DescField, type DescMessage, ScalarType, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";

/** The seed of this run: NSM_FUZZ_SEED or a fresh one; printed once. */
export function fuzzSeed(label: string): number {
  const given = process.env.NSM_FUZZ_SEED;
  const seed = given ? Number(given) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
  console.log(`# ${label}: NSM_FUZZ_SEED=${seed} reproduces this run`);
  return seed;
}

/** Seconds each fuzz loop runs: NSM_FUZZ_SECONDS or `ciDefault`. */
export function fuzzSeconds(ciDefault: number): number {
  const s = Number(process.env.NSM_FUZZ_SECONDS);
  return Number.isFinite(s) && s > 0 ? s : ciDefault;
}

/** A small, fast, seeded PRNG (mulberry32). */
export class Rng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x08, 0x0a, 0x12, 0x1a, 0x22];

/** One random edit of `input`: flip, insert, delete, duplicate a run, or a varint/length bomb. */
export function mutate(input: Uint8Array, rng: Rng): Uint8Array {
  const b = Array.from(input);
  const at = () => rng.int(b.length + 1);
  switch (rng.int(7)) {
    case 0:
      if (b.length) b[rng.int(b.length)]! ^= 1 << rng.int(8);
      break;
    case 1:
      b.splice(at(), 0, ...rng.bytes(1 + rng.int(8)));
      break;
    case 2:
      b.splice(at(), 1 + rng.int(8));
      break;
    case 3: {
      const from = at();
      b.splice(at(), 0, ...b.slice(from, from + 1 + rng.int(32)));
      break;
    }
    case 4:
      if (b.length) b[rng.int(b.length)] = rng.pick(INTERESTING_BYTES);
      break;
    case 5:
      // a field with a huge declared length, or an over-long varint
      b.splice(at(), 0, 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f);
      break;
    default:
      b.length = rng.int(b.length + 1);
  }
  return Uint8Array.from(b);
}

/** `n` rounds of {@link mutate}. */
export function mutateN(input: Uint8Array, rng: Rng, n = 1 + rng.int(4)): Uint8Array {
  let out = input;
  for (let i = 0; i < n; i++) out = mutate(out, rng);
  return out;
}

const STRINGS = [
  "",
  "a",
  "kernel2kernel",
  "file:///proc/1/ns/net",
  "inode://4/4026531840",
  "unix:///nonexistent.sock",
  "tcp://127.0.0.1:1",
  "../../etc/passwd",
  "\u0000",
  "é☃\u{1f600}",
  "KERNEL",
  "VXLAN",
  "spiffe://nsm.local/ns/default/pod/x",
];

function randomString(rng: Rng): string {
  if (rng.chance(0.5)) return rng.pick(STRINGS);
  if (rng.chance(0.05)) return "x".repeat(rng.int(200_000));
  return Buffer.from(rng.bytes(rng.int(24))).toString("latin1");
}

function randomScalar(type: ScalarType, longAsString: boolean, rng: Rng): unknown {
  switch (type) {
    case ScalarType.STRING:
      return randomString(rng);
    case ScalarType.BYTES:
      return rng.bytes(rng.int(64));
    case ScalarType.BOOL:
      return rng.chance(0.5);
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return rng.pick([0, -1, 1e308, Number.NaN, Number.POSITIVE_INFINITY, rng.next()]);
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64: {
      const v = rng.pick([0n, -1n, 9223372036854775807n, -9223372036854775808n, BigInt(rng.int(1e9))]);
      return longAsString ? v.toString() : v;
    }
    case ScalarType.UINT64:
    case ScalarType.FIXED64: {
      const v = rng.pick([0n, 18446744073709551615n, BigInt(rng.int(1e9))]);
      return longAsString ? v.toString() : v;
    }
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return rng.pick([0, 1, 4294967295, rng.int(1e6)]);
    default:
      return rng.pick([0, -1, 2147483647, -2147483648, rng.int(1e6)]);
  }
}

function randomSingle(field: DescField, rng: Rng, depth: number): unknown {
  if (field.fieldKind === "list") {
    return field.listKind === "message"
      ? randomInit(field.message, rng, depth + 1)
      : field.listKind === "enum"
        ? rng.pick(field.enum.values).number
        : randomScalar(field.scalar, field.longAsString, rng);
  }
  if (field.fieldKind === "map") {
    return field.mapKind === "message"
      ? randomInit(field.message, rng, depth + 1)
      : field.mapKind === "enum"
        ? rng.pick(field.enum.values).number
        : randomScalar(field.scalar, false, rng);
  }
  if (field.fieldKind === "message") return randomInit(field.message, rng, depth + 1);
  if (field.fieldKind === "enum") return rng.chance(0.9) ? rng.pick(field.enum.values).number : rng.int(1000);
  return randomScalar(field.scalar, field.longAsString, rng);
}

function randomField(field: DescField, rng: Rng, depth: number): unknown {
  const count = rng.int(depth > 2 ? 2 : 4);
  if (field.fieldKind === "list") return Array.from({ length: count }, () => randomSingle(field, rng, depth));
  if (field.fieldKind === "map") {
    const m: Record<string, unknown> = {};
    for (let i = 0; i < count; i++) m[String(randomScalar(field.mapKey, true, rng))] = randomSingle(field, rng, depth);
    return m;
  }
  return randomSingle(field, rng, depth);
}

/** A plain init object of `desc` with random values in a random subset of its fields. */
export function randomInit(desc: DescMessage, rng: Rng, depth = 0): Record<string, unknown> {
  const init: Record<string, unknown> = {};
  if (depth > 4) return init;
  for (const field of desc.fields) {
    if (rng.chance(0.5)) continue;
    if (desc.typeName === "google.protobuf.Value" || desc.typeName === "google.protobuf.Struct") continue;
    init[field.localName] = randomField(field, rng, depth);
  }
  return init;
}

/** A random message of `desc`, encoded. Falls back to empty when the values do not encode. */
export function randomMessage(desc: DescMessage, rng: Rng): Uint8Array {
  try {
    return toBinary(desc, create(desc, randomInit(desc, rng) as never));
  } catch {
    return new Uint8Array();
  }
}

/** The outcome of one raw call. */
export interface RawResult {
  readonly code: grpc.status;
  readonly details: string;
  readonly ms: number;
  /** Response messages (bytes). */
  readonly messages: Buffer[];
}

const identity = (b: Buffer) => b;

/** A grpc-js client for raw calls to `target` (`unix:///…`). */
export function rawClient(target: string, credentials = grpc.credentials.createInsecure()): grpc.Client {
  return new grpc.Client(target, credentials, { "grpc.max_receive_message_length": 64 * 1024 * 1024 });
}

/** Sends `body` as is to a unary method; resolves with the status (never rejects). */
export function rawUnary(
  client: grpc.Client,
  path: string,
  body: Uint8Array,
  deadlineMs: number,
  metadata = new grpc.Metadata(),
): Promise<RawResult> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      path,
      identity,
      identity,
      Buffer.from(body),
      metadata,
      { deadline: Date.now() + deadlineMs },
      (err, res) =>
        resolve({
          code: err ? err.code : grpc.status.OK,
          details: err ? err.details : "",
          ms: Date.now() - t0,
          messages: res ? [res] : [],
        }),
    );
  });
}

/** Sends `body` as is to a server-streaming method and collects until its status. */
export function rawStream(
  client: grpc.Client,
  path: string,
  body: Uint8Array,
  deadlineMs: number,
  metadata = new grpc.Metadata(),
): Promise<RawResult> {
  const t0 = Date.now();
  const messages: Buffer[] = [];
  return new Promise((resolve) => {
    const call = client.makeServerStreamRequest(path, identity, identity, Buffer.from(body), metadata, {
      deadline: Date.now() + deadlineMs,
    });
    call.on("data", (m: Buffer) => {
      if (messages.length < 100) messages.push(m);
    });
    call.on("error", () => {});
    call.on("status", (s: grpc.StatusObject) =>
      resolve({ code: s.code, details: s.details, ms: Date.now() - t0, messages }),
    );
  });
}

/**
 * Why `r` is not a clear answer, or undefined: UNKNOWN, a stack trace in the details, an error
 * without a message, a message of more than 4 KiB (one quoting a huge input back), or a call that
 * outlived its deadline by more than `slackMs`.
 */
export function unclear(r: RawResult, deadlineMs: number, slackMs = 2000): string | undefined {
  if (r.code === grpc.status.UNKNOWN) return `UNKNOWN: ${r.details}`;
  if (/\n\s+at .+\(.*:\d+:\d+\)/.test(r.details)) return `a stack trace in the details: ${r.details}`;
  if (r.code !== grpc.status.OK && r.details.trim() === "") return `${grpc.status[r.code]} without a message`;
  if (r.details.length > 4096) return `a status message of ${r.details.length} characters`;
  if (r.ms > deadlineMs + slackMs) return `answered after ${r.ms} ms, deadline ${deadlineMs} ms`;
  return undefined;
}

/** What a set of processes and the runtime's namespaces hold, to compare before and after. */
export interface Holdings {
  /** role → pid */
  readonly pids: Record<string, number>;
  /** role → open fds */
  readonly fds: Record<string, number>;
  readonly netns: string[];
  /** `netns:ifname` of every link other than lo in the runtime's netns, plus tagged root links. */
  readonly links: string[];
}

export function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

function linksIn(netns: string | undefined): string[] {
  const args = netns ? ["-n", netns, "-j", "link", "show"] : ["-j", "link", "show"];
  const out = execFileSync("ip", args, { encoding: "utf8" }).trim();
  const links = (out ? JSON.parse(out) : []) as { ifname: string; ifalias?: string }[];
  return links
    .filter((l) => l.ifname !== "lo" && (netns !== undefined || l.ifalias?.startsWith("nsm:")))
    .map((l) => `${netns ?? "root"}:${l.ifname}`);
}

/** The netns of the host whose name starts with `prefix-`. */
export function netnsWithPrefix(prefix: string): string[] {
  return execFileSync("ip", ["-all", "netns", "list"], { encoding: "utf8" })
    .split("\n")
    .map((l) => l.split(" ")[0]!)
    .filter((n) => n.startsWith(`${prefix}-`))
    .sort();
}

export function holdings(pids: Record<string, number>, prefix: string): Holdings {
  const netns = netnsWithPrefix(prefix);
  const fds: Record<string, number> = {};
  for (const [role, pid] of Object.entries(pids)) fds[role] = fdCount(pid);
  const links = [...linksIn(undefined), ...netns.flatMap((n) => linksIn(n))].sort();
  return { pids: { ...pids }, fds, netns, links };
}

/** Whether `pid` is alive. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits until `check` returns undefined (settled) or `ms` pass; returns the last problem. */
export async function settle(check: () => string | undefined, ms: number): Promise<string | undefined> {
  const until = Date.now() + ms;
  let problem = check();
  while (problem !== undefined && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 250));
    problem = check();
  }
  return problem;
}

/** Differences of fds (beyond `fdSlack` per role), netns and links between two holdings. */
export function leaks(before: Holdings, after: Holdings, fdSlack = 4): string | undefined {
  const out: string[] = [];
  for (const [role, pid] of Object.entries(before.pids)) {
    if (!alive(pid)) out.push(`${role} (pid ${pid}) died`);
    const grew = (after.fds[role] ?? 0) - (before.fds[role] ?? 0);
    if (grew > fdSlack) out.push(`${role} holds ${grew} more fds (${before.fds[role]} → ${after.fds[role]})`);
  }
  if (after.netns.join() !== before.netns.join()) out.push(`netns ${before.netns} → ${after.netns}`);
  const added = after.links.filter((l) => !before.links.includes(l));
  const removed = before.links.filter((l) => !after.links.includes(l));
  if (added.length || removed.length) out.push(`links added ${added} removed ${removed}`);
  return out.length ? out.join("; ") : undefined;
}
