// SPDX-License-Identifier: Apache-2.0
/**
 * A pod's end of a cross-connect: where a KERNEL mechanism puts it (netns and interface name)
 * and what the kernel should hold for it. Shared by the local (veth) and remote (VXLAN /
 * WireGuard) cross-connects.
 */
import { type Mechanism, MechanismType, Param } from "../../../api/index.js";
import { Code, invalidArgument, NsmError } from "../../../sdk/core/errors.js";
import { validateInterfaceName } from "../../../sdk/tools/ifname.js";
import type { LinkInfo } from "../../api.js";
import type { IpPlan } from "../ipcontext/plan.js";
import { netnsIdentity, netnsPathFromUrl } from "./netns.js";
import type { XconnectSide } from "./tag.js";

export const isKernel = (m: Mechanism | undefined): m is Mechanism => m?.type === MechanismType.KERNEL;

/** Where the pod end goes, from a KERNEL mechanism. */
export interface PodLocation {
  side: XconnectSide;
  url: string;
  netns: string;
  /** The namespace's identity when it could be read (see `followNetns`). */
  netnsId?: string;
  name: string;
}

/** The pod end named by a KERNEL mechanism; InvalidArgument, naming the side, for a bad URL or name. */
export function locatePod(side: XconnectSide, m: Mechanism): PodLocation {
  const url = m.parameters[Param.INODE_URL] ?? "";
  const name = m.parameters[Param.NAME] ?? "";
  try {
    const netns = netnsPathFromUrl(url);
    if (!name) throw invalidArgument("no interface name (parameter name)");
    validateInterfaceName(name);
    return { side, url, netns, netnsId: netnsIdentity(netns), name };
  } catch (err) {
    const e = NsmError.from(err, Code.InvalidArgument);
    throw new NsmError(`${side}'s KERNEL mechanism: ${e.rawMessage}`, e.code, { cause: e, reason: e.reason });
  }
}

/** One interface a cross-connect puts in a pod's netns: where it lives and what it carries. */
export interface PodPlan extends IpPlan {
  /** `client`: in the NSC's netns; `endpoint`: in the NSE's. */
  side: XconnectSide;
  /** The netns path (from the mechanism's `inodeURL`). */
  netns: string;
  /** The namespace's identity when it could be read (see `followNetns`). */
  netnsId?: string;
  /** The interface name (the KERNEL mechanism's `name`). */
  name: string;
  /** The alias, see `tag.ts`. */
  tag: string;
}

/** AlreadyExists: the pod holds a link with the planned name that is not this connection's. */
export function foreignLinkError(pod: PodPlan, link: LinkInfo): NsmError {
  const alias = link.alias === undefined ? "no alias" : `alias ${JSON.stringify(link.alias)}`;
  return new NsmError(
    `interface "${pod.name}" already exists in the ${pod.side}'s netns ${pod.netns} and does not belong to ` +
      `this connection (${alias}, expected "${pod.tag}"): request another interface name`,
    Code.AlreadyExists,
    { reason: "interface-exists", details: { netns: pod.netns, name: pod.name, alias: link.alias } },
  );
}
