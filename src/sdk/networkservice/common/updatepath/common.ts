// SPDX-License-Identifier: Apache-2.0
import { randomUUID } from "node:crypto";
import { type Connection, create, PathSchema, PathSegmentSchema } from "../../../../api/index.js";
import { invalidArgument } from "../../../core/errors.js";

/**
 * Walks or extends `conn.path` for the hop named `name` and sets `conn.id` to this hop's
 * segment id. Mutates `conn`. Returns the index to restore after next returns (the caller's
 * index, so the connection handed back looks as the caller sent it).
 *
 * 0. No segments: add `{name, id}` (id = conn.id, or a new UUID).
 * 1. The current segment is ours: take its id.
 * 2. Otherwise the current segment must carry conn.id; step to the next segment,
 *    renaming it (with a new id) if it belongs to someone else, or appending a new one.
 */
export function updatePath(conn: Connection, name: string): number {
  if (!conn.path) conn.path = create(PathSchema, {});
  const path = conn.path;
  if (path.pathSegments.length === 0) {
    path.index = 0;
    if (!conn.id) conn.id = randomUUID();
    path.pathSegments.push(create(PathSegmentSchema, { name, id: conn.id }));
    return 0;
  }
  const cur = path.pathSegments[path.index];
  if (cur && cur.name === name) {
    conn.id = cur.id;
    return path.index;
  }
  const nextIndex = path.index + 1;
  if (!cur || nextIndex > path.pathSegments.length) {
    throw invalidArgument(
      `path index ${path.index} is out of range: the path has ${path.pathSegments.length} segment(s)`,
      { reason: "path-index-out-of-range" },
    );
  }
  if (cur.id !== conn.id) {
    throw invalidArgument(`path segment ${path.index} has id ${cur.id}, but the connection id is ${conn.id}`, {
      reason: "path-id-mismatch",
    });
  }
  const following = path.pathSegments[nextIndex];
  if (following && following.name !== name) {
    following.name = name;
    following.id = randomUUID();
  }
  path.index = nextIndex;
  if (!following) {
    conn.id = randomUUID();
    path.pathSegments.push(create(PathSegmentSchema, { name, id: conn.id }));
  } else {
    conn.id = following.id;
  }
  return nextIndex - 1;
}

/** Puts the caller's index and id back on a returned connection. */
export function restorePath(conn: Connection, index: number): Connection {
  if (conn.path) {
    conn.path.index = index;
    conn.id = conn.path.pathSegments[index]?.id ?? conn.id;
  }
  return conn;
}
