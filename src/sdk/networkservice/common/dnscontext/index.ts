// SPDX-License-Identifier: Apache-2.0
export { type DnsContextClientOptions, dnsContextClient } from "./client.js";
export { DnsConfigStore, type DnsServer, dnsConfig, parseDnsConfigs, parseServer, sameDnsConfig } from "./configs.js";
export { DnsProxy, type DnsProxyOptions } from "./proxy.js";
export { answerFromRecords, type DnsRecords, parseDnsRecords, serveDnsRecords } from "./records.js";
export {
  originalResolvConf,
  parseResolvConf,
  proxiedResolvConf,
  type ResolvConf,
  ResolvConfFile,
} from "./resolvconf.js";
export { type DnsContextServerOptions, dnsContextServer } from "./server.js";
