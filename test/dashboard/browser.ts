// SPDX-License-Identifier: Apache-2.0
/**
 * Chromium for the dashboard's tests and benchmark: Debian's /usr/bin/chromium (scripts/setup.sh
 * installs it) driven headless by playwright-core, which downloads no browser of its own.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";

export const CHROMIUM = process.env.NSM_CHROMIUM ?? "/usr/bin/chromium";

/** Where screenshots go (gitignored). */
export const ARTIFACTS = join(import.meta.dirname, "..", "..", "test-artifacts");

/** Why the browser tests cannot run here, or undefined. */
export function browserSkipReason(): string | undefined {
  if (!existsSync(CHROMIUM)) return `no Chromium at ${CHROMIUM} (bash scripts/setup.sh installs Debian's chromium)`;
  return undefined;
}

export async function launchChromium(): Promise<Browser> {
  // --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start.
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
}

/** A page that fails the test on any error the page itself reports. */
export async function openPage(browser: Browser, url: string, errors: string[]): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 850 } });
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  await page.goto(url);
  await waitInPage(page, "document.body.dataset.seq !== undefined", 20_000);
  return page;
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: false });
  return path;
}

/** Evaluates `expression` (browser-side JavaScript, as text: this file has no DOM types) in the page. */
export function inPage<T>(page: Page, expression: string): Promise<T> {
  return page.evaluate(expression) as Promise<T>;
}

/**
 * Waits until `expression` is truthy in the page, polling every 50 ms. (Playwright's
 * waitForFunction compiles a string with eval, which the page's CSP forbids.)
 */
export async function waitInPage(page: Page, expression: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await inPage(page, expression))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${expression}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The statuses of the hop edges of connection `conn` in the page's graph. */
export function edgeStatuses(page: Page, conn: string): Promise<string[]> {
  return inPage(page, `window.nsmDashboard.edgeStatus(${JSON.stringify(conn)})`);
}

/** The labels of the graph's nodes of one kind (node, nsmgr, forwarder, client, endpoint, service). */
export function nodeLabels(page: Page, kind: string): Promise<string[]> {
  return inPage(
    page,
    `window.nsmDashboard.cy.nodes('[kind = ${JSON.stringify(kind)}]').map((n) => n.data("label")).sort()`,
  );
}
