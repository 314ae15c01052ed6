// SPDX-License-Identifier: Apache-2.0
/**
 * Runs an example's README as upstream's test runner (gotestmd) runs deployments-k8s READMEs:
 * every ```bash block of the "Run" section, then of the "Cleanup" section, in order (except
 * `nsm up` and `nsm down`: the test owns the runtime), each in bash with `nsm` on the PATH (this
 * repository's CLI against the test's runtime), each retried every half second until it exits 0
 * or a minute has passed. Shell variables a block assigns
 * (`NSE_NODE=$(nsm get …)`) are kept for the blocks after it, as in one shell session.
 *
 * A test may add its own checks on a block's output (`expect`): a check that throws counts as a
 * failed attempt, so the block is run again until both its exit code and the check pass.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { REPO, skipReason, type TestRuntime, testRuntime } from "../local/helpers.js";

/** One ```bash block of a README and the section it is in. */
export interface ReadmeBlock {
  readonly section: string;
  readonly script: string;
}

/** What one block printed when it passed. */
export interface BlockRun {
  readonly script: string;
  readonly stdout: string;
  readonly stderr: string;
  readonly attempts: number;
}

/** The ```bash blocks of the "Run" and "Cleanup" sections of README.md, in order. */
export function readmeBlocks(readmePath: string): ReadmeBlock[] {
  const text = readFileSync(readmePath, "utf8");
  const blocks: ReadmeBlock[] = [];
  let section = "";
  let script: string[] | undefined;
  for (const line of text.split("\n")) {
    if (script) {
      if (line.trim() === "```") {
        blocks.push({ section, script: script.join("\n") });
        script = undefined;
      } else script.push(line);
    } else if (line.startsWith("## ")) section = line.slice(3).trim();
    else if (line.trim() === "```bash") script = [];
  }
  // `nsm up` and `nsm down` belong to the runtime the test shares between READMEs.
  return blocks.filter((b) => (b.section === "Run" || b.section === "Cleanup") && !/^nsm (up|down)\b/m.test(b.script));
}

/** The names a block assigns at the very start of a line (`NAME=…`; indented lines are inside a quoted script). */
function assignedNames(script: string): string[] {
  return [...new Set([...script.matchAll(/^([A-Za-z_][A-Za-z0-9_]*)=/gm)].map((m) => m[1]!))];
}

export interface ReadmeRunner {
  /** Runs one block (retried as described above) and returns its output. */
  run(script: string, expect?: (out: BlockRun) => void): Promise<BlockRun>;
}

/** A shell session for `rt`: `nsm` runs this repository's CLI against the runtime's state dir. */
export function readmeRunner(rt: TestRuntime, timeoutMs = 60_000): ReadmeRunner {
  const work = join(rt.dir, "..", "readme-shell");
  mkdirSync(join(work, "bin"), { recursive: true });
  const nsm = join(work, "bin", "nsm");
  writeFileSync(nsm, `#!/bin/sh\nexec "${process.execPath}" "${join(REPO, "bin", "nsm.js")}" "$@"\n`);
  chmodSync(nsm, 0o755);
  const vars = join(work, "vars.sh");
  writeFileSync(vars, "");
  const env = { ...process.env, NSM_LOCAL_STATE_DIR: rt.dir, PATH: `${join(work, "bin")}:${process.env.PATH}` };

  let attemptNo = 0;
  const attempt = async (script: string) => {
    const keep = assignedNames(script)
      .map((v) => `printf '%s=%q\\n' ${v} "$${v}" >> '${vars}'; printf '#var %s=%s\\n' ${v} "$${v}"`)
      .join("\n");
    const body = `set -e\n. '${vars}'\n${script}\n${keep}\n`;
    // Output goes to files of its own (not pipes), and the block ends when bash exits: a
    // command the README starts in the background (`… &`) runs on after its block.
    attemptNo++;
    const files = [join(work, `out-${attemptNo}`), join(work, `err-${attemptNo}`)] as const;
    const fds = files.map((f) => openSync(f, "w"));
    const child = spawn("bash", ["-c", body], { cwd: REPO, env, stdio: ["ignore", fds[0]!, fds[1]!] });
    for (const fd of fds) closeSync(fd);
    const code = await new Promise<number>((resolve) => child.on("exit", (c) => resolve(c ?? -1)));
    const [stdout, stderr] = files.map((f) => readFileSync(f, "utf8"));
    return { code, stdout: stdout!, stderr: stderr! };
  };

  return {
    async run(script, expect) {
      const deadline = Date.now() + timeoutMs;
      for (let attempts = 1; ; attempts++) {
        const r = await attempt(script);
        const out = { script, stdout: r.stdout, stderr: r.stderr, attempts };
        let failure: string | undefined;
        if (r.code !== 0) failure = `exit code ${r.code}`;
        else
          try {
            expect?.(out);
          } catch (err) {
            failure = (err as Error).message;
          }
        if (failure === undefined) return out;
        if (Date.now() > deadline)
          throw new Error(
            `README block failed after ${attempts} attempts (${failure}):\n${script}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`,
          );
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    },
  };
}

/** The checks every README block gets on top of its exit code (see {@link runExample}). */
export function standardChecks(out: BlockRun): void {
  const { script, stdout } = out;
  if (/\bping -c 4\b/.test(script) && !script.includes("|"))
    assert.match(stdout, /4 packets transmitted, 4 received, 0% packet loss/, "every ping answered");
  const deletes = script.match(/^nsm delete pod /gm)?.length ?? 0;
  assert.equal(stdout.match(/^pod "[^"]+" deleted$/gm)?.length ?? 0, deletes, "each deleted pod reported");
  if (/^nsm wait --for=condition=ready/m.test(script)) assert.match(stdout, /condition met/);
  if (/ip addr show nsm-1$/m.test(script)) assert.match(stdout, /inet 172\.16\.1\.101\/32 .*nsm-1/);
  for (const m of stdout.matchAll(/^#var ([A-Za-z_]+)=(.*)$/gm)) assert.ok(m[2]!.trim(), `${m[1]} is empty`);
}

/**
 * Runs examples/NAME/README.md block by block with {@link standardChecks}, then checks that the
 * example's namespace is gone with its pods and their network namespaces (the runtime's netns
 * are as many as before the example).
 */
export async function runExample(rt: TestRuntime, sh: ReadmeRunner, name: string): Promise<BlockRun[]> {
  const netnsBefore = rt.netns().length;
  const runs: BlockRun[] = [];
  for (const block of readmeBlocks(join(REPO, "examples", name, "README.md")))
    runs.push(await sh.run(block.script, standardChecks));
  assert.equal(await rt.ok("get", "pods", "-n", `ns-${name}`, "-o", "name"), "", "the example's pods are gone");
  assert.equal(rt.netns().length, netnsBefore, `netns left: ${rt.netns().join(" ")}`);
  return runs;
}

/** Why the README suites cannot run here (root, the native addon, wireguard-go for IP payload), or undefined. */
export function exampleSkipReason(needsWireguard: boolean): string | undefined {
  const reason = skipReason();
  if (reason || !needsWireguard) return reason;
  return existsSync("/usr/bin/wireguard-go") ? undefined : "needs /usr/bin/wireguard-go (Debian package wireguard-go)";
}

/**
 * One `nsm up --nodes 2` shared by the READMEs of `names`, run one after the other (each in its
 * own namespace, deleted by its Cleanup); the last test brings the runtime down and checks that
 * no netns or process of it is left.
 */
export function exampleSuite(title: string, names: readonly string[], opts: { wireguard?: boolean } = {}): void {
  describe(title, { skip: exampleSkipReason(opts.wireguard ?? false) }, () => {
    let rt: TestRuntime;
    let sh: ReadmeRunner;
    before(async () => {
      rt = testRuntime(`examples-${names[0]}`);
      await rt.ok("up", "--nodes", "2");
      sh = readmeRunner(rt);
    });
    after(() => rt?.cleanup());
    for (const name of names)
      it(`examples/${name}/README.md runs as written`, async () => {
        await runExample(rt, sh, name);
      });
    it("nsm down leaves no netns and no process", async () => {
      rt.keepLogs();
      await rt.ok("down");
      assert.deepEqual(rt.netns(), []);
      assert.deepEqual(rt.processes(), []);
    });
  });
}
