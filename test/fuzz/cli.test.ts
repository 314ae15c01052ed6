// SPDX-License-Identifier: Apache-2.0
/**
 * Hostile input to the CLI and the roles:
 * - mutated manifests of examples/kernel2kernel (namespace, service, endpoint; wrong types, unknown
 *   kinds, missing fields, huge strings) to `nsm apply`: a failed apply says why in a few lines and changes nothing (same
 *   objects, netns and processes); a successful one is deleted again;
 * - the registry and nsmgr started with one mutated `NSM_*` variable each (in a netns of the
 *   test's own): they exit with a one-line error naming the variable, or run normally.
 *
 * Bounded: NSM_FUZZ_SECONDS per part (default 12); NSM_FUZZ_SEED reproduces a run.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { EXAMPLE, REPO, skipReason, type TestRuntime, testRuntime } from "../local/helpers.js";
import { alive, fuzzSeconds, fuzzSeed, netnsWithPrefix, Rng, settle } from "./harness.js";

const skip = skipReason();

const WEIRD: unknown[] = [
  null,
  0,
  -1,
  1e308,
  true,
  "",
  "x".repeat(100_000),
  [],
  {},
  [1, 2],
  { a: { b: { c: [] } } },
  "Pod",
  "../..",
  "kernel://",
];

/**
 * One of {@link WEIRD}, copied: the same array or object put in two places (or into itself by
 * a later edit) made a manifest circular, and edits changed the table for later runs.
 */
const weird = (rng: Rng): unknown => structuredClone(rng.pick(WEIRD));

/** One random edit of a parsed manifest (in place). */
function mutateDoc(doc: any, rng: Rng): void {
  const paths: [any, string | number][] = [];
  const walk = (node: any) => {
    if (node === null || typeof node !== "object") return;
    for (const k of Object.keys(node)) {
      paths.push([node, Array.isArray(node) ? Number(k) : k]);
      walk(node[k]);
    }
  };
  walk(doc);
  if (!paths.length) return;
  const [parent, key] = rng.pick(paths);
  const what = rng.int(5);
  if (what === 0) delete parent[key];
  else if (what === 1) parent[key] = weird(rng);
  else if (what === 2 && key === "kind") parent[key] = rng.pick(["Secret", "Foo", "networkservice", "Pod "]);
  else if (what === 3) parent[`unknown${rng.int(9)}`] = weird(rng);
  else parent[key] = typeof parent[key] === "string" ? parent[key] + rng.pick(["é", "\u0000", " ", "/x"]) : [];
}

/** The example as YAML docs, a few of them mutated, in one multi-document file. */
function mutatedManifest(rng: Rng): string {
  const docs: any[] = [];
  // client.yaml is left out: a client pod that cannot connect holds `apply` for the NSC init
  // deadline (60 s, src/local/pod-supervisor.ts), too long for a bounded run
  for (const f of ["ns-kernel2kernel.yaml", "netsvc.yaml", "nse.yaml"]) {
    for (const d of parseAllDocuments(readFileSync(join(EXAMPLE, f), "utf8"))) {
      const doc = d.toJS();
      if (doc?.metadata && doc.kind !== "Namespace") doc.metadata.namespace = "ns-kernel2kernel";
      docs.push(doc);
    }
  }
  for (let i = 1 + rng.int(3); i > 0; i--) mutateDoc(rng.pick(docs), rng);
  if (rng.chance(0.2)) docs.push(weird(rng));
  return docs.map((d) => `---\n${JSON.stringify(d)}\n`).join("");
}

/** What a runtime holds, as far as `apply` may change it. */
function applied(rt: TestRuntime): string {
  const s = JSON.parse(readFileSync(join(rt.dir, "state.json"), "utf8"));
  const names = (xs: any[] | undefined) => (xs ?? []).map((x) => `${x.namespace ?? ""}/${x.name}`).sort();
  return JSON.stringify({
    namespaces: names(s.namespaces),
    services: names(s.networkServices),
    deployments: names(s.deployments),
    pods: names(s.pods),
    netns: rt.netns().sort(),
    processes: rt.processes().length,
  });
}

describe("fuzz: mutated manifests to nsm apply", { skip, timeout: 180_000 }, () => {
  let rt: TestRuntime;
  let dir: string;
  before(async () => {
    rt = testRuntime("fuzz-apply");
    dir = mkdtempSync(join(tmpdir(), "nsm-fuzz-manifests-"));
    await rt.ok("up", "--insecure");
  });
  after(async () => {
    await rt?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a failed apply says why and changes nothing; a successful one is deleted again", async () => {
    const seed = fuzzSeed("apply");
    const rng = new Rng(seed);
    const until = Date.now() + fuzzSeconds(12) * 1000;
    let failed = 0;
    let ok = 0;
    let podFailures = 0;
    for (let i = 0; Date.now() < until; i++) {
      const file = join(dir, `m${i}.yaml`);
      writeFileSync(file, mutatedManifest(rng));
      const before = applied(rt);
      const r = await rt.nsm("apply", "-f", file);
      // objects applied but a pod that cannot start (an endpoint given bad env, say): as with
      // kubectl, the objects stay until deleted; delete must bring the runtime back
      const podsFailed = /pod\(s\) failed to start/.test(r.stderr);
      if (r.code === 0 || podsFailed) {
        if (podsFailed) podFailures++;
        else ok++;
        const d = await rt.nsm("delete", "-f", file);
        assert.equal(d.code, 0, `seed ${seed} ${file}: delete after an apply: ${d.stderr}`);
        assert.equal(
          await settle(() => (applied(rt) === before ? undefined : applied(rt)), 10_000),
          undefined,
          `seed ${seed} ${file}: delete did not bring the runtime back`,
        );
        continue;
      }
      failed++;
      const lines = r.stderr.trim().split("\n");
      assert.ok(lines.length <= 3 && lines[0]!.length > 0, `seed ${seed}: ${file}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /\n\s+at .+:\d+:\d+/, `seed ${seed}: a stack trace: ${r.stderr}`);
      assert.equal(applied(rt), before, `seed ${seed}: ${file} failed (${lines[0]}) but changed the runtime`);
    }
    console.log(`# apply: ${failed} refused, ${ok} applied and deleted, ${podFailures} with pods failing, deleted`);
    assert.ok(failed + ok + podFailures >= 2, "at least two applies");
  });
});

const VALUES = [
  "",
  " ",
  "-1",
  "0",
  "1e999",
  "NaN",
  "true",
  "yes",
  "unix://",
  "tcp://[::1",
  "tcp://127.0.0.1:99999",
  "10m",
  "-5s",
  "1x",
  "300.1.1.1/33",
  "a=b,c",
  "===",
  "\u00e9\u2603",
  "x".repeat(10_000),
  "file:///nonexistent",
];

/** Starts `nsm ROLE` in `netns` with `env`; resolves with how it ended within `ms` (or runs on). */
function runRole(netns: string, role: string, env: Record<string, string>, ms: number) {
  return new Promise<{ exited: boolean; code: number | null; stderr: string }>((resolve) => {
    const child = spawn("ip", ["netns", "exec", netns, process.execPath, join(REPO, "bin", "nsm.js"), role], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      child.kill("SIGTERM");
      setTimeout(() => (alive(child.pid!) ? child.kill("SIGKILL") : undefined), 2000);
      resolve({ exited: false, code: null, stderr });
    }, ms);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ exited: true, code, stderr });
    });
  });
}

describe("fuzz: roles started with a mutated NSM_* variable", { skip, timeout: 180_000 }, () => {
  const prefix = `nsm-fuzzenv${process.pid}`;
  const netns = `${prefix}-roles`;
  let dir: string;
  before(() => {
    execFileSync("ip", ["netns", "add", netns]);
    execFileSync("ip", ["-n", netns, "link", "set", "lo", "up"]);
    dir = mkdtempSync(join(tmpdir(), "nsm-fuzz-env-"));
  });
  after(() => {
    try {
      execFileSync("ip", ["netns", "del", netns]);
    } catch {}
    rmSync(dir, { recursive: true, force: true });
  });

  it("each role exits with one line naming the variable, or runs", async () => {
    const seed = fuzzSeed("env");
    const rng = new Rng(seed);
    const until = Date.now() + fuzzSeconds(12) * 1000;
    const base = (i: number): Record<string, Record<string, string>> => ({
      registry: { NSM_INSECURE: "true", NSM_LISTEN_ON: `unix://${dir}/r${i}.sock` },
      nsmgr: {
        NSM_INSECURE: "true",
        NSM_NAME: "nsmgr-fuzz",
        NSM_LISTEN_ON: `unix://${dir}/n${i}.sock`,
        NSM_REGISTRY_URL: `unix://${dir}/none.sock`,
      },
    });
    const vars: Record<string, string[]> = {
      registry: ["NSM_LISTEN_ON", "NSM_EXPIRE_PERIOD", "NSM_LOG_LEVEL", "NSM_INSECURE", "NSM_REGISTRY_BACKEND"],
      nsmgr: [
        "NSM_LISTEN_ON",
        "NSM_REGISTRY_URL",
        "NSM_MAX_TOKEN_LIFETIME",
        "NSM_DIAL_TIMEOUT",
        "NSM_LOG_LEVEL",
        "NSM_INSECURE",
        "NSM_NAME",
        "NSM_LIVENESS_CHECK_INTERVAL",
      ],
    };
    let exits = 0;
    let runs = 0;
    const one = async (i: number) => {
      const role = rng.pick(["registry", "nsmgr"]);
      const variable = rng.pick(vars[role]!);
      const value = rng.pick(VALUES);
      // a role takes a few seconds to start on a loaded machine: wait long enough to see it refuse
      const r = await runRole(netns, role, { ...base(i)[role], [variable]: value }, 8000);
      const what = `seed ${seed}: ${role} with ${variable}=${JSON.stringify(value.slice(0, 40))}`;
      // structured log lines (JSON, e.g. the insecure-mode warning) aside, one line of error
      const lines = r.stderr
        .trim()
        .split("\n")
        .filter((l) => l !== "" && !l.startsWith('{"level"'));
      if (!r.exited) {
        runs++;
        assert.deepEqual(lines, [], `${what}: runs, but printed more than logs`);
        return;
      }
      exits++;
      assert.notEqual(r.code, 0, `${what} exited 0`);
      assert.equal(lines.length, 1, `${what}: not one line: ${r.stderr}`);
      assert.match(lines[0]!, new RegExp(variable), `${what}: the line does not name the variable`);
    };
    for (let i = 0; Date.now() < until; i += 4) await Promise.all([0, 1, 2, 3].map((k) => one(i + k)));
    console.log(`# env: ${exits} refused at start, ${runs} ran`);
    assert.ok(exits + runs > 2);
    assert.deepEqual(netnsWithPrefix(prefix), [netns]);
  });
});
