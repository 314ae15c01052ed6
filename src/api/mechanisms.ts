// SPDX-License-Identifier: Apache-2.0
/** Mechanism classes, types and parameter keys of the NSM wire contract. */
import { create } from "@bufbuild/protobuf";
import { type Mechanism, MechanismSchema } from "./gen/connection_pb.js";

/** Mechanism classes: `LOCAL` (same node) or `REMOTE` (between nodes). */
export const Cls = { LOCAL: "LOCAL", REMOTE: "REMOTE" } as const;
export type Cls = (typeof Cls)[keyof typeof Cls];

/** Mechanism types (the `type` of a {@link Mechanism}), as upstream names them. */
export const MechanismType = {
  KERNEL: "KERNEL",
  MEMIF: "MEMIF",
  VFIO: "VFIO",
  NOOP: "NOOP",
  VXLAN: "VXLAN",
  WIREGUARD: "WIREGUARD",
  IPSEC: "IPSEC",
  VLAN: "VLAN",
} as const;

/** What a network service carries: Ethernet frames or IP packets. */
export const Payload = { ETHERNET: "ETHERNET", IP: "IP" } as const;
export type Payload = (typeof Payload)[keyof typeof Payload];

/** Parameter keys shared by mechanisms (upstream `common` constants). */
export const Param = {
  SRC_IP: "src_ip",
  DST_IP: "dst_ip",
  SRC_PORT: "src_port",
  DST_PORT: "dst_port",
  ORIG_SRC_IP: "orig_src_ip",
  ORIG_DST_IP: "orig_dst_ip",
  NETNS_INODE: "netnsInode",
  /** Interface name (≤ 15 characters). */
  NAME: "name",
  /** `file://` or `inode://` URL of a shared file, e.g. the network namespace. */
  INODE_URL: "inodeURL",
  PCI_ADDRESS: "pciAddress",
  TOKEN_ID: "tokenID",
  MTU: "MTU",
  VNI: "vni",
  SRC_PUBLIC_KEY: "src_public_key",
  DST_PUBLIC_KEY: "dst_public_key",
} as const;

/** Linux IFNAMSIZ − 1. */
export const LINUX_IF_MAX_LENGTH = 15;

/** The netns URL a client or endpoint puts in its KERNEL mechanism (upstream default). */
export const DEFAULT_NETNS_URL = "file:///proc/thread-self/ns/net";

/** A {@link Mechanism} of class `cls` and type `type` with `parameters`. */
export function newMechanism(cls: Cls, type: string, parameters: Record<string, string> = {}): Mechanism {
  return create(MechanismSchema, { cls, type, parameters });
}
