// SPDX-License-Identifier: Apache-2.0
/**
 * validation (registry): rejects records that no registry can store or dial.
 *
 * Purpose: bad input gets a clear InvalidArgument and changes nothing (DESIGN §9).
 * - Register or Unregister of a record with an empty `name`;
 * - Register of an NSE whose `url` is set but is not a dialable NSM URL: `unix:///path`,
 *   `tcp://host[:port]` or `inode://<dev>/<ino>` (an empty `url` is accepted here; elements
 *   that need one, such as localbypass, check it themselves).
 * Chain placement: first, right after the security elements.
 * Per-name state: none.
 * Options: none.
 * Failure behaviour: throws InvalidArgument before anything after it runs.
 */
import type { CallContext } from "../../../core/context.js";
import { invalidArgument } from "../../../core/errors.js";
import type { RegistryElement, RegistryHandler } from "../../core/chain.js";
import type { RegistryKind, RegistryTypes } from "../../core/kind.js";

/** Why `url` is not an NSM endpoint URL, or undefined when it is one. */
export function nsmUrlProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return "not a URL";
  }
  switch (u.protocol) {
    case "unix:":
      return u.host === "" && u.pathname.length > 1 ? undefined : "unix URLs look like unix:///path/to/socket";
    case "tcp:":
      return u.hostname !== "" ? undefined : "tcp URLs need a host (tcp://host:port)";
    case "inode:":
      return /^\d+$/.test(u.hostname) && /^\/\d+$/.test(u.pathname)
        ? undefined
        : "inode URLs look like inode://dev/ino";
    default:
      return `unsupported scheme ${u.protocol.slice(0, -1)} (want unix, tcp or inode)`;
  }
}

/** Creates the validation element for `kind` (`nsKind` or `nseKind`). */
export function registryValidation<T extends RegistryTypes>(kind: RegistryKind<T>): RegistryElement<T> {
  const checkName = (record: T["record"]) => {
    if (!kind.nameOf(record)) throw invalidArgument(`${kind.recordTypeName}.name must not be empty`);
  };
  return {
    name: "validation",
    async register(record: T["record"], ctx: CallContext, next: RegistryHandler<T>) {
      checkName(record);
      const url = kind.urlOf?.(record) ?? "";
      const problem = url === "" ? undefined : nsmUrlProblem(url);
      if (problem) throw invalidArgument(`${kind.recordTypeName}.url ${JSON.stringify(url)}: ${problem}`);
      return next.register(record, ctx);
    },
    find: (query, ctx, next) => next.find(query, ctx),
    async unregister(record: T["record"], ctx: CallContext, next: RegistryHandler<T>) {
      checkName(record);
      return next.unregister(record, ctx);
    },
  };
}
