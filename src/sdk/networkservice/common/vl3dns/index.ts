// SPDX-License-Identifier: Apache-2.0
/** vL3 DNS: names of the vL3 clients, answered by their endpoints and asked across peers. */
export { serveVl3Dns, type Vl3Dns, type Vl3DnsOptions } from "./dns.js";
export { type DnsRecord, Vl3DnsRecords } from "./records.js";
export { type Vl3DnsServerOptions, vl3DnsServer } from "./server.js";
export { type DnsTemplate, type DnsTemplateInput, parseDnsTemplate } from "./template.js";
