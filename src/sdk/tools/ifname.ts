// SPDX-License-Identifier: Apache-2.0
/**
 * Kernel interface names for NSM connections (upstream `nanoid.GenerateLinuxInterfaceName`).
 *
 * A generated name is `<service[:10]>-<random>` and always exactly 15 characters (Linux
 * IFNAMSIZ − 1): the service name is cut to 10 characters and the rest is filled with random
 * characters from `[0-9A-Za-z]` (62 symbols, from a CSPRNG without modulo bias).
 * Characters the kernel refuses in a name (`/`, `:`, whitespace, non-ASCII) become `-`.
 */
import { randomBytes } from "node:crypto";
import { LINUX_IF_MAX_LENGTH } from "../../api/mechanisms.js";
import { invalidArgument } from "../core/errors.js";

export const INTERFACE_NAME_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** Longest service-name prefix kept in a generated name (upstream: 15 − 5). */
export const MAX_SERVICE_PREFIX_LENGTH = LINUX_IF_MAX_LENGTH - 5;

/** A random string of `length` characters from {@link INTERFACE_NAME_ALPHABET}. */
export function randomString(length: number, alphabet: string = INTERFACE_NAME_ALPHABET): string {
  // Rejection sampling: keep bytes below the largest multiple of the alphabet size.
  const limit = 256 - (256 % alphabet.length);
  let out = "";
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b < limit) out += alphabet[b % alphabet.length];
      if (out.length === length) break;
    }
  }
  return out;
}

function sanitize(name: string): string {
  return name.replace(/[^\x21-\x7e]|[/:]/g, "-");
}

/** `<networkService[:10]>-<random>`, 15 characters. */
export function generateInterfaceName(networkService: string): string {
  const prefix = sanitize(networkService).slice(0, MAX_SERVICE_PREFIX_LENGTH);
  return `${prefix}-${randomString(LINUX_IF_MAX_LENGTH - prefix.length - 1)}`;
}

/** Checks a kernel interface name: 1–15 characters, no `/`, `:` or whitespace, not `.` or `..`. */
export function validateInterfaceName(name: string): void {
  if (name.length === 0 || name.length > LINUX_IF_MAX_LENGTH) {
    throw invalidArgument(`interface name "${name}" must be 1 to ${LINUX_IF_MAX_LENGTH} characters long`, {
      reason: "bad-interface-name",
    });
  }
  if (name === "." || name === ".." || sanitize(name) !== name) {
    throw invalidArgument(`interface name "${name}" is not a valid Linux interface name`, {
      reason: "bad-interface-name",
    });
  }
}
