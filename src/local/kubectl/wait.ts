// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm wait --for=condition=ready|--for=delete [--timeout=1m] KIND NAME…|-l SELECTOR`: polls the
 * runtime's state until every selected object meets the condition, printing kubectl's
 * `pod/NAME condition met` lines, or fails with kubectl's timeout message.
 */
import { LocalError } from "../errors.js";
import { isAlive } from "../proc.js";
import { loadState, type RuntimePaths } from "../state.js";
import { isReady, resourceNameOf } from "./objects.js";
import { type Query, selectObjects } from "./query.js";

type Json = Record<string, unknown>;

export type WaitCondition = { readonly kind: "ready" } | { readonly kind: "delete" };

/** `--for=…` as a condition. */
export function parseWaitFor(text: string | undefined): WaitCondition {
  if (text === undefined) throw new LocalError("--for is required: --for=condition=ready or --for=delete");
  const t = text.toLowerCase();
  if (t === "delete") return { kind: "delete" };
  if (t === "condition=ready" || t === "condition=ready=true") return { kind: "ready" };
  throw new LocalError(`unsupported --for "${text}" (supported here: condition=ready, delete)`);
}

/** A Go duration (`1m`, `30s`, `1m30s`, `500ms`, `2h`) in milliseconds. */
export function parseDuration(text: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== text)
    throw new LocalError(`invalid duration "${text}" (e.g. 30s, 1m, 1m30s)`);
  return parts.reduce((sum, p) => sum + Number(p[1]) * units[p[2]!]!, 0);
}

const alive = (p: Parameters<typeof isAlive>[0] | undefined) => p !== undefined && isAlive(p);

function current(paths: RuntimePaths, q: Query): Json[] {
  const state = loadState(paths);
  if (!state) throw new LocalError("the local runtime is not up");
  try {
    return selectObjects(state, q, alive);
  } catch (err) {
    if (err instanceof LocalError && /not found/.test(err.message)) return [];
    throw err;
  }
}

const nameOf = (o: Json) => String((o.metadata as Json).name);

/** Waits; returns the lines to print. */
export async function waitFor(
  paths: RuntimePaths,
  q: Query,
  cond: WaitCondition,
  timeoutMs: number,
): Promise<string[]> {
  const resource = resourceNameOf(q.kind);
  const first = current(paths, q);
  if (cond.kind === "ready" && first.length === 0) throw new LocalError("no matching resources found");
  const watched = first.map(nameOf);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = current(paths, q);
    const pending =
      cond.kind === "delete"
        ? watched.filter((n) => now.some((o) => nameOf(o) === n))
        : watched.filter((n) => !now.some((o) => nameOf(o) === n && isReady(o)));
    if (pending.length === 0) return watched.map((n) => `${resource}/${n} condition met`);
    if (Date.now() >= deadline) throw new LocalError(`timed out waiting for the condition on ${q.kind}/${pending[0]}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
