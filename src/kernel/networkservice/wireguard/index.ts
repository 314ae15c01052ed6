// SPDX-License-Identifier: Apache-2.0
/** WireGuard through wireguard-go: one process per tunnel, configured over UAPI (see `wireguard-go.ts`). */
export type {
  FoundWireguard,
  WireguardDevice,
  WireguardGoOptions,
  WireguardKeyPair,
  WireguardRunner,
  WireguardTunnelConfig,
} from "./wireguard-go.js";
export {
  createWireguardGoRunner,
  DEFAULT_WIREGUARD_GO,
  DEFAULT_WIREGUARD_RUN_DIR,
  generateWireguardKeyPair,
  uapiExchange,
  uapiSetRequest,
  WIREGUARD_TAG_ENV,
  wireguardPublicKey,
} from "./wireguard-go.js";
