// SPDX-License-Identifier: Apache-2.0
/**
 * Test helpers for asynchronous code: a context that cannot hang a test, reading a stream with a
 * deadline, waiting for a condition, counting live timers. Never imported by production code.
 */
import { CallContext } from "../core/context.js";

/** A context that aborts after `timeoutMs` (tests never hang), plus its abort function. */
export function testContext(timeoutMs = 5000): { ctx: CallContext; cancel: () => void } {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error("test timeout")), timeoutMs);
  ac.signal.addEventListener("abort", () => clearTimeout(timer), { once: true });
  return { ctx: CallContext.create({ signal: ac.signal }), cancel: () => ac.abort() };
}

/** Reads the next item of a stream, failing after `timeoutMs`. */
export async function nextWithin<R>(it: AsyncIterator<R>, timeoutMs = 2000): Promise<IteratorResult<R>> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      it.next(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no stream item within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves after `ms`. */
export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The number of live timers (`setTimeout`/`setInterval`) in this process. */
export function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
}

/** Polls `check` until it returns true, failing after `timeoutMs`. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 2000, stepMs = 10) {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await delay(stepMs);
  }
}

/**
 * Runs `fn` until it stops throwing, every `stepMs`; after `timeoutMs` its last error is thrown
 * (so an assertion's own message says what never came true).
 */
export async function retrying<T>(fn: () => T | Promise<T>, timeoutMs: number, stepMs = 500): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > end) throw err;
      await delay(stepMs);
    }
  }
}
