// SPDX-License-Identifier: Apache-2.0
/**
 * validate: rejects malformed requests at the door.
 *
 * Purpose: a request that cannot be right (no connection, no network service, a path index
 * past the end of the path, a mechanism without a type, an interface name longer than Linux
 * allows) gets InvalidArgument with a message saying what is wrong, before any element
 * allocates anything.
 * Chain placement: first element of every server chain.
 * Per-connection state: none.
 */
import { LINUX_IF_MAX_LENGTH, type Mechanism, Param, type Path } from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import { invalidArgument } from "../../../core/errors.js";
import { requestConnection } from "../../../core/request.js";

const IFNAME = /^[^\s/:]+$/;

function checkPathIndex(p: Path | undefined): void {
  if (p && p.pathSegments.length > 0 && p.index >= p.pathSegments.length) {
    throw invalidArgument(`path index ${p.index} is out of range: the path has ${p.pathSegments.length} segment(s)`, {
      reason: "path-index-out-of-range",
    });
  }
}

/** A mechanism needs a type; an interface name, if given, must be one Linux accepts. */
function checkMechanism(m: Mechanism): void {
  if (!m.type) throw invalidArgument("a mechanism has no type");
  const name = m.parameters[Param.NAME];
  if (name !== undefined && (name.length > LINUX_IF_MAX_LENGTH || !IFNAME.test(name))) {
    throw invalidArgument(
      `interface name "${name}" is not valid: at most ${LINUX_IF_MAX_LENGTH} characters, no spaces, "/" or ":"`,
    );
  }
}

export function validateServer(): NetworkServiceElement {
  return {
    name: "validate",
    request(req, ctx, next) {
      const c = requestConnection(req);
      if (!c.networkService)
        throw invalidArgument("connection.network_service is empty: name the network service to connect to");
      checkPathIndex(c.path);
      for (const m of [...req.mechanismPreferences, ...(c.mechanism ? [c.mechanism] : [])]) checkMechanism(m);
      return next.request(req, ctx);
    },
    close(conn, ctx, next) {
      if (!conn.id && !conn.path?.pathSegments.length) throw invalidArgument("close needs a connection id or path");
      return next.close(conn, ctx);
    },
  };
}
