// SPDX-License-Identifier: Apache-2.0
import type { Connection, MonitorScopeSelector, PathSegment } from "../../../../api/index.js";

function segmentMatches(want: PathSegment, have: PathSegment): boolean {
  return (
    (want.name === "" || want.name === have.name) &&
    (want.id === "" || want.id === have.id) &&
    (want.token === "" || want.token === have.token)
  );
}

/**
 * Upstream MonitorScopeSelector semantics: an empty selector matches everything;
 * `network_services`, when set, must contain the connection's service; `path_segments`, when
 * set, must match a contiguous run of the connection's path (empty fields are wildcards).
 */
export function matchesSelector(conn: Connection, selector: MonitorScopeSelector): boolean {
  if (selector.networkServices.length > 0 && !selector.networkServices.includes(conn.networkService)) return false;
  const want = selector.pathSegments;
  if (want.length === 0) return true;
  const have = conn.path?.pathSegments ?? [];
  for (let start = 0; start + want.length <= have.length; start++) {
    if (want.every((w, i) => segmentMatches(w, have[start + i]!))) return true;
  }
  return false;
}
