// SPDX-License-Identifier: Apache-2.0
/** Path accessors (upstream `GetCurrent/Prev/NextPathSegment`). */
import type { Connection, PathSegment } from "./gen/connection_pb.js";

export function currentSegment(conn: Connection | undefined): PathSegment | undefined {
  const p = conn?.path;
  return p ? p.pathSegments[p.index] : undefined;
}

export function prevSegment(conn: Connection | undefined): PathSegment | undefined {
  const p = conn?.path;
  return p && p.index > 0 ? p.pathSegments[p.index - 1] : undefined;
}

export function nextSegment(conn: Connection | undefined): PathSegment | undefined {
  const p = conn?.path;
  return p ? p.pathSegments[p.index + 1] : undefined;
}
