// SPDX-License-Identifier: Apache-2.0
/**
 * Sharing the token strings of two views of one path.
 *
 * Every decoded message brings its own copy of each string, and a path token is a signed JWT of
 * about a kilobyte. A hop keeps several views of one connection's path (the request it got, the
 * answer of the next hop, the next hop's monitor events), so without sharing a connection costs
 * a dozen copies of the same few tokens at every hop.
 */
import type { Path } from "../../api/index.js";

/**
 * Makes each segment of `fresh` whose id and token equal those of a segment of `known` use
 * `known`'s token string (same content, one copy in memory). Changes nothing else.
 */
export function sharePathTokens(fresh: Path | undefined, known: Path | undefined): void {
  if (!fresh || !known) return;
  const tokens = new Map<string, string>();
  for (const s of known.pathSegments) if (s.token) tokens.set(s.id, s.token);
  for (const s of fresh.pathSegments) {
    const token = tokens.get(s.id);
    if (token !== undefined && token === s.token) s.token = token;
  }
}
