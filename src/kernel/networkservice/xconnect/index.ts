// SPDX-License-Identifier: Apache-2.0
/**
 * What the local (`../veth/`) and remote (`../remote/`) cross-connects share: link tags
 * (`tag.ts`), netns URLs (`netns.ts`), the pod end (`pod.ts`), the netns-ownership check
 * (`ownership.ts`), the common options (`options.ts`), the "already gone" tolerance (`gone.ts`)
 * and the deletions a Close leaves to finish in the background (`deletions.ts`).
 */
export type { LinkDeletion, LinkName } from "./deletions.js";
export { PendingDeletions } from "./deletions.js";
export { netnsPathFromUrl } from "./netns.js";
export type { XconnectOptions } from "./options.js";
export { DEFAULT_CLEANUP_TIMEOUT_MS, PING_GROUP_RANGE } from "./options.js";
export type { NetnsCheck, NetnsCheckRequest, NetnsOwnershipCheck } from "./ownership.js";
export { insecureNetnsOwnership } from "./ownership.js";
export type { PodPlan } from "./pod.js";
export type { TaggedLink, XconnectSide, XconnectTag } from "./tag.js";
export {
  checkTagOwner,
  DEFAULT_TAG_OWNER,
  listTaggedLinks,
  parseXconnectTag,
  XCONNECT_TAG_PREFIX,
  xconnectTag,
} from "./tag.js";
