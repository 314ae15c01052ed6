// SPDX-License-Identifier: Apache-2.0
/** The "already gone" tolerance of every cleanup path (cross-connects, reconciliation). */
import { Code, NsmError } from "../../../sdk/core/errors.js";

/** True for an error that means "it is not there any more" (link, netns, address, route, neighbour). */
export function isGone(err: unknown): boolean {
  if (!(err instanceof NsmError)) return false;
  return err.code === Code.NotFound || err.reason === "EADDRNOTAVAIL";
}

/** Runs `op`; "already gone" counts as done. */
export async function tolerateGone<T>(op: Promise<T>): Promise<T | undefined> {
  try {
    return await op;
  } catch (err) {
    if (!isGone(err)) throw err;
    return undefined;
  }
}
