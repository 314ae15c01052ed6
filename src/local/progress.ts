// SPDX-License-Identifier: Apache-2.0
/**
 * How the local runtime reports progress: one line per thing that happened, readable by a person.
 * The runtime never writes to the console itself; the CLI (src/cmd/local.ts) gives it a
 * {@link Progress} that writes results and progress to stdout, warnings to stderr.
 */

export interface Progress {
  /** A line of progress or result. */
  say(line: string): void;
  /** A warning (does not fail the command). */
  warn(line: string): void;
  /** Milliseconds since `since`, formatted for the end of a line: `(1.2s)`. */
  took(since: number): string;
}
