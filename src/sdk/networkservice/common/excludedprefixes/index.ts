// SPDX-License-Identifier: Apache-2.0
export { type ExcludedPrefixesClientOptions, excludedPrefixesClient } from "./client.js";
export {
  EXCLUDED_PREFIXES_FILE,
  type ExcludedPrefixesServerOptions,
  excludedPrefixesServer,
  parseExcludedPrefixes,
} from "./server.js";
