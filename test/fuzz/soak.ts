// SPDX-License-Identifier: Apache-2.0
/**
 * Soak: connect/heal/close churn on a secure local runtime for NSM_SOAK_SECONDS (default 600),
 * then checks that RSS, open fds and tagged links are flat. Not part of CI: runs only with
 * NSM_SOAK=1.
 *
 *   NSM_SOAK=1 NSM_SOAK_SECONDS=300 node --import tsx test/fuzz/soak.ts
 *
 * Each cycle applies the example's client pod (a Request through nsmgr, forwarder and the
 * icmp-responder), pings the endpoint, every 5th cycle restarts the forwarder and waits for the
 * ping to come back (heal), then deletes the pod (Close). Figures are taken after a warm-up
 * cycle and at the end (the forwarder is restarted, so its figures are compared with its last
 * start); the last line is JSON.
 */
import { readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { testRuntime } from "../local/helpers.js";
import { fdCount, holdings } from "./harness.js";
import { splitExample } from "./targets.js";

const NS = "ns-kernel2kernel";

function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Math.round(Number(m[1]) / 102.4) / 10 : -1;
  } catch {
    return -1;
  }
}

interface Figures {
  rss: Record<string, number>;
  fds: Record<string, number>;
  /** Links (other than lo) in the runtime's netns and tagged links in the root netns. */
  links: number;
}

async function main(): Promise<number> {
  if (process.env.NSM_SOAK !== "1") {
    console.log("soak: set NSM_SOAK=1 to run (NSM_SOAK_SECONDS, default 600)");
    return 0;
  }
  const seconds = Number(process.env.NSM_SOAK_SECONDS ?? 600);
  const rt = testRuntime("soak");
  const example = splitExample();
  try {
    await rt.ok("up");
    await rt.ok("apply", "-f", example.mesh);
    const pids = () => {
      const s = JSON.parse(readFileSync(join(rt.dir, "state.json"), "utf8"));
      const nse = s.pods.find((p: any) => p.name.startsWith("nse-kernel-"));
      return {
        registry: s.registry.pid,
        nsmgr: s.nodes[0].nsmgr.pid,
        forwarder: s.nodes[0].forwarder.pid,
        endpoint: nse.containers[0].proc.pid,
      } as Record<string, number>;
    };
    const figures = (): Figures => {
      const p = pids();
      const h = holdings(p, rt.prefix);
      const rss: Record<string, number> = {};
      const fds: Record<string, number> = {};
      for (const [role, pid] of Object.entries(p)) {
        rss[role] = rssMiB(pid);
        fds[role] = fdCount(pid);
      }
      return { rss, fds, links: h.links.length };
    };
    const ping = async (tries: number) => {
      for (let i = 0; i < tries; i++) {
        const r = await rt.nsm("exec", "alpine", "-n", NS, "--", "ping", "-c", "1", "-W", "1", "172.16.1.100");
        if (r.code === 0) return i;
      }
      throw new Error("no ping");
    };
    const cycle = async (i: number) => {
      await rt.ok("apply", "-f", example.client);
      await ping(5);
      if (i % 5 === 4) {
        await rt.ok("restart", "forwarder/node-1");
        await ping(30);
      }
      await rt.ok("delete", "-f", example.client);
    };
    await cycle(0);
    const start = figures();
    console.log(`soak: start ${JSON.stringify(start)}`);
    const until = Date.now() + seconds * 1000;
    let cycles = 1;
    while (Date.now() < until) await cycle(cycles++);
    await new Promise((r) => setTimeout(r, 3000));
    const end = figures();
    console.log(`soak: end after ${cycles} cycles ${JSON.stringify(end)}`);
    const problems: string[] = [];
    for (const role of ["registry", "nsmgr", "endpoint"]) {
      if (end.rss[role]! > start.rss[role]! * 1.25 + 10)
        problems.push(`${role} RSS ${start.rss[role]} → ${end.rss[role]} MiB`);
      if (end.fds[role]! > start.fds[role]! + 5) problems.push(`${role} fds ${start.fds[role]} → ${end.fds[role]}`);
    }
    if (end.links !== start.links) problems.push(`links ${start.links} → ${end.links}`);
    console.log(JSON.stringify({ seconds, cycles, start, end, flat: problems.length === 0, problems }));
    return problems.length ? 1 : 0;
  } finally {
    await rt.cleanup();
    rmSync(dirname(example.mesh), { recursive: true, force: true });
  }
}

process.exitCode = await main();
