// SPDX-License-Identifier: Apache-2.0
/**
 * The one error type of the local runtime: a problem the user can act on, reported by the CLI as
 * one line (`nsm <command>: error: …`, followed by a log tail when a process died) with exit
 * code 1. Anything else that escapes is a bug.
 */
export class LocalError extends Error {
  override readonly name = "LocalError";
}
