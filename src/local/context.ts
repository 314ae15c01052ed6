// SPDX-License-Identifier: Apache-2.0
/**
 * What every command of the runtime works with: where its state lives, its configuration, where
 * progress goes (the CLI's console, through {@link Progress}), the structured logger, and the two
 * things every changing command does: save the state and hold the state directory's lock.
 */
import type { Logger } from "../sdk/core/logger.js";
import type { LocalConfig } from "./config.js";
import { writeIdentities } from "./identity.js";
import type { Progress } from "./progress.js";
import { acquireLock, type RuntimePaths, type State, saveState } from "./state.js";

export interface RuntimeContext {
  readonly paths: RuntimePaths;
  readonly config: LocalConfig;
  readonly out: Progress;
  readonly log: Logger;
}

/** Saves the state, and the identities derived from it (who is who for the identity provider and the forwarders' netns checks). */
export function save(ctx: RuntimeContext, state: State): void {
  saveState(ctx.paths, state);
  writeIdentities(ctx.paths, state);
}

/** Runs `fn` holding the lock of the state directory (which must exist). */
export async function withLock<T>(ctx: RuntimeContext, what: string, fn: () => Promise<T>): Promise<T> {
  const release = await acquireLock(ctx.paths, what, (m) => ctx.out.say(m));
  try {
    return await fn();
  } finally {
    release();
  }
}
