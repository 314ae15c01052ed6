// SPDX-License-Identifier: Apache-2.0
/**
 * The local runtime's console output: one line per thing that happened, readable by a person.
 * Results and progress go to stdout, warnings and errors to stderr.
 */

export interface Progress {
  /** A line of progress or result. */
  say(line: string): void;
  /** A warning (does not fail the command). */
  warn(line: string): void;
  /** Milliseconds since `since`, formatted for the end of a line: `(1.2s)`. */
  took(since: number): string;
}

export function consoleProgress(out: NodeJS.WritableStream = process.stdout, err = process.stderr): Progress {
  return {
    say: (line) => out.write(`${line}\n`),
    warn: (line) => err.write(`warning: ${line}\n`),
    took: (since) => `(${((Date.now() - since) / 1000).toFixed(1)}s)`,
  };
}
