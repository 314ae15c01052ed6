// SPDX-License-Identifier: Apache-2.0
/**
 * Does the dashboard keep up with a large mesh? The dashboard's server (src/local/dashboard) is
 * fed a synthetic mesh of N connections (default 1000; 4 nodes, 2 endpoints each, half the
 * connections crossing nodes) and its page is opened in Chromium (Debian's, headless, through
 * playwright-core). Then:
 * - **one event**: one connection's state flips (DOWN, then UP again on the next run) and the
 *   source signals it, as an nsmgr's monitor stream does; timed from the flip (in this process)
 *   to the drawing of the first frame that shows it (the page's requestAnimationFrame after it
 *   applied the delta; same machine, same clock). Goal: ≤ 1000 ms.
 * - **burst**: an endpoint dies, so every connection through it (N/8) fails at once; timed the
 *   same way until the page has all of them red.
 * - **initial load**: navigation to the first drawn frame of the full snapshot.
 *
 * Usage: node --import tsx bench/dashboard.ts [--connections 1000] [--runs 20] [--smoke]
 * (--smoke: 200 connections, 5 runs; what scripts/bench-smoke.sh runs). Needs /usr/bin/chromium
 * (scripts/setup.sh), not root. The last line is JSON with event_to_page_p50_ms,
 * event_to_page_p95_ms, event_to_page_max_ms, burst_to_page_ms, initial_load_ms, connections
 * and goal_met (1 when the p95 is within 1000 ms).
 */
import { parseArgs } from "node:util";
import type { Page } from "playwright-core";
import { loadAssets } from "../src/local/dashboard/assets.js";
import { serveDashboard } from "../src/local/dashboard/server.js";
import { browserSkipReason, inPage, launchChromium, openPage, waitInPage } from "../test/dashboard/browser.js";
import { type SyntheticMesh, syntheticMesh } from "../test/dashboard/synthetic.js";

const GOAL_MS = 1000;

const { values } = parseArgs({
  options: {
    connections: { type: "string" },
    runs: { type: "string" },
    smoke: { type: "boolean", default: false },
  },
});
const N = Number(values.connections ?? (values.smoke ? 200 : 1000));
const RUNS = Number(values.runs ?? (values.smoke ? 5 : 20));

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

/** Time from `t0` to the first frame drawn after the page applied an update for which `done` holds. */
async function timeToPage(page: Page, t0: number, done: string): Promise<number> {
  await waitInPage(page, done, 30_000);
  await waitInPage(page, "window.nsmDashboard.page.applied.at(-1).painted !== undefined", 5_000);
  const painted = await inPage<number>(page, "window.nsmDashboard.page.applied.at(-1).painted");
  return painted - t0;
}

const statusIs = (ids: string[], status: string) =>
  `${JSON.stringify(ids)}.every((id) => window.nsmDashboard.edgeStatus(id).every((s) => s === "${status}"))`;

async function oneEvents(page: Page, mesh: SyntheticMesh): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const conn = mesh.mesh.connections[(i * 37) % N]!;
    for (const state of ["DOWN", "UP"]) {
      const t0 = Date.now();
      mesh.set(conn.id, { state });
      out.push(await timeToPage(page, t0, statusIs([conn.id], state === "UP" ? "ok" : "failed")));
    }
  }
  return out;
}

async function burst(page: Page, mesh: SyntheticMesh): Promise<number> {
  const endpoint = mesh.mesh.endpoints[0]!.name;
  const hit = mesh.mesh.connections.filter((c) => c.endpoint === endpoint).map((c) => c.id);
  const t0 = Date.now();
  mesh.mesh = {
    ...mesh.mesh,
    endpoints: mesh.mesh.endpoints.slice(1),
    connections: mesh.mesh.connections.map((c) => (c.endpoint === endpoint ? { ...c, state: "DOWN" } : c)),
  };
  mesh.set(hit[0]!, {});
  return timeToPage(page, t0, statusIs(hit, "failed"));
}

async function main(): Promise<void> {
  const skip = browserSkipReason();
  if (skip) throw new Error(`bench/dashboard: ${skip}`);
  const mesh = syntheticMesh(N, 4, 2);
  const dashboard = await serveDashboard(mesh, { port: 0, pollMs: 60_000, assets: await loadAssets() });
  const browser = await launchChromium();
  try {
    const errors: string[] = [];
    const t0 = Date.now();
    const page = await openPage(browser, dashboard.url, errors);
    const initial = await timeToPage(page, t0, `window.nsmDashboard.page.rows.size === ${N}`);
    const events = await oneEvents(page, mesh);
    const burstMs = await burst(page, mesh);
    if (errors.length) throw new Error(`the page reported errors: ${errors.join("; ")}`);
    const result = {
      connections: N,
      runs: events.length,
      event_to_page_p50_ms: pct(events, 50),
      event_to_page_p95_ms: pct(events, 95),
      event_to_page_max_ms: Math.max(...events),
      burst_connections: mesh.mesh.connections.filter((c) => c.state === "DOWN").length,
      burst_to_page_ms: burstMs,
      initial_load_ms: initial,
      goal_ms: GOAL_MS,
      goal_met: pct(events, 95) <= GOAL_MS && burstMs <= GOAL_MS ? 1 : 0,
    };
    console.log(
      `${N} connections: one event → page p50 ${result.event_to_page_p50_ms} ms, p95 ${result.event_to_page_p95_ms} ms, ` +
        `max ${result.event_to_page_max_ms} ms; burst of ${result.burst_connections} → ${burstMs} ms; initial load ${initial} ms`,
    );
    console.log(JSON.stringify(result));
  } finally {
    await browser.close();
    await dashboard.close();
  }
}

await main();
