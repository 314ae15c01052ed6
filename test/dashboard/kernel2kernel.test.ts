// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm dashboard` on a running local runtime with examples/kernel2kernel, in Chromium: the page
 * shows the node, its nsmgr and forwarder, the client, the endpoint, the service and the
 * connection's path in green; deleting the endpoint's pod (its Deployment makes another) turns
 * the path red and then green again through the new endpoint, and restarting the endpoint
 * (`nsm restart pod/…`) does the same, all without a reload. Screenshots in test-artifacts/.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import { EXAMPLE, rows, skipReason, type TestRuntime, testRuntime } from "../local/helpers.js";
import { browserSkipReason, inPage, launchChromium, nodeLabels, openPage, screenshot, waitInPage } from "./browser.js";
import { type DashboardProcess, startDashboard } from "./process.js";

const NS = "ns-kernel2kernel";
const skip = skipReason() ?? browserSkipReason();
if (skip) console.log(`# skipping the dashboard's kernel2kernel test: ${skip}`);

const allAre = (status: string) =>
  `(() => { const s = window.nsmDashboard.edgeStatus("alpine-0"); return s.length === 3 && s.every((x) => x === "${status}"); })()`;

describe("nsm dashboard: kernel2kernel in Chromium", { skip }, () => {
  let rt: TestRuntime;
  let dashboard: DashboardProcess | undefined;
  let browser: Browser;
  let page: Page;
  let nsePod: string;
  const errors: string[] = [];

  /** Waits for `expression`; on a timeout, fails with what the page and the dashboard show. */
  const waitShown = async (expression: string, timeoutMs: number) => {
    try {
      await waitInPage(page, expression, timeoutMs);
    } catch (err) {
      const shown = await inPage<string>(
        page,
        `JSON.stringify({ live: document.getElementById("live").textContent, row: window.nsmDashboard.page.rows.get("alpine-0"), edges: window.nsmDashboard.edgeStatus("alpine-0"), events: document.getElementById("events").textContent })`,
      );
      const pods = await rt.nsm("get", "pods", "-n", NS);
      const conns = await rt.nsm("get", "connections");
      throw new Error(
        `${(err as Error).message}\npage: ${shown}\ndashboard: ${dashboard?.output()}\n${pods.stdout}${conns.stdout}${conns.stderr}`,
      );
    }
  };
  const currentEndpointPod = async () =>
    rows(await rt.ok("get", "pods", "-n", NS)).find((r) => r[1]!.startsWith("nse-kernel-") && r[3] === "Running")![1]!;
  const endpointOf = () => inPage<string>(page, `window.nsmDashboard.page.rows.get("alpine-0")?.endpoint`);

  before(async () => {
    rt = testRuntime("dash");
    await rt.ok("up");
    await rt.ok("apply", "-f", EXAMPLE);
    nsePod = rows(await rt.ok("get", "pods", "-n", NS)).find((r) => r[1]!.startsWith("nse-kernel-"))![1]!;
    dashboard = await startDashboard(rt.dir, ["--poll", "500ms"]);
    browser = await launchChromium();
    page = await openPage(browser, dashboard.url, errors);
  });
  after(async () => {
    await browser?.close();
    await dashboard?.stop();
    await rt?.cleanup();
  });

  it("shows the node, its nsmgr and forwarder, the client, the endpoint, the service and the path in green", async () => {
    await waitShown(allAre("ok"), 20_000);
    assert.deepEqual(await nodeLabels(page, "node"), ["node-1"]);
    assert.deepEqual(await nodeLabels(page, "nsmgr"), ["nsmgr-node-1"]);
    assert.deepEqual(await nodeLabels(page, "forwarder"), ["forwarder-node-1"]);
    assert.deepEqual(await nodeLabels(page, "client"), ["alpine"]);
    assert.deepEqual(await nodeLabels(page, "endpoint"), [nsePod]);
    assert.deepEqual(await nodeLabels(page, "service"), ["kernel2kernel"]);
    const hops = await inPage<string[]>(
      page,
      `window.nsmDashboard.cy.edges('[conn = "alpine-0"]').map((e) => e.source().data("label") + ">" + e.target().data("label"))`,
    );
    assert.deepEqual(hops.sort(), [
      "alpine>nsmgr-node-1",
      `forwarder-node-1>${nsePod}`,
      "nsmgr-node-1>forwarder-node-1",
    ]);
    assert.equal(await page.textContent(`#connections tr[data-id="alpine-0"] td.state`), "UP");
    await page.click(`#connections tr[data-id="alpine-0"]`);
    await waitInPage(page, `document.getElementById("detail").textContent.includes("Mechanisms:")`, 20_000);
    const detail = (await page.textContent("#detail")) ?? "";
    assert.match(detail, /^ID: +alpine-0$/m);
    assert.match(detail, new RegExp(`^ {2}forwarder-node-1 > ${nsePod}: KERNEL \\(LOCAL\\)$`, "m"));
    // Traffic rates: a ping's bytes show in the connection's row.
    const ping = rt.ok("exec", "alpine", "-n", NS, "--", "ping", "-c", "40", "-i", "0.1", "-s", "1000", "172.16.1.100");
    await waitShown(`(window.nsmDashboard.page.rows.get("alpine-0")?.rxRate ?? 0) > 1000`, 20_000);
    assert.match(
      (await page.textContent(`#connections tr[data-id="alpine-0"] td:nth-child(5)`)) ?? "",
      /^[\d.]+ (k|M)?B\/s$/,
    );
    await ping;
    await screenshot(page, "dashboard-kernel2kernel");
    assert.deepEqual(errors, []);
  });

  it("nsm delete pod of the endpoint: the path turns red, then green through the new endpoint, without a reload", async () => {
    await inPage(page, "window.__sameDocument = true");
    const deleting = rt.ok("delete", "pod", nsePod, "-n", NS);
    await waitShown(allAre("failed"), 30_000);
    await screenshot(page, "dashboard-kernel2kernel-healing");
    await deleting;
    await waitShown(allAre("ok"), 90_000);
    const now = await endpointOf();
    assert.notEqual(now, nsePod);
    assert.match(now, /^nse-kernel-/);
    const events = (await page.textContent("#events")) ?? "";
    assert.match(events, new RegExp(`alpine-0 reselected: ${nsePod} → ${now}`));
    assert.match(events, new RegExp(`endpoint ${nsePod} gone`));
    assert.equal(await inPage(page, "window.__sameDocument"), true);
    await screenshot(page, "dashboard-kernel2kernel-healed");
  });

  it("nsm restart of the endpoint: the path turns red, then green again, without a reload", async () => {
    nsePod = await currentEndpointPod();
    const restarting = rt.ok("restart", `pod/${nsePod}`, "-n", NS, "--kill");
    await waitShown(allAre("failed"), 30_000);
    await restarting;
    await waitShown(allAre("ok"), 90_000);
    assert.match((await page.textContent("#events")) ?? "", /alpine-0 healed/);
    assert.equal(await inPage(page, "window.__sameDocument"), true);
    assert.equal(await inPage(page, `performance.getEntriesByType("navigation").length`), 1);
    assert.deepEqual(errors, []);
  });
});
