// SPDX-License-Identifier: Apache-2.0
/**
 * What the local (veth) and remote (VXLAN / WireGuard) cross-connects share: their common
 * options, checked once here, and the constants both write into pods.
 */
import { invalidArgument } from "../../../sdk/core/errors.js";
import type { KernelApi } from "../../api.js";
import type { Reconciler } from "../reconcile/reconcile.js";
import { PendingDeletions } from "./deletions.js";
import { type NetnsCheck, requireNetnsCheck } from "./ownership.js";
import { checkTagOwner, DEFAULT_TAG_OWNER } from "./tag.js";

/** Closing downstream after a failed first Request gets this long. */
export const DEFAULT_CLEANUP_TIMEOUT_MS = 5000;

/** Written to `net.ipv4.ping_group_range` in every pod namespace we program (upstream `pinggrouprange`). */
export const PING_GROUP_RANGE = "0 2147483647";

/** The options every kernel cross-connect server takes. */
export interface XconnectOptions {
  /** The kernel to program (netlink in production, the fake in unit tests). */
  kernel: KernelApi;
  /** See {@link NetnsCheck}. Required: `insecureNetnsOwnership().check` is the explicit way to turn it off. */
  checkNetns: NetnsCheck;
  /** Deadline for closing downstream after a failed first Request, in ms. @default 5000 */
  cleanupTimeoutMs?: number;
  /**
   * The forwarder's name, written into every tag (`tag.ts`): links of other owners are never
   * adopted or deleted. @default "forwarder"
   */
  owner?: string;
  /** Told about every connection Requested, so that its links of an earlier life are not swept. @default none */
  reconciler?: Reconciler;
  /**
   * Where Close leaves the deletions whose kernel acknowledgement it does not wait for; share
   * one between the cross-connects of a forwarder and `drain()` it at shutdown.
   * @default one of the element's own
   */
  deletions?: PendingDeletions;
}

/** {@link XconnectOptions} checked, defaults filled. */
export interface ResolvedXconnectOptions {
  readonly kernel: KernelApi;
  readonly checkNetns: NetnsCheck;
  readonly cleanupTimeoutMs: number;
  readonly owner: string;
  readonly reconciler: Reconciler | undefined;
  readonly deletions: PendingDeletions;
}

/** Checks the options of the element `who` (InvalidArgument) and fills the defaults. */
export function resolveXconnectOptions(options: Readonly<XconnectOptions>, who: string): ResolvedXconnectOptions {
  if (!options?.kernel) throw invalidArgument(`${who}: the kernel option is required`);
  const timeout = options.cleanupTimeoutMs ?? DEFAULT_CLEANUP_TIMEOUT_MS;
  if (!Number.isInteger(timeout) || timeout <= 0) {
    throw invalidArgument(`${who}: cleanupTimeoutMs must be a positive integer, got ${timeout}`);
  }
  const owner = options.owner ?? DEFAULT_TAG_OWNER;
  checkTagOwner(owner);
  return {
    kernel: options.kernel,
    checkNetns: requireNetnsCheck(options.checkNetns, who),
    cleanupTimeoutMs: timeout,
    owner,
    reconciler: options.reconciler,
    deletions: options.deletions ?? new PendingDeletions(),
  };
}
