// SPDX-License-Identifier: Apache-2.0
/**
 * The dashboard page in Chromium against a made-up mesh (no runtime, no root): it draws the
 * mesh, updates live without a reload, shows a connection's detail on click, and renders names
 * carrying markup as text. Plus the server's answers to bad requests.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import { loadAssets } from "../../src/local/dashboard/assets.js";
import { type Dashboard, serveDashboard } from "../../src/local/dashboard/server.js";
import {
  browserSkipReason,
  edgeStatuses,
  inPage,
  launchChromium,
  nodeLabels,
  openPage,
  screenshot,
  waitInPage,
} from "./browser.js";
import { type SyntheticMesh, syntheticMesh } from "./synthetic.js";

const skip = browserSkipReason();
if (skip) console.log(`# skipping the dashboard page tests: ${skip}`);

const EVIL_SERVICE = `<img src=x onerror="window.__pwned=1">svc`;
const evilClient = (i: number) => (i === 0 ? `<b>c</b><script>window.__pwned=2</script>` : `client-${i}`);

describe("dashboard page (synthetic mesh, Chromium)", { skip }, () => {
  let browser: Browser;
  let mesh: SyntheticMesh;
  let dashboard: Dashboard;
  let page: Page;
  const errors: string[] = [];

  before(async () => {
    mesh = syntheticMesh(6, 2, 1, { service: EVIL_SERVICE, client: evilClient });
    mesh.mesh = { ...mesh.mesh, problems: [`<i>problem</i><img src=y onerror="window.__pwned=3">`] };
    dashboard = await serveDashboard(mesh, { port: 0, pollMs: 60_000, assets: await loadAssets() });
    browser = await launchChromium();
    page = await openPage(browser, dashboard.url, errors);
  });
  after(async () => {
    await browser?.close();
    await dashboard?.close();
  });

  it("draws the nodes, their nsmgr and forwarder, clients, endpoints, the service and every hop", async () => {
    assert.deepEqual(await nodeLabels(page, "node"), ["node-1", "node-2"]);
    assert.deepEqual(await nodeLabels(page, "nsmgr"), ["nsmgr-node-1", "nsmgr-node-2"]);
    assert.deepEqual(await nodeLabels(page, "forwarder"), ["forwarder-node-1", "forwarder-node-2"]);
    assert.deepEqual(await nodeLabels(page, "endpoint"), ["nse-node-1-0", "nse-node-2-0"]);
    assert.equal((await nodeLabels(page, "client")).length, 6);
    assert.deepEqual(await nodeLabels(page, "service"), [EVIL_SERVICE]);
    assert.deepEqual(await edgeStatuses(page, "client-1-0"), ["ok", "ok", "ok", "ok", "ok"]);
    assert.equal(await inPage(page, `document.querySelectorAll("#connections tbody tr").length`), 6);
    assert.match((await page.textContent("#summary")) ?? "", /2 node\(s\), 6 connection\(s\)/);
    await screenshot(page, "dashboard-synthetic");
    assert.deepEqual(errors, []);
  });

  it("renders names carrying markup as text: no element made from them, no script run", async () => {
    const evilId = `${evilClient(0)}-0`;
    const cells = await inPage<string[]>(
      page,
      `[...document.querySelectorAll("#connections tbody tr")].map((tr) => tr.cells[0].textContent + "|" + tr.cells[1].textContent)`,
    );
    assert.ok(cells.includes(`${evilId}|${EVIL_SERVICE}`), JSON.stringify(cells));
    assert.equal(await page.textContent("#problems li"), `<i>problem</i><img src=y onerror="window.__pwned=3">`);
    assert.match((await page.textContent("#events")) ?? "", /<b>c<\/b><script>/);
    await page.click(`#connections tbody tr[data-id="client-1-0"]`);
    await page.locator(`#connections tbody tr`).first().click();
    await waitInPage(page, `document.getElementById("detail").textContent.startsWith("ID:")`);
    assert.equal((await page.textContent("#detail"))?.split("\n")[0], `ID:        ${evilId}`);
    assert.equal(await page.textContent("#detail-id"), evilId);
    const injected = await inPage<number>(
      page,
      `document.querySelectorAll("body img, body script, body b, body i").length`,
    );
    assert.equal(injected, 0);
    assert.equal(await inPage(page, "window.__pwned"), undefined);
  });

  it("follows changes live, without reloading: a failed connection turns red, then green again", async () => {
    await inPage(page, "window.__sameDocument = true");
    await page.click(`#connections tr[data-id="client-3-0"]`);
    await waitInPage(page, `document.getElementById("detail").textContent.includes("State:     UP")`);
    mesh.set("client-3-0", { state: "DOWN" });
    await waitInPage(page, `window.nsmDashboard.edgeStatus("client-3-0").every((s) => s === "failed")`);
    assert.equal(
      await inPage(page, `document.querySelector('#connections tr[data-id="client-3-0"]').dataset.status`),
      "failed",
    );
    assert.match((await page.textContent("#events li")) ?? "", /client-3-0 is DOWN: healing/);
    // The detail of the chosen connection follows it.
    await waitInPage(page, `document.getElementById("detail").textContent.includes("State:     DOWN")`);
    await screenshot(page, "dashboard-synthetic-failed");
    mesh.set("client-3-0", {
      state: "UP",
      endpoint: "nse-node-1-0",
      path: ["client-3", "nsmgr-node-2", "forwarder-node-2", "nsmgr-node-1", "forwarder-node-1", "nse-node-1-0"],
    });
    await waitInPage(page, `window.nsmDashboard.edgeStatus("client-3-0").every((s) => s === "ok")`);
    assert.match((await page.textContent("#events")) ?? "", /client-3-0 reselected: nse-node-2-0 → nse-node-1-0/);
    assert.equal(await inPage(page, "window.__sameDocument"), true);
    assert.equal(await inPage(page, `performance.getEntriesByType("navigation").length`), 1);
    assert.deepEqual(errors, []);
  });

  it("an endpoint that dies while its connections move to another, in one update: all redrawn", async () => {
    const dead = "nse-node-2-0";
    const moved = mesh.mesh.connections.filter((c) => c.endpoint === dead).map((c) => c.id);
    assert.ok(moved.length > 0);
    mesh.mesh = {
      ...mesh.mesh,
      pods: mesh.mesh.pods.filter((p) => p.name !== dead),
      endpoints: mesh.mesh.endpoints.filter((e) => e.name !== dead),
      connections: mesh.mesh.connections.map((c) =>
        c.endpoint === dead ? { ...c, endpoint: "nse-node-1-0", path: [...c.path.slice(0, -1), "nse-node-1-0"] } : c,
      ),
    };
    await dashboard.refresh();
    await waitInPage(page, `!window.nsmDashboard.cy.getElementById("c:${dead}").nonempty()`);
    for (const id of moved) {
      const path = mesh.mesh.connections.find((c) => c.id === id)!.path;
      assert.deepEqual(
        await edgeStatuses(page, id),
        path.slice(1).map(() => "ok"),
        id,
      );
      const last = await inPage<string>(
        page,
        `window.nsmDashboard.cy.getElementById("hop:${id}:${path.length - 2}").target().data("label")`,
      );
      assert.equal(last, "nse-node-1-0");
    }
    assert.deepEqual(await nodeLabels(page, "endpoint"), ["nse-node-1-0"]);
    assert.match((await page.textContent("#events")) ?? "", /endpoint nse-node-2-0 gone/);
    assert.deepEqual(errors, []);
  });

  it("answers bad requests with a status and a line, and serves the page with a CSP", async () => {
    const res = await fetch(dashboard.url);
    assert.match(res.headers.get("content-security-policy") ?? "", /script-src 'self'/);
    const missing = await fetch(new URL("/api/connections/nope", dashboard.url));
    assert.equal(missing.status, 404);
    assert.equal(await missing.text(), `no connection "nope"\n`);
    const bad = await fetch(new URL("/api/connections/%E0%A4%A", dashboard.url));
    assert.equal(bad.status, 400);
    assert.equal((await fetch(new URL("/nothing", dashboard.url))).status, 404);
    assert.equal((await fetch(dashboard.url, { method: "POST" })).status, 405);
  });
});
