// SPDX-License-Identifier: Apache-2.0
/**
 * Link deletions that a Close does not wait to finish.
 *
 * When it deletes a link, the kernel first takes it out of its netns (the name is free, no
 * lookup or dump shows it, its addresses and routes are gone: ~1-2 ms here), then waits for RCU
 * grace periods before it acknowledges the RTM_DELLINK (~20 ms, more on a busy machine). What a
 * user can observe ends with the first part, so a cross-connect's Close waits for that only
 * (the link is looked up by ifindex until it is gone) and the acknowledgement is awaited in the
 * background:
 * - a Request that needs a name a pending deletion frees (same netns, same interface name) first
 *   waits until that link is gone ({@link PendingDeletions.vacated});
 * - process shutdown waits for every acknowledgement ({@link PendingDeletions.drain});
 * - a failure after the link left its netns is logged (warn) with the connection's logger and
 *   counted in {@link PendingDeletions.failures}; a failure before that is the Close's error.
 *
 * Written by hand: it is a map of promises keyed by (netns identity, name).
 */
import type { Logger } from "../../../sdk/core/logger.js";
import type { KernelApi, NetnsPath } from "../../api.js";
import { isGone, tolerateGone } from "./gone.js";

/** A name a link holds in a netns. */
export interface LinkName {
  netns: NetnsPath;
  /** The namespace's identity when known (two paths may name one netns). */
  netnsId?: string;
  name: string;
}

/** One link to delete: where it is now, by ifindex, and every name its deletion frees (a veth peer's too). */
export interface LinkDeletion {
  netns: NetnsPath;
  index: number;
  frees: readonly LinkName[];
}

/** Between two looks at a link being deleted. */
const POLL_MS = 1;

const keyOf = (n: LinkName) => `${n.netnsId ?? n.netns}\0${n.name}`;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class PendingDeletions {
  /** Names being freed → resolves once the link holding them is gone (never rejects). */
  readonly #freeing = new Map<string, Promise<void>>();
  /** The acknowledgements still awaited (they never reject). */
  readonly #inFlight = new Set<Promise<void>>();
  #failures = 0;

  /** Deletions whose kernel acknowledgement is still awaited. */
  get size(): number {
    return this.#inFlight.size;
  }

  /** Background deletions that failed after their link had left its netns (each was logged). */
  get failures(): number {
    return this.#failures;
  }

  /**
   * Deletes link `d.index` in `d.netns` and resolves once it is gone from there; rejects with
   * the kernel's error if the deletion fails before that ("already gone" counts as done).
   */
  async delete(kernel: KernelApi, d: LinkDeletion, log: Logger): Promise<void> {
    const acknowledged = tolerateGone(kernel.deleteLink(d.netns, d.index)).then(() => undefined);
    const gone = untilGone(kernel, d, acknowledged);
    const vacated = gone.catch(() => undefined);
    const keys = d.frees.map(keyOf);
    for (const key of keys) this.#freeing.set(key, vacated);
    let awaited = true;
    const tracked: Promise<void> = acknowledged
      .catch((err: unknown) => {
        if (awaited) return; // the caller gets it
        this.#failures++;
        log.warn({ netns: d.netns, ifindex: d.index, err: String(err) }, "background link deletion failed");
      })
      .finally(() => this.#inFlight.delete(tracked));
    this.#inFlight.add(tracked);
    try {
      await gone;
    } finally {
      awaited = false;
      for (const key of keys) if (this.#freeing.get(key) === vacated) this.#freeing.delete(key);
    }
  }

  /** Resolves once no pending deletion still holds one of `names`. */
  async vacated(names: readonly LinkName[]): Promise<void> {
    if (this.#freeing.size === 0) return;
    for (const n of names) await this.#freeing.get(keyOf(n));
  }

  /** Resolves once every deletion started so far is acknowledged (or has failed and been logged). */
  async drain(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.all(this.#inFlight);
  }
}

/**
 * Resolves once link `d.index` no longer exists in `d.netns` (or its netns is gone), or when the
 * deletion is acknowledged; rejects if the deletion fails first.
 */
async function untilGone(kernel: KernelApi, d: LinkDeletion, acknowledged: Promise<void>): Promise<void> {
  let settled = false;
  const done = acknowledged.finally(() => {
    settled = true;
  });
  done.catch(() => undefined);
  for (;;) {
    if (settled) return done;
    const link = await kernel.findLink(d.netns, d.index).catch((err: unknown) => {
      if (isGone(err)) return undefined;
      throw err;
    });
    if (!link) return;
    await Promise.race([sleep(POLL_MS), done.catch(() => undefined)]);
  }
}
