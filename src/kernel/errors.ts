// SPDX-License-Identifier: Apache-2.0
/**
 * The one place where Linux errno values become gRPC codes.
 *
 * Everything in `src/kernel` that fails because of the kernel (a netlink NLMSG_ERROR, a failed
 * `open`/`setns` in the addon, a missing netns file) goes through {@link nsmErrorFromErrno}, so
 * a forwarder answers "the interface already exists" with `AlreadyExists` wherever it came from.
 */
import { constants } from "node:os";
import { Code, NsmError } from "../sdk/core/errors.js";

const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) {
  if (!errnoNames.has(value)) errnoNames.set(value, name);
}

/** The symbolic name of an errno (`17` → `"EEXIST"`), or `"errno N"` for an unknown one. */
export function errnoName(errno: number): string {
  return errnoNames.get(Math.abs(errno)) ?? `errno ${Math.abs(errno)}`;
}

const E = constants.errno;

/** The gRPC code for an errno (sign ignored: netlink reports `-EEXIST`). */
export function codeFromErrno(errno: number): Code {
  switch (Math.abs(errno)) {
    case E.EEXIST:
      return Code.AlreadyExists;
    case E.ENOENT:
    case E.ENODEV:
    case E.ESRCH:
      return Code.NotFound;
    case E.EPERM:
    case E.EACCES:
      return Code.PermissionDenied;
    case E.EBUSY:
    case E.EAGAIN:
      return Code.Unavailable;
    case E.EINVAL:
    case E.ERANGE:
      return Code.InvalidArgument;
    default:
      return Code.Internal;
  }
}

/**
 * An NsmError for a failed kernel operation. The message keeps everything a person needs:
 * `what` (the operation and its object), the errno name and number, and the kernel's
 * extended-ack text when there is one, e.g.
 * `create veth "a" in /var/run/netns/x: EEXIST (errno 17): File exists`.
 */
export function nsmErrorFromErrno(errno: number, what: string, extack?: string, cause?: unknown): NsmError {
  const n = Math.abs(errno);
  const text = extack ? `: ${extack}` : "";
  return new NsmError(`${what}: ${errnoName(n)} (errno ${n})${text}`, codeFromErrno(n), {
    cause,
    reason: errnoName(n),
    details: { errno: n, ...(extack ? { extack } : {}) },
  });
}

/**
 * Turns anything thrown by the addon or `node:fs` (both carry a numeric `errno`, Node's
 * negative, the addon's positive) into an NsmError; an NsmError passes through.
 */
export function nsmErrorFromSystem(err: unknown, what: string): NsmError {
  if (err instanceof NsmError) return err;
  const e = (err ?? {}) as { errno?: unknown; syscall?: unknown };
  if (typeof e.errno === "number" && e.errno !== 0) {
    const step = typeof e.syscall === "string" && e.syscall ? ` (${e.syscall})` : "";
    return nsmErrorFromErrno(e.errno, what + step, undefined, err);
  }
  const msg = err instanceof Error ? err.message : String(err);
  return new NsmError(`${what}: ${msg}`, Code.Internal, { cause: err });
}
