// SPDX-License-Identifier: Apache-2.0
/**
 * What every command of the runtime works with: where its state lives, its configuration, where
 * progress goes (the CLI's console, through {@link Progress}), the structured logger, and the two
 * things every changing command does: save the state and hold the state directory's lock.
 */
import type { Logger } from "../sdk/core/logger.js";
import type { LocalConfig } from "./config.js";
import { writeIdentities } from "./identity.js";
import { isLending, type LentServer } from "./lock-lend.js";
import type { Progress } from "./progress.js";
import { acquireLock, acquireLockOrLender, type RuntimePaths, type State, saveState } from "./state.js";

export interface RuntimeContext {
  readonly paths: RuntimePaths;
  readonly config: LocalConfig;
  readonly out: Progress;
  readonly log: Logger;
  /**
   * Set while a command holds the lock: performs an apply another command asks for while this one
   * waits for a pod's client to connect (./lock-lend.ts). @default none
   */
  readonly serveLent?: LentServer;
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

/**
 * Like {@link withLock}, but when the holder of the lock lends it (./lock-lend.ts), `viaLender`
 * runs instead, asking that process to do the work.
 */
export async function withLockOrLender<T>(
  ctx: RuntimeContext,
  what: string,
  fn: () => Promise<T>,
  viaLender: (pid: number) => Promise<T>,
): Promise<T> {
  const got = await acquireLockOrLender(
    ctx.paths,
    what,
    (m) => ctx.out.say(m),
    (pid) => isLending(ctx.paths, pid),
  );
  if (typeof got !== "function") return viaLender(got.lender);
  try {
    return await fn();
  } finally {
    got();
  }
}
