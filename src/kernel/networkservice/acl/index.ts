// SPDX-License-Identifier: Apache-2.0
/**
 * acl: upstream's firewall ACL file (`NSM_ACL_CONFIG_PATH`) enforced with nftables on the
 * bridge of a passthrough endpoint. See ./config.ts (format) and ./nftables.ts (enforcement).
 */
export { AclConfigError, type AclRule, parseAclConfig } from "./config.js";
export {
  ACL_TABLE,
  aclRuleset,
  installAcl,
  OUTGOING_PORT_PREFIX,
  removeAcl,
  ruleStatements,
  runNft,
} from "./nftables.js";
